//! `tether import SOURCE`: brings the logins another tool stored (mcp-remote, or an MCP
//! client's own token store) into the vault as OAuth connections that keep their client
//! ids, so nobody signs in again. The tool's files are only read — never changed, locked or
//! deleted.
//!
//! Read the store (`store` for mcp-remote, `sources/` for the clients) into [`Login`]s →
//! find each login's server (its own record, a client config, or mcp-remote's URL hash via
//! `servers`) → discover each server and check the stored client belongs to its
//! authorization server → place every login in one vault transaction (`place`, `convert`).

pub mod convert;
pub mod login;
mod place;
pub mod servers;
pub mod sources;
pub mod store;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::oauth::discovery;
use crate::printable::printable;
use crate::secret::mask;
use crate::vault::{ConnectionName, Discovered, Store, Vault};
use login::{Login, Server};
use servers::{Candidate, Index, Source};
pub use sources::{Env, Tool};

/// What to import, and from where.
#[derive(Debug, Clone)]
pub struct Request {
    pub tool: Tool,
    /// The store: mcp-remote's folder, a client's token file, Copilot CLI's folder.
    pub dir: PathBuf,
    /// Home, current folder and the variables that move the stores and configs.
    pub env: Env,
    /// When given, only these servers' logins are imported.
    pub urls: Vec<String>,
    /// The connection's name, for an import of exactly one login.
    pub name: Option<ConnectionName>,
    pub dry_run: bool,
    /// MCP client configs to read `mcp-remote <url>` command lines from (mcp-remote only).
    pub config_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Imported,
    WouldImport,
    Skipped,
    UnknownServer,
    Failed,
}

/// One login (or one file, or one URL from the command line) and what became of it.
/// Secrets appear only masked.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub outcome: Outcome,
    /// The store's key for the login: mcp-remote's hash, Claude Code's `name|hash`, a name.
    pub hash: Option<String>,
    /// mcp-remote's version folder; for the clients, the server's name in their store.
    pub folder: Option<String>,
    pub file: Option<String>,
    pub url: Option<String>,
    /// Where the URL was found.
    pub url_from: Option<String>,
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub access_token: Option<String>,
    pub has_refresh_token: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub scope: Option<String>,
    pub message: String,
    pub fix: Option<String>,
    /// Things worth knowing about an imported login.
    pub notes: Vec<String>,
}

impl Entry {
    fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            hash: None,
            folder: None,
            file: None,
            url: None,
            url_from: None,
            name: None,
            client_id: None,
            access_token: None,
            has_refresh_token: false,
            expires_at: None,
            scope: None,
            message: message.into(),
            fix: None,
            notes: Vec::new(),
        }
    }

    fn of_login(outcome: Outcome, login: &Login, message: impl Into<String>) -> Self {
        let mut e = Self::new(outcome, message);
        e.hash = Some(login.key.clone());
        e.folder = Some(login.place.clone());
        e.file = Some(login.file.display().to_string());
        e.client_id = Some(mask(&login.client.client_id));
        e.access_token = Some(login.tokens.access_token.masked());
        e.has_refresh_token = login.tokens.refresh_token.is_some();
        e.expires_at = login.tokens.expires_at;
        e.scope = login.tokens.scope.as_deref().map(|s| printable(s, 200));
        e
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed | Outcome::UnknownServer)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: Tool,
    pub dir: String,
    /// The version folders read, newest first.
    pub folders: Vec<String>,
    pub dry_run: bool,
    pub entries: Vec<Entry>,
    /// Client configs that exist but could not be read (their URLs were not used).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Scan(#[from] login::ScanError),
    #[error(transparent)]
    BadUrl(#[from] crate::vault::InvalidUpstream),
    #[error(
        "--name names one connection, but {count} {tool} logins would be imported: pass the one server's URL too (tether import {tool} URL --name NAME)"
    )]
    NameNeedsOne { tool: Tool, count: usize },
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
}

impl ImportError {
    /// Input the user can fix by changing the command line.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Vault(_))
    }
}

/// A login whose server is known and answered discovery.
struct Prepared {
    login: Login,
    candidate: Candidate,
    upstream: url::Url,
    discovered: Discovered,
    notes: Vec<String>,
}

pub async fn run(
    http: &reqwest::Client,
    vault: &Vault,
    request: Request,
) -> Result<Report, ImportError> {
    let scan = sources::scan(request.tool, &request.dir, &request.env)?;
    let current = vault.load_async().await?;
    let (index, notes) = index(&request, &current)?;
    let mut entries: Vec<Entry> = scan.problems.iter().map(problem_entry).collect();
    let selected = select(scan.logins, &index, &request, &mut entries);
    if request.name.is_some() && selected.len() != 1 {
        return Err(ImportError::NameNeedsOne {
            tool: request.tool,
            count: selected.len(),
        });
    }
    let mut prepared = Vec::new();
    for (login, candidate) in selected {
        match prepare(http, request.tool, login, candidate).await {
            Ok(p) => prepared.push(p),
            Err(entry) => entries.push(*entry),
        }
    }
    let now = Utc::now();
    let mut rehearsal = current.clone();
    let tool = request.tool;
    let planned = place::place_all(&mut rehearsal, tool, &prepared, request.name.as_ref(), now);
    let placed = if request.dry_run || !planned.iter().any(|e| e.outcome == Outcome::Imported) {
        planned
    } else {
        let name = request.name.clone();
        vault
            .transact_async(move |store: &mut Store| {
                Ok::<_, ImportError>(place::place_all(store, tool, &prepared, name.as_ref(), now))
            })
            .await?
    };
    entries.extend(placed.into_iter().map(|mut e| {
        if request.dry_run && e.outcome == Outcome::Imported {
            e.outcome = Outcome::WouldImport;
            e.message = e.message.replacen("imported", "would be imported", 1);
        }
        e
    }));
    if !request.dry_run {
        mark_generations(vault, &entries).await;
    }
    Ok(Report {
        source: request.tool,
        dir: request.dir.display().to_string(),
        folders: scan.folders,
        dry_run: request.dry_run,
        entries,
        notes,
    })
}

/// Every URL that could name a login's server: the command line's, tether's connections',
/// then the MCP client configs'.
fn index(request: &Request, store: &Store) -> Result<(Index, Vec<String>), ImportError> {
    let mut index = Index::default();
    for url in &request.urls {
        crate::vault::parse_upstream(url)?;
        index.add_url(url, Source::CommandLine);
    }
    for c in store.connections() {
        index.add_url(c.upstream.as_str(), Source::Connection(c.name.to_string()));
    }
    if request.tool != Tool::McpRemote {
        return Ok((index, Vec::new()));
    }
    let notes = servers::add_client_configs(&mut index, &request.config_files)
        .into_iter()
        .map(|n| {
            format!(
                "{} could not be read ({}); the mcp-remote servers it names were not looked for there",
                n.file.display(),
                n.reason
            )
        })
        .collect();
    Ok((index, notes))
}

fn problem_entry(p: &login::FileProblem) -> Entry {
    let mut e = Entry::new(
        Outcome::Failed,
        format!("{} {}", p.file.display(), p.reason),
    )
    .with_fix(p.fix.clone());
    e.hash = Some(p.key.clone()).filter(|k| !k.is_empty());
    e.folder = Some(p.place.clone()).filter(|k| !k.is_empty());
    e.file = Some(p.file.display().to_string());
    e
}

/// The logins to import, each with its server. Without URLs on the command line: every
/// login whose server is known (the others are reported); with URLs: only theirs.
fn select(
    logins: Vec<Login>,
    index: &Index,
    request: &Request,
    entries: &mut Vec<Entry>,
) -> Vec<(Login, Candidate)> {
    let asked = |url: &str| {
        request
            .urls
            .iter()
            .any(|u| servers::spellings(u).iter().any(|s| s == url))
    };
    let mut selected = Vec::new();
    for login in logins {
        let found = match &login.server {
            Server::Hash(hash) => index.get(hash).cloned().ok_or_else(|| {
                (
                    format!("unknown server (hash {hash})"),
                    format!("pass its URL: tether import {} URL", request.tool),
                )
            }),
            Server::Known(c) => Ok(c.clone()),
            Server::Unknown { reason, fix } => Err((reason.clone(), fix.clone())),
        };
        match found {
            Ok(c) if request.urls.is_empty() => selected.push((login, c)),
            Ok(c) if c.source == Source::CommandLine || asked(&c.url) => selected.push((login, c)),
            Ok(_) => {}
            Err((reason, fix)) if request.urls.is_empty() => {
                entries.push(Entry::of_login(Outcome::UnknownServer, &login, reason).with_fix(fix))
            }
            Err(_) => {}
        }
    }
    for url in &request.urls {
        let found = selected
            .iter()
            .any(|(_, c)| servers::spellings(url).contains(&c.url));
        if !found {
            let message = match request.tool {
                Tool::McpRemote => format!(
                    "no mcp-remote login for {url} in {} (it would be named {}_tokens.json)",
                    request.dir.display(),
                    servers::Invocation::plain(url.trim()).hash()
                ),
                tool => format!(
                    "no {} login for {url} in {}",
                    tool.title(),
                    request.dir.display()
                ),
            };
            let fix = match request.tool {
                Tool::McpRemote => {
                    "check the URL is spelled as in the MCP client's config, or pass --dir"
                }
                _ => "check the URL is spelled as in the client's config, or pass --file",
            };
            let mut e = Entry::new(Outcome::Failed, message).with_fix(fix);
            e.url = Some(url.clone());
            entries.push(e);
        }
    }
    selected
}

/// Discovery for the login's server, and the check that its client belongs there.
async fn prepare(
    http: &reqwest::Client,
    tool: Tool,
    login: Login,
    candidate: Candidate,
) -> Result<Prepared, Box<Entry>> {
    let fail = |login: &Login, message: String, fix: &str| {
        let mut e = Entry::of_login(Outcome::Failed, login, message).with_fix(fix);
        e.url = Some(printable(&candidate.url, 300));
        e.url_from = Some(candidate.source.to_string());
        Box::new(e)
    };
    let upstream = match crate::vault::parse_upstream(&candidate.url) {
        Ok(u) => u,
        Err(e) => return Err(fail(&login, e.to_string(), "tether cannot use this server")),
    };
    let found = match discovery::discover(http, &upstream).await {
        Ok(found) => found,
        Err(e) => {
            let message = format!("discovery for {upstream} failed: {e}");
            return Err(fail(
                &login,
                message,
                "run the import again once the server answers",
            ));
        }
    };
    if let Some(message) = foreign_client(tool, &login, &upstream, &found) {
        let fix = "sign in afresh: tether add NAME URL, then tether login NAME";
        return Err(fail(&login, message, fix));
    }
    let notes = login_notes(tool, &login, &candidate);
    Ok(Prepared {
        discovered: found.to_discovered(Utc::now()),
        login,
        candidate,
        upstream,
        notes,
    })
}

/// Why the stored client cannot be the server's: the store names another authorization
/// server, or another token endpoint, than discovery found.
fn foreign_client(
    tool: Tool,
    login: &Login,
    upstream: &url::Url,
    found: &discovery::Discovery,
) -> Option<String> {
    let same = |a: &str, b: &str| a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/');
    if let Some(stored) = login.stored_issuer()
        && !same(stored, &found.issuer)
    {
        return Some(format!(
            "{}'s client was registered at {}, but {upstream} now uses {}",
            tool.title(),
            printable(stored, 200),
            found.issuer
        ));
    }
    let endpoint = found.as_metadata.token_endpoint.as_str();
    match login.client.token_endpoint.as_deref() {
        Some(stored) if !same(stored, endpoint) => Some(format!(
            "{}'s client used the token endpoint {}, but {upstream} now uses {} at {endpoint}",
            tool.title(),
            printable(stored, 200),
            found.issuer
        )),
        _ => None,
    }
}

fn login_notes(tool: Tool, login: &Login, candidate: &Candidate) -> Vec<String> {
    let mut notes = Vec::new();
    if login.stored_issuer().is_none() && login.client.token_endpoint.is_none() {
        notes.push(format!(
            "{}'s store does not say which authorization server registered this client; a refresh that the server refuses means it was another",
            tool.title()
        ));
    }
    if !candidate.extras.is_empty() {
        notes.push(format!(
            "mcp-remote was also given {}; tether sends none of these",
            candidate.extras.join(", ")
        ));
    }
    match login.client.redirect_uri.as_deref() {
        None => notes.push(format!(
            "{}'s store does not keep the client's redirect URI: if a later sign-in is refused for its redirect URI, run `tether login NAME --reregister`",
            tool.title()
        )),
        Some(redirect) => {
            let loopback = url::Url::parse(redirect)
                .is_ok_and(|u| u.scheme() == "http" && crate::vault::is_loopback(&u));
            if !loopback {
                notes.push(format!(
                    "the client's redirect URI ({}) is not a loopback address: a later sign-in needs `tether login NAME --reregister`",
                    printable(redirect, 200)
                ));
            }
        }
    }
    notes
}

/// Raises each imported connection's refresh high-water mark to its new generation, as a
/// login does, so a later diagnosis compares against the right generation.
async fn mark_generations(vault: &Vault, entries: &[Entry]) {
    let Ok(store) = vault.load_async().await else {
        return;
    };
    for e in entries.iter().filter(|e| e.outcome == Outcome::Imported) {
        let Some(name) = &e.name else { continue };
        let Some(generation) = store
            .get(name)
            .and_then(|c| c.token.as_ref())
            .map(|t| t.generation)
        else {
            continue;
        };
        let lock_file = crate::oauth::refresh::lock_file(vault, name);
        let Ok(_lock) = crate::oauth::refresh::lock_refresh(vault, name).await else {
            continue;
        };
        let mark = crate::oauth::watermark::path(&lock_file);
        crate::oauth::watermark::raise(mark, generation, None).await;
    }
}
