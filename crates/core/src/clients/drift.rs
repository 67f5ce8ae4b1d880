//! Drift: MCP client entries that still talk to an upstream tether holds a connection for.
//! Such a client signs in on its own and keeps a second grant for the same login — the
//! situation that breaks refresh-token rotation chains and evicts tokens under per-user
//! caps. Every entry of every known client file is classified as going through tether, as
//! drift (naming the connection), or as unrelated. The files are each client's user-level
//! ones, and the project files of the current folder and of every project Claude Code lists
//! in `~/.claude.json`. Nothing here writes a file.

use std::path::{Path, PathBuf};

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

/// Whose servers a file holds: the user's (every folder), or one project's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    User,
    Project,
}

/// One client's configuration file and its entries.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub client: &'static str,
    pub title: &'static str,
    pub file: String,
    pub level: Level,
    pub state: FileState,
    pub error: Option<String>,
    pub servers: Vec<Entry>,
}

impl Report {
    pub fn drifting(&self) -> impl Iterator<Item = &Entry> {
        self.servers.iter().filter(|e| e.kind == Kind::Drift)
    }
}

/// Reads every known client's configuration files — its user-level ones (reported even
/// when missing), then the project files that exist in `folder` (the current folder) and in
/// the projects `~/.claude.json` lists — and classifies their entries against the store's
/// connections. A file two clients read (a project's `.mcp.json`) is reported once.
pub fn scan(at: &Locations, folder: Option<&Path>, store: &Store) -> Vec<Report> {
    let upstreams: Vec<(String, Url)> = store
        .connections()
        .iter()
        .map(|c| (c.name.to_string(), c.upstream.clone()))
        .collect();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    for client in Client::ALL {
        for path in client.user_files(at) {
            seen.push(identity(&path));
            out.push(report(client, &path, Level::User, at, &upstreams));
        }
    }
    for client in Client::ALL {
        let mut projects: Vec<PathBuf> =
            folder.map(|f| client.project_files(f)).unwrap_or_default();
        if client == Client::ClaudeCode {
            let listed = claude_projects(&client.config_file(at));
            projects.extend(listed.iter().flat_map(|p| client.project_files(p)));
        }
        for path in projects {
            let id = identity(&path);
            if !path.is_file() || seen.contains(&id) {
                continue;
            }
            seen.push(id);
            out.push(report(client, &path, Level::Project, at, &upstreams));
        }
    }
    out
}

/// One file however it is named (`./x`, a symlink, an absolute path).
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The project folders Claude Code knows: the keys of `projects` in `~/.claude.json`.
fn claude_projects(file: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let Ok(value) = jsonc_parser::parse_to_serde_value::<Value>(&text, &Default::default()) else {
        return Vec::new();
    };
    value
        .get("projects")
        .and_then(Value::as_object)
        .map(|projects| {
            projects
                .keys()
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .collect()
        })
        .unwrap_or_default()
}

/// The MCP clients on this machine that talk to `connection`'s upstream directly — each
/// holding a grant of its own for the same login — as "Cursor: 'linear' in
/// ~/.cursor/mcp.json".
pub fn sharing(
    at: &Locations,
    folder: Option<&Path>,
    store: &Store,
    connection: &str,
) -> Vec<String> {
    scan(at, folder, store)
        .iter()
        .flat_map(|report| {
            report
                .drifting()
                .filter(|e| e.connection.as_deref() == Some(connection))
                .map(|e| format!("{}: '{}' in {}", report.title, e.name, report.file))
        })
        .collect()
}

fn report(
    client: Client,
    path: &Path,
    level: Level,
    at: &Locations,
    upstreams: &[(String, Url)],
) -> Report {
    let mut report = Report {
        client: client.id(),
        title: client.title(),
        file: tilde(path, &at.home),
        level,
        state: FileState::Read,
        error: None,
        servers: Vec::new(),
    };
    let text = match Original::read(path).map(|o| o.bytes.map(String::from_utf8)) {
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
            if level == Level::Project {
                from_project_file(&mut report);
            }
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

/// A project file is often shared (checked in), so the endpoint secret never goes there:
/// the fix is the user-level entry through tether, and the project's entry removed.
fn from_project_file(report: &mut Report) {
    let (client, file) = (report.client, report.file.clone());
    for entry in report.servers.iter_mut() {
        if let Some(connection) = &entry.connection {
            entry.remedy = Some(format!(
                "tether config {client} {connection} --write, then remove the entry '{}' from {file}",
                entry.name
            ));
        }
    }
}

/// What an entry runs: a URL, or a command with its arguments.
struct Shape<'a> {
    url: Option<&'a str>,
    command: Option<&'a str>,
    args: Vec<&'a str>,
}

impl<'a> Shape<'a> {
    /// The URL keys clients use — Gemini CLI's and Qwen Code's `httpUrl` (which Gemini
    /// prefers over `url`), Windsurf's `serverUrl`, everyone's `url` — and the commands:
    /// `command` + `args`, opencode's one array, Zed's older `{path, args}` object.
    fn of(value: &'a Value) -> Self {
        let strings = |v: &'a Value| -> Vec<&'a str> {
            v.as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        let (command, args) = match &value["command"] {
            Value::String(c) => (Some(c.as_str()), strings(&value["args"])),
            Value::Array(_) => {
                let line = strings(&value["command"]);
                match line.split_first() {
                    Some((program, rest)) => (Some(*program), rest.to_vec()),
                    None => (None, Vec::new()),
                }
            }
            Value::Object(zed) => (
                zed.get("path").and_then(Value::as_str),
                strings(&value["command"]["args"]),
            ),
            _ => (None, Vec::new()),
        };
        Self {
            url: ["httpUrl", "serverUrl", "url"]
                .iter()
                .find_map(|k| value[*k].as_str()),
            command,
            args,
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
mod tests;
