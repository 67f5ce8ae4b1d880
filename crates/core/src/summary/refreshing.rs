//! A refresh running past its token's expiry, as any process can see it. The refresh in
//! flight lives in one process's memory, but its journal entry — written before the token
//! request, cleared with the result — is in the vault: a journal whose refresh has not
//! reported back (no refresh event since it started) while the token has expired means the
//! connection is not healthy, whatever state was stored last. `list`, `status`, the TUI
//! and `/metrics` show it as degraded, "refreshing for N s".

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::vault::{Connection, ConnectionState, EventKind};

/// A refresh started at `since` that has not reported back, its token expired at
/// `expired_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overdue {
    pub since: DateTime<Utc>,
    pub expired_at: DateTime<Utc>,
    pub pid: u32,
}

impl Overdue {
    /// How long the refresh has been running, in whole seconds.
    pub fn seconds(&self, now: DateTime<Utc>) -> i64 {
        (now - self.since).num_seconds().max(0)
    }

    /// "refreshing for 24 s; the token expired 3 s ago".
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        let alive = process_alive(self.pid);
        let running = if alive {
            format!("refreshing for {} s", self.seconds(now))
        } else {
            format!(
                "a refresh started {} s ago by process {} never finished",
                self.seconds(now),
                self.pid
            )
        };
        format!(
            "{running}; the token expired {}",
            super::relative(self.expired_at, now)
        )
    }
}

/// The refresh of `c` running past its token's expiry, if there is one.
pub fn overdue_refresh(c: &Connection, now: DateTime<Utc>) -> Option<Overdue> {
    let journal = c.journal.as_ref()?;
    let expired_at = c.token.as_ref()?.expires_at?;
    if now < expired_at {
        return None;
    }
    // A refresh that failed in a way the server may have processed leaves its journal
    // behind as evidence; its failure event says it is over.
    let reported = c.history.iter().rev().any(|e| {
        matches!(e.kind, EventKind::Refreshed | EventKind::RefreshFailed)
            && e.at >= journal.started_at
    });
    let running_state = matches!(
        c.state,
        ConnectionState::Healthy | ConnectionState::Expiring | ConnectionState::Refreshing
    );
    (!reported && running_state).then_some(Overdue {
        since: journal.started_at,
        expired_at,
        pid: journal.pid,
    })
}

/// The state to show for `c`: the stored one, or degraded while a refresh runs past the
/// token's expiry.
pub fn shown_state(c: &Connection, now: DateTime<Utc>) -> Cow<'_, ConnectionState> {
    match overdue_refresh(c, now) {
        Some(overdue) => Cow::Owned(ConnectionState::Degraded {
            why: overdue.describe(now),
        }),
        None => Cow::Borrowed(&c.state),
    }
}

/// Whether process `pid` still runs, where the system says (`/proc`); assumed so elsewhere.
fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}
