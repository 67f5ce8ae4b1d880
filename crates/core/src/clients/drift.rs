//! Drift: MCP client entries that still talk to an upstream tether holds a connection for.
//! Such a client signs in on its own and keeps a second grant for the same login — the
//! situation that breaks refresh-token rotation chains and evicts tokens under per-user
//! caps. Every entry of every known client file is classified as going through tether, as
//! drift (naming the connection), or as unrelated. Nothing here writes a file.

use serde::Serialize;
use serde_json::Value;
use url::Url;

use super::document::{Document, Found};
use super::{Client, Locations, files::Original, tilde};
use crate::secret::mask;
use crate::vault::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Goes through tether: a tether endpoint, or `tether stdio`.
    Tether,
    /// Talks straight to the upstream of one of tether's connections.
    Drift,
    Other,
}

/// One server entry of one client, secrets masked.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    /// Where in the file, when not at the top level (Claude Code: the project folder).
    pub scope: Option<String>,
    pub kind: Kind,
    /// The URL (masked) or command the entry runs.
    pub target: String,
    /// For drift: the connection whose upstream it reaches.
    pub connection: Option<String>,
    /// For drift: what moves it to tether.
    pub remedy: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// The file exists and was read.
    Read,
    /// No such file: the client is not installed, or has no MCP configuration.
    Missing,
    /// The file exists but could not be read or parsed; it was left alone.
    Unreadable,
}

/// One client's configuration file and its entries.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub client: &'static str,
    pub title: &'static str,
    pub file: String,
    pub state: FileState,
    pub error: Option<String>,
    pub servers: Vec<Entry>,
}

impl Report {
    pub fn drifting(&self) -> impl Iterator<Item = &Entry> {
        self.servers.iter().filter(|e| e.kind == Kind::Drift)
    }
}

/// Reads every known client's configuration file and classifies its entries against the
/// store's connections.
pub fn scan(at: &Locations, store: &Store) -> Vec<Report> {
    let upstreams: Vec<(String, Url)> = store
        .connections()
        .iter()
        .map(|c| (c.name.to_string(), c.upstream.clone()))
        .collect();
    Client::ALL
        .into_iter()
        .map(|client| report(client, at, &upstreams))
        .collect()
}

/// The MCP clients on this machine that talk to `connection`'s upstream directly — each
/// holding a grant of its own for the same login — as "Cursor: 'linear' in
/// ~/.cursor/mcp.json".
pub fn sharing(at: &Locations, store: &Store, connection: &str) -> Vec<String> {
    scan(at, store)
        .iter()
        .flat_map(|report| {
            report
                .drifting()
                .filter(|e| e.connection.as_deref() == Some(connection))
                .map(|e| format!("{}: '{}' in {}", report.title, e.name, report.file))
        })
        .collect()
}

fn report(client: Client, at: &Locations, upstreams: &[(String, Url)]) -> Report {
    let path = client.config_file(at);
    let mut report = Report {
        client: client.id(),
        title: client.title(),
        file: tilde(&path, &at.home),
        state: FileState::Read,
        error: None,
        servers: Vec::new(),
    };
    let text = match Original::read(&path).map(|o| o.bytes.map(String::from_utf8)) {
        Ok(None) => {
            report.state = FileState::Missing;
            return report;
        }
        Ok(Some(Ok(text))) => text,
        Ok(Some(Err(_))) => return unreadable(report, "it is not UTF-8 text".into()),
        Err(e) => return unreadable(report, e.to_string()),
    };
    match Document::parse(client.format(), &text) {
        Ok(doc) => {
            report.servers = doc
                .servers()
                .iter()
                .map(|f| classify(client, f, upstreams))
                .collect();
            report
        }
        Err(e) => unreadable(
            report,
            format!("line {}, column {}: {}", e.line, e.column, e.message),
        ),
    }
}

fn unreadable(mut report: Report, error: String) -> Report {
    report.state = FileState::Unreadable;
    report.error = Some(error);
    report
}

/// Classifies one entry: through tether, drift, or other.
pub fn classify(client: Client, found: &Found, upstreams: &[(String, Url)]) -> Entry {
    let shape = Shape::of(&found.value);
    let url = shape.url();
    let (kind, connection) = if shape.is_tether_stdio() || url.as_ref().is_some_and(is_tether) {
        (Kind::Tether, None)
    } else if let Some(name) = url.as_ref().and_then(|u| upstream_of(u, upstreams)) {
        (Kind::Drift, Some(name))
    } else {
        (Kind::Other, None)
    };
    let remedy = connection
        .as_deref()
        .map(|name| remedy(client, found, name));
    Entry {
        name: found.name.clone(),
        scope: found.scope.clone(),
        kind,
        target: shape.describe(),
        connection,
        remedy,
    }
}

fn remedy(client: Client, found: &Found, connection: &str) -> String {
    let mut fix = format!("tether config {} {connection} --write", client.id());
    if found.name != connection || found.scope.is_some() {
        let place = found
            .scope
            .as_deref()
            .map(|s| format!(" (project {s})"))
            .unwrap_or_default();
        fix += &format!(", then remove the entry '{}'{place}", found.name);
    }
    fix
}

/// What an entry runs: a URL, or a command with its arguments.
struct Shape<'a> {
    url: Option<&'a str>,
    command: Option<&'a str>,
    args: Vec<&'a str>,
}

impl<'a> Shape<'a> {
    fn of(value: &'a Value) -> Self {
        Self {
            url: value["url"].as_str(),
            command: value["command"].as_str(),
            args: value["args"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
        }
    }

    fn program(&self) -> Option<&'a str> {
        self.command.map(|c| c.rsplit('/').next().unwrap_or(c))
    }

    fn is_tether_stdio(&self) -> bool {
        self.program() == Some("tether") && self.args.first() == Some(&"stdio")
    }

    /// The arguments after `mcp-remote` (run directly or through npx and the like).
    fn mcp_remote_args(&self) -> Option<&[&'a str]> {
        let is_remote = |s: &str| s == "mcp-remote" || s.starts_with("mcp-remote@");
        if self.program().is_some_and(is_remote) {
            return Some(&self.args);
        }
        let at = self.args.iter().position(|a| is_remote(a))?;
        Some(&self.args[at + 1..])
    }

    /// The URL the entry reaches: its `url`, or the server URL given to mcp-remote.
    fn url(&self) -> Option<Url> {
        let raw = match self.url {
            Some(u) => u,
            None => self
                .mcp_remote_args()?
                .iter()
                .find(|a| a.starts_with("http://") || a.starts_with("https://"))?,
        };
        Url::parse(raw).ok()
    }

    fn describe(&self) -> String {
        let url = self.url().map(|u| mask_url(u.as_str()));
        match (self.url, self.program(), url) {
            (Some(_), _, Some(url)) => url,
            (Some(raw), _, None) => mask(raw),
            (None, Some(_), Some(url)) if self.mcp_remote_args().is_some() => {
                format!("mcp-remote {url}")
            }
            (None, Some(_), _) if self.is_tether_stdio() => {
                format!("tether {}", self.args.join(" "))
            }
            (None, Some(program), _) if self.args.is_empty() => program.to_string(),
            (None, Some(program), _) => format!("{program} …"),
            (None, None, _) => "(no url or command)".to_string(),
        }
    }
}

/// What an entry runs, for messages: its URL or command, secrets masked.
pub fn describe(value: &Value) -> String {
    Shape::of(value).describe()
}

/// A tether endpoint: a loopback host serving `/s/<secret>/mcp` or `/c/<name>/mcp`.
pub fn is_tether(url: &Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    loopback
        && matches!(segments.as_slice(), [kind, id, "mcp"] if (*kind == "s" || *kind == "c") && !id.is_empty())
}

/// The connection whose upstream `url` is, comparing scheme, host, port and path (without
/// a trailing slash).
fn upstream_of(url: &Url, upstreams: &[(String, Url)]) -> Option<String> {
    let key = |u: &Url| {
        (
            u.scheme().to_string(),
            u.host_str().map(str::to_ascii_lowercase),
            u.port_or_known_default(),
            u.path().trim_end_matches('/').to_string(),
        )
    };
    let wanted = key(url);
    upstreams
        .iter()
        .find(|(_, u)| key(u) == wanted)
        .map(|(name, _)| name.clone())
}

/// A URL with its secrets masked: a tether path secret, a password, query values.
pub fn mask_url(raw: &str) -> String {
    let Ok(url) = Url::parse(raw) else {
        return mask(raw);
    };
    let mut secrets: Vec<String> = url.query_pairs().map(|(_, v)| v.into_owned()).collect();
    secrets.extend(url.password().map(str::to_string));
    if let Some(segments) = url.path_segments() {
        let segments: Vec<&str> = segments.collect();
        if let ["s", secret, ..] = segments.as_slice() {
            secrets.push(secret.to_string());
        }
    }
    let mut shown = url.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        shown = shown.replace(secret.as_str(), &mask(secret));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";

    fn upstreams() -> Vec<(String, Url)> {
        vec![(
            "linear".into(),
            Url::parse("https://mcp.linear.app/mcp").unwrap(),
        )]
    }

    fn kind_of(value: Value) -> (Kind, Option<String>, String) {
        let e = classify(
            Client::Cursor,
            &Found {
                name: "x".into(),
                scope: None,
                value,
            },
            &upstreams(),
        );
        (e.kind, e.connection, e.target)
    }

    #[test]
    fn entries_are_told_apart() {
        let endpoint = format!("http://127.0.0.1:7878/s/{SECRET}/mcp");
        let (kind, _, shown) = kind_of(json!({ "url": endpoint }));
        assert_eq!(kind, Kind::Tether);
        assert_eq!(shown, "http://127.0.0.1:7878/s/Zm9v…/mcp");
        let stdio = json!({"command": "/usr/bin/tether", "args": ["stdio", "linear"]});
        assert_eq!(kind_of(stdio).0, Kind::Tether);
        let direct = json!({"type": "http", "url": "HTTPS://MCP.linear.app:443/mcp/"});
        assert_eq!(kind_of(direct).1.as_deref(), Some("linear"));
        let remote = json!({"command": "npx", "args": ["-y", "mcp-remote@0.1", "https://mcp.linear.app/mcp"]});
        let (kind, connection, shown) = kind_of(remote);
        assert_eq!((kind, connection.as_deref()), (Kind::Drift, Some("linear")));
        assert_eq!(shown, "mcp-remote https://mcp.linear.app/mcp");
        let other = json!({"command": "npx", "args": ["-y", "server-memory", "--key", SECRET]});
        assert_eq!(kind_of(other), (Kind::Other, None, "npx …".into()));
        let elsewhere = json!({"url": "https://mcp.linear.app/sse"});
        assert_eq!(kind_of(elsewhere).0, Kind::Other);
    }

    #[test]
    fn urls_lose_their_secrets() {
        let shown = mask_url(&format!("https://u:{SECRET}@e.example/mcp?key={SECRET}"));
        assert!(!shown.contains(SECRET), "{shown}");
    }
}
