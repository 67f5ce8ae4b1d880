//! What a call view shows — the Calls tab (one connection) and the calls of all connections
//! (`C`): the rows newest first through the view's filter, which row is selected, and what
//! a call says about the diagnosis it led to. A view at the top follows new calls; moved
//! down, it holds on to the selected call itself, so calls arriving above it never move
//! the selection.

use std::collections::BTreeSet;
use std::sync::Arc;

use tether_core::calls::{CallRecord, RING, Rings};
use tether_core::diagnosis;
use tether_core::vault::DiagnosisCode;
use tui_input::{Input, InputRequest};

/// What a view lets through: one client's calls, calls whose method or tool holds a text,
/// only the failed ones.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub text: Input,
    /// The text is being typed.
    pub editing: bool,
    pub client: Option<String>,
    pub errors: bool,
}

impl CallFilter {
    pub fn keeps(&self, r: &CallRecord) -> bool {
        let text = self.text.value().trim();
        self.client.as_ref().is_none_or(|c| *c == r.client)
            && (!self.errors || r.is_error())
            && (text.is_empty() || contains_folded(&r.what(), text))
    }

    pub fn is_active(&self) -> bool {
        !self.text.value().trim().is_empty() || self.client.is_some() || self.errors
    }

    /// The filter in a few words for the view's title: `/ issue · cursor · errors`.
    pub fn words(&self) -> Option<String> {
        if !self.is_active() && !self.editing {
            return None;
        }
        let mut parts = Vec::new();
        if self.editing || !self.text.value().trim().is_empty() {
            let cursor = if self.editing { "▏" } else { "" };
            parts.push(format!("/ {}{cursor}", self.text.value()));
        }
        if let Some(client) = &self.client {
            parts.push(format!("client {client}"));
        }
        if self.errors {
            parts.push("errors only".to_string());
        }
        Some(parts.join(" · "))
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The next client of `clients` after the one chosen, then all clients again.
    pub fn next_client(&mut self, clients: &[String]) {
        let at = self
            .client
            .as_ref()
            .and_then(|c| clients.iter().position(|x| x == c));
        self.client = match at {
            None => clients.first().cloned(),
            Some(i) => clients.get(i + 1).cloned(),
        };
    }
}

fn contains_folded(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// One list of calls: its filter, and the call it holds while it does not follow.
#[derive(Debug, Clone, Default)]
pub struct CallView {
    pub filter: CallFilter,
    held: Option<Held>,
}

#[derive(Debug, Clone)]
struct Held {
    record: Arc<CallRecord>,
    /// Where it was: the place kept when the call itself has left the list.
    index: usize,
}

impl CallView {
    /// Whether the view shows the newest call as it comes.
    pub fn following(&self) -> bool {
        self.held.is_none()
    }

    pub fn follow(&mut self) {
        self.held = None;
    }

    /// The selected row of `rows`.
    pub fn selected(&self, rows: &[Arc<CallRecord>]) -> usize {
        match &self.held {
            None => 0,
            Some(held) => rows
                .iter()
                .position(|r| Arc::ptr_eq(r, &held.record))
                .unwrap_or_else(|| held.index.min(rows.len().saturating_sub(1))),
        }
    }

    /// Moves the selection `step` rows (down is older); back at the top, it follows again.
    pub fn move_by(&mut self, rows: &[Arc<CallRecord>], step: isize) {
        let at = self.selected(rows) as isize;
        let to = at
            .saturating_add(step)
            .clamp(0, rows.len().saturating_sub(1) as isize) as usize;
        self.held = match rows.get(to) {
            Some(record) if to > 0 => Some(Held {
                record: record.clone(),
                index: to,
            }),
            _ => None,
        };
    }

    /// Typing into the text filter, while it is being typed.
    pub fn edit(&mut self, request: InputRequest) {
        if self.filter.editing {
            self.filter.text.handle(request);
            self.refilter();
        }
    }

    /// After the filter changed: a held call it now hides is let go.
    pub fn refilter(&mut self) {
        if self
            .held
            .as_ref()
            .is_some_and(|h| !self.filter.keeps(&h.record))
        {
            self.held = None;
        }
    }

    /// The selected call of `rows`.
    pub fn call(&self, rows: &[Arc<CallRecord>]) -> Option<Arc<CallRecord>> {
        rows.get(self.selected(rows)).cloned()
    }
}

/// The calls of `connection` (all connections with `None`) that `filter` lets through,
/// newest first.
pub fn rows(rings: &Rings, connection: Option<&str>, filter: &CallFilter) -> Vec<Arc<CallRecord>> {
    match connection {
        Some(name) => rings
            .get(name)
            .into_iter()
            .flat_map(|ring| ring.iter().rev())
            .filter(|r| filter.keeps(r))
            .cloned()
            .collect(),
        None => {
            let mut all: Vec<Arc<CallRecord>> = rings
                .values()
                .flat_map(|ring| ring.iter().rev())
                .filter(|r| filter.keeps(r))
                .cloned()
                .collect();
            // Stable: calls of one connection in the same millisecond keep their order.
            all.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
            all
        }
    }
}

/// The clients seen in `connection`'s calls (all connections' with `None`), by name.
pub fn clients(rings: &Rings, connection: Option<&str>) -> Vec<String> {
    let labels: BTreeSet<&str> = rings
        .iter()
        .filter(|(name, _)| connection.is_none_or(|c| c == name.as_str()))
        .flat_map(|(_, ring)| ring.iter().map(|r| r.client.as_str()))
        .collect();
    labels.into_iter().map(str::to_string).collect()
}

/// Adds `records` (oldest first) to `rings`, keeping the newest [`RING`] per connection.
pub fn keep(rings: &mut Rings, records: impl IntoIterator<Item = Arc<CallRecord>>) {
    for record in records {
        let ring = rings.entry(record.connection.clone()).or_default();
        ring.push_back(record);
        while ring.len() > RING {
            ring.pop_front();
        }
    }
}

/// The diagnosis a failed call led to. The proxy writes it in its JSON-RPC error's data
/// (`crates/proxy/src/forward/answers.rs`), which the record keeps (`diagnosis`); records
/// written before it did keep it in the response with `capture = "full"`, or tether's own
/// message names it — `tether: 'linear': … (code)` — and tether's "unreachable" code means
/// `upstream_unreachable`.
pub fn diagnosis_of(r: &CallRecord) -> Option<DiagnosisCode> {
    if let Some(code) = r
        .diagnosis
        .as_deref()
        .and_then(|d| serde_json::from_value(serde_json::Value::String(d.to_string())).ok())
    {
        return Some(code);
    }
    if let Some(code) = r.response.as_deref().and_then(from_data) {
        return Some(code);
    }
    let message = r.error_message.as_deref()?.strip_prefix("tether: ")?;
    if r.error_code == Some(UNREACHABLE) {
        return Some(DiagnosisCode::UpstreamUnreachable);
    }
    diagnosis::ALL.into_iter().find(|code| {
        let code = code.as_str();
        message.contains(&format!("({code})")) || message.contains(&format!("({code}:"))
    })
}

/// The JSON-RPC code tether answers with when the upstream cannot be reached
/// (`codes::UNREACHABLE` of the proxy, which the TUI does not depend on; a test holds the
/// two together).
pub const UNREACHABLE: i64 = -32002;

/// `error.data.diagnosis` of a JSON answer or of an event stream's `data:` lines.
fn from_data(body: &str) -> Option<DiagnosisCode> {
    let of = |text: &str| {
        let value: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
        serde_json::from_value(value.pointer("/error/data/diagnosis")?.clone()).ok()
    };
    of(body).or_else(|| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .find_map(of)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(connection: &str, client: &str, at_ms: i64, name: &str) -> Arc<CallRecord> {
        Arc::new(CallRecord {
            at_ms,
            connection: connection.to_string(),
            client: client.to_string(),
            method: Some("tools/call".to_string()),
            name: Some(name.to_string()),
            status: 200,
            ..CallRecord::default()
        })
    }

    #[test]
    fn all_connections_interleave_newest_first_through_the_filter() {
        let mut rings = Rings::new();
        keep(
            &mut rings,
            [
                call("a", "cursor", 1, "one"),
                call("b", "claude", 2, "two"),
                call("a", "claude", 3, "three"),
            ],
        );
        let names = |filter: &CallFilter| -> Vec<String> {
            rows(&rings, None, filter)
                .iter()
                .filter_map(|r| r.name.clone())
                .collect()
        };
        let mut filter = CallFilter::default();
        assert_eq!(names(&filter), ["three", "two", "one"]);
        filter.next_client(&clients(&rings, None));
        assert_eq!(filter.client.as_deref(), Some("claude"));
        assert_eq!(names(&filter), ["three", "two"]);
        filter.text = Input::new("TW".to_string());
        assert_eq!(names(&filter), ["two"]);
        assert_eq!(
            filter.words().as_deref(),
            Some("/ TW · client claude"),
            "the title says what is filtered"
        );
        filter.text = Input::default();
        filter.errors = true;
        assert_eq!(
            filter.words().as_deref(),
            Some("client claude · errors only")
        );
        filter.next_client(&clients(&rings, None));
        filter.next_client(&clients(&rings, None));
        assert_eq!(filter.client, None, "after the last client, all of them");
        assert_eq!(rows(&rings, Some("a"), &CallFilter::default()).len(), 2);
    }

    #[test]
    fn a_held_call_stays_selected_as_new_ones_arrive() {
        let mut rings = Rings::new();
        keep(
            &mut rings,
            (0..3).map(|i| call("a", "c", i, &i.to_string())),
        );
        let all = |rings: &Rings| rows(rings, None, &CallFilter::default());
        let mut view = CallView::default();
        view.move_by(&all(&rings), 1);
        assert_eq!(view.call(&all(&rings)).unwrap().name.as_deref(), Some("1"));
        keep(&mut rings, [call("a", "c", 9, "new")]);
        assert_eq!(view.call(&all(&rings)).unwrap().name.as_deref(), Some("1"));
        view.move_by(&all(&rings), -5);
        assert!(view.following());
        assert_eq!(
            view.call(&all(&rings)).unwrap().name.as_deref(),
            Some("new")
        );
    }

    #[test]
    fn rings_keep_the_newest_calls_only() {
        let mut rings = Rings::new();
        keep(
            &mut rings,
            (0..RING as i64 + 5).map(|i| call("a", "c", i, "x")),
        );
        assert_eq!(rings["a"].len(), RING);
        assert_eq!(rings["a"].front().unwrap().at_ms, 5);
    }

    #[test]
    fn a_call_names_its_diagnosis_from_the_data_or_tethers_message() {
        let failed = |code: i64, message: &str| CallRecord {
            error_code: Some(code),
            error_message: Some(message.to_string()),
            ..CallRecord::default()
        };
        let lost = failed(
            -32001,
            "tether: 'linear': needs re-authorization — the refresh response was lost (invalid_grant.lost_response). Run `tether login linear`.",
        );
        assert_eq!(
            diagnosis_of(&lost),
            Some(DiagnosisCode::InvalidGrantLostResponse)
        );
        let scope = failed(
            -32001,
            "tether: 'gh' needs re-authorization with more scope (insufficient_scope: needs 'repo').",
        );
        assert_eq!(diagnosis_of(&scope), Some(DiagnosisCode::InsufficientScope));
        let down = failed(
            UNREACHABLE,
            "tether: the upstream of 'gh' is unreachable (connection refused)",
        );
        assert_eq!(
            diagnosis_of(&down),
            Some(DiagnosisCode::UpstreamUnreachable)
        );
        // An upstream's own error is not tether's, whatever it says.
        let theirs = failed(-32001, "(invalid_grant.lost_response)");
        assert_eq!(diagnosis_of(&theirs), None);
        let kept = CallRecord {
            response: Some(
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32001,\"message\":\"x\",\"data\":{\"connection\":\"n\",\"diagnosis\":\"client_rejected\"}}}\n\n"
                    .to_string(),
            ),
            ..failed(-32001, "x")
        };
        assert_eq!(diagnosis_of(&kept), Some(DiagnosisCode::ClientRejected));
    }
}
