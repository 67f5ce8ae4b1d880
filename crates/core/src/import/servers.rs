//! Which server each mcp-remote login belongs to. mcp-remote names its files after the md5
//! of the server URL exactly as typed, joined with `|` to whichever of `--resource`,
//! `--authorize-param`s, `--header`s, `--client-metadata-url` and `--token-endpoint` it was
//! given (`getServerUrlHash` in mcp-remote 0.15.1) — never the URL itself. So tether hashes
//! every URL it can find: the command line's, its own connections', and the `mcp-remote`
//! command lines in the MCP clients' config files (a small, tolerant reader of just those).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde_json::Value;

use crate::clients::{Client, Format, Locations};

/// Where a URL was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    Connection(String),
    ClientConfig(PathBuf),
    /// The login's own record in a client's token store.
    Store(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::CommandLine => f.write_str("the command line"),
            Source::Connection(name) => write!(f, "tether connection '{name}'"),
            Source::ClientConfig(path) => write!(f, "{}", path.display()),
            Source::Store(path) => write!(f, "the login's own record in {}", path.display()),
        }
    }
}

/// A server URL and what mcp-remote was told besides it, as far as it entered the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub url: String,
    pub source: Source,
    /// The options besides the URL that were part of the hash, by name (never values:
    /// headers often carry API keys).
    pub extras: Vec<String>,
}

/// One `mcp-remote` command line, as far as it shapes the file names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Invocation {
    pub url: String,
    resource: Option<String>,
    authorize_params: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    client_metadata_url: Option<String>,
    token_endpoint: Option<String>,
}

impl Invocation {
    /// Just a URL, as on tether's command line.
    pub fn plain(url: &str) -> Self {
        Self {
            url: url.to_string(),
            ..Self::default()
        }
    }

    /// Reads the arguments that follow `mcp-remote`, the way it does; `None` when the
    /// hash cannot be known (no URL, or headers from a `--header-file`).
    pub fn from_args(args: &[String]) -> Option<Self> {
        let mut rest = Vec::new();
        let mut headers = BTreeMap::new();
        let mut i = 0;
        while i < args.len() {
            match (args[i].as_str(), args.get(i + 1)) {
                ("--header", Some(line)) => {
                    if let Some((name, value)) = header_line(line) {
                        headers.insert(name, value);
                    }
                    i += 2;
                }
                ("--header-file", Some(_)) => return None,
                (arg, _) => {
                    rest.push(arg.to_string());
                    i += 1;
                }
            }
        }
        let url = rest.first()?.clone();
        let value = |flag: &str| {
            let at = rest.iter().position(|a| a == flag)?;
            rest.get(at + 1).map(|v| v.trim().to_string())
        };
        let disabled = rest.iter().any(|a| a == "--disable-resource-parameter");
        let client_credentials = rest.iter().any(|a| a == "--client-credentials");
        Some(Self {
            url,
            resource: value("--resource").filter(|r| !r.is_empty() && !disabled),
            authorize_params: authorize_params(&rest),
            headers,
            client_metadata_url: value("--client-metadata-url").filter(|u| is_metadata_url(u)),
            token_endpoint: value("--token-endpoint")
                .filter(|_| client_credentials)
                .and_then(|u| url::Url::parse(&u).ok())
                .map(String::from),
        })
    }

    /// mcp-remote's `getServerUrlHash`.
    pub fn hash(&self) -> String {
        let mut parts = vec![self.url.clone()];
        parts.extend(self.resource.clone());
        if !self.authorize_params.is_empty() {
            parts.push(compact_json(&self.authorize_params));
        }
        if !self.headers.is_empty() {
            parts.push(compact_json(&self.headers));
        }
        parts.extend(self.client_metadata_url.clone());
        parts.extend(self.token_endpoint.clone());
        hex(&Md5::digest(parts.join("|").as_bytes()))
    }

    fn extras(&self) -> Vec<String> {
        let mut extras: Vec<String> = self
            .headers
            .keys()
            .map(|h| format!("--header {h}"))
            .collect();
        let flags = [
            ("--resource", self.resource.is_some()),
            ("--authorize-param", !self.authorize_params.is_empty()),
            ("--client-metadata-url", self.client_metadata_url.is_some()),
            ("--token-endpoint", self.token_endpoint.is_some()),
        ];
        extras.extend(flags.iter().filter(|f| f.1).map(|f| f.0.to_string()));
        extras
    }

    fn candidate(&self, source: Source) -> Candidate {
        Candidate {
            url: self.url.clone(),
            source,
            extras: self.extras(),
        }
    }
}

/// `JSON.stringify(object, sortedKeys)`: compact, keys sorted (a BTreeMap already is).
fn compact_json(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Name: value`, with mcp-remote's rule for names.
fn header_line(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(':')?;
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then(|| (name.to_string(), value.trim_start().to_string()))
}

fn authorize_params(args: &[String]) -> BTreeMap<String, String> {
    args.windows(2)
        .filter(|w| w[0] == "--authorize-param")
        .filter_map(|w| {
            let (key, value) = w[1].split_once('=')?;
            (!key.trim().is_empty()).then(|| (key.trim().to_string(), value.to_string()))
        })
        .collect()
}

fn is_metadata_url(value: &str) -> bool {
    url::Url::parse(value).is_ok_and(|u| u.scheme() == "https" && u.path() != "/")
}

/// The spellings of one URL a user may have typed into a client config: as given, as
/// normalized, with and without a trailing slash.
pub fn spellings(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    let mut out = vec![raw.to_string()];
    if let Ok(u) = url::Url::parse(raw) {
        out.push(u.to_string());
    }
    for s in out.clone() {
        match s.strip_suffix('/') {
            Some(bare) => out.push(bare.to_string()),
            None => out.push(format!("{s}/")),
        }
    }
    let mut seen = Vec::new();
    out.retain(|s| {
        let new = !seen.contains(s);
        seen.push(s.clone());
        new
    });
    out
}

/// The first candidate per hash wins, so list the most trusted sources first.
#[derive(Debug, Default)]
pub struct Index {
    by_hash: HashMap<String, Candidate>,
}

impl Index {
    pub fn add_url(&mut self, url: &str, source: Source) {
        for spelling in spellings(url) {
            self.add(&Invocation::plain(&spelling), source.clone());
        }
    }

    pub fn add(&mut self, invocation: &Invocation, source: Source) {
        self.by_hash
            .entry(invocation.hash())
            .or_insert_with(|| invocation.candidate(source));
    }

    pub fn get(&self, hash: &str) -> Option<&Candidate> {
        self.by_hash.get(hash)
    }
}

/// A client config that exists but could not be read; its URLs are not used.
#[derive(Debug, Clone)]
pub struct ConfigNote {
    pub file: PathBuf,
    pub reason: String,
}

/// The config files of the MCP clients that launch mcp-remote: every JSON-configured
/// client's user-wide file (where `tether clients` reads them), and the project files in
/// `cwd`.
pub fn client_config_files(at: &Locations, cwd: &Path) -> Vec<PathBuf> {
    Client::ALL
        .into_iter()
        .filter(|c| matches!(c.format(), Format::Json { .. }))
        .map(|c| c.config_file(at))
        .chain([".mcp.json", ".cursor/mcp.json", ".vscode/mcp.json"].map(|f| cwd.join(f)))
        .collect()
}

/// Adds every `mcp-remote` invocation found in `files` (missing files are skipped).
pub fn add_client_configs(index: &mut Index, files: &[PathBuf]) -> Vec<ConfigNote> {
    let mut notes = Vec::new();
    let mut seen = Vec::new();
    for file in files {
        if seen.contains(file) || !file.is_file() {
            continue;
        }
        seen.push(file.clone());
        match read_jsonc(file) {
            Ok(doc) => {
                for invocation in invocations(&doc) {
                    index.add(&invocation, Source::ClientConfig(file.clone()));
                }
            }
            Err(reason) => notes.push(ConfigNote {
                file: file.clone(),
                reason,
            }),
        }
    }
    notes
}

/// JSON with comments and trailing commas, as VS Code writes it.
fn read_jsonc(file: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    jsonc_parser::parse_to_serde_value(&text, &Default::default())
        .map_err(|e| format!("not valid JSON: {e}"))
}

/// Every server entry under an `mcpServers` or `servers` object, at any depth (Claude Code
/// keeps one per project), whose command line runs mcp-remote.
pub fn invocations(doc: &Value) -> Vec<Invocation> {
    let mut out = Vec::new();
    collect(doc, 0, &mut out);
    out
}

fn collect(value: &Value, depth: usize, out: &mut Vec<Invocation>) {
    const MAX_DEPTH: usize = 8;
    let Some(object) = value.as_object().filter(|_| depth < MAX_DEPTH) else {
        return;
    };
    for (key, child) in object {
        if key == "mcpServers" || key == "servers" {
            let servers = child.as_object().into_iter().flat_map(|m| m.values());
            out.extend(servers.filter_map(server_invocation));
        }
        collect(child, depth + 1, out);
    }
}

fn server_invocation(server: &Value) -> Option<Invocation> {
    let command = server.get("command")?.as_str()?;
    let args = server.get("args").and_then(Value::as_array);
    let words: Vec<String> = std::iter::once(command.to_string())
        .chain(
            args.into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from)),
        )
        .collect();
    let at = words.iter().position(|w| is_mcp_remote(w))?;
    Invocation::from_args(&words[at + 1..])
}

/// `mcp-remote`, `mcp-remote@0.1.29`, `/usr/local/bin/mcp-remote` — not `mcp-remote-client`.
fn is_mcp_remote(word: &str) -> bool {
    let base = word.rsplit(['/', '\\']).next().unwrap_or(word);
    base == "mcp-remote" || base.starts_with("mcp-remote@")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_plain_url_hashes_as_mcp_remote_does() {
        // md5("http://127.0.0.1:37017/mcp"), the file name mcp-remote 0.15.1 wrote.
        assert_eq!(
            Invocation::plain("http://127.0.0.1:37017/mcp").hash(),
            "eea232d09258f9a79dfa6d38fb11008e"
        );
    }

    #[test]
    fn options_join_the_hash_in_mcp_remote_order() {
        let args = words(&[
            "--header",
            "X-B: two",
            "https://mcp.example.com/mcp",
            "--resource",
            " https://mcp.example.com/ ",
            "--header",
            "A:one",
            "--authorize-param",
            "audience=x",
        ]);
        let inv = Invocation::from_args(&args).unwrap();
        let joined = r#"https://mcp.example.com/mcp|https://mcp.example.com/|{"audience":"x"}|{"A":"one","X-B":"two"}"#;
        assert_eq!(inv.hash(), hex(&Md5::digest(joined.as_bytes())));
        assert_eq!(
            inv.extras(),
            [
                "--header A",
                "--header X-B",
                "--resource",
                "--authorize-param"
            ]
        );
        assert!(Invocation::from_args(&words(&["--header-file", "h", "https://x/"])).is_none());
    }

    #[test]
    fn client_configs_name_their_mcp_remote_servers() {
        let doc: Value = serde_json::json!({
            "mcpServers": {
                "linear": {"command": "npx", "args": ["-y", "mcp-remote@latest", "https://mcp.linear.app/mcp"]},
                "local": {"command": "node", "args": ["server.js"]},
                "client": {"command": "npx", "args": ["mcp-remote-client", "https://nope/"]},
            },
            "projects": {"/w": {"mcpServers": {"n": {"command": "/usr/bin/mcp-remote", "args": ["https://mcp.notion.com/mcp"]}}}},
            "servers": {"vs": {"type": "stdio", "command": "mcp-remote", "args": ["https://vs.example/mcp", "--debug"]}}
        });
        let mut urls: Vec<String> = invocations(&doc).into_iter().map(|i| i.url).collect();
        urls.sort();
        assert_eq!(
            urls,
            [
                "https://mcp.linear.app/mcp",
                "https://mcp.notion.com/mcp",
                "https://vs.example/mcp"
            ]
        );
    }

    #[test]
    fn spellings_cover_the_trailing_slash() {
        assert_eq!(
            spellings("https://Example.com"),
            [
                "https://Example.com",
                "https://example.com/",
                "https://Example.com/",
                "https://example.com"
            ]
        );
    }
}
