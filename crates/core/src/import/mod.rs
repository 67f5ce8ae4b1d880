//! `tether import mcp-remote`: brings the logins mcp-remote stored into the vault as OAuth
//! connections that keep their client ids, so nobody signs in again. mcp-remote's files are
//! only read — never changed, locked or deleted.
//!
//! Scan the store (`store`) → recover each login's server URL from its hash (`servers`) →
//! discover each server and check the stored client's issuer → place every login in one
//! vault transaction (`place`, `convert`).

pub mod convert;
mod place;
pub mod servers;
pub mod store;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::oauth::discovery;
use crate::secret::mask;
use crate::vault::{ConnectionName, Discovered, Store, Vault};
use servers::{Candidate, Index, Source};
use store::Login;

/// What to import, and from where.
#[derive(Debug, Clone)]
pub struct Request {
    pub dir: PathBuf,
    /// When given, only these servers' logins are imported.
    pub urls: Vec<String>,
    /// The connection's name, for an import of exactly one login.
    pub name: Option<ConnectionName>,
    pub dry_run: bool,
    /// MCP client configs to read `mcp-remote <url>` command lines from.
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
    pub hash: Option<String>,
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
        e.hash = Some(login.hash.clone());
        e.folder = Some(login.folder.clone());
        e.file = Some(login.tokens_file.display().to_string());
        e.client_id = Some(mask(&login.client.client_id));
        e.access_token = Some(login.tokens.access_token.masked());
        e.has_refresh_token = login.tokens.refresh_token.is_some();
        e.expires_at = login.expires_at();
        e.scope = login.tokens.scope.clone();
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
    Scan(#[from] store::ScanError),
    #[error(transparent)]
    BadUrl(#[from] crate::vault::InvalidUpstream),
    #[error(
        "--name names one connection, but {0} mcp-remote logins would be imported: pass the one server's URL too (tether import mcp-remote URL --name NAME)"
    )]
    NameNeedsOne(usize),
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
    let scan = store::scan(&request.dir)?;
    let current = vault.load_async().await?;
    let (index, notes) = index(&request, &current)?;
    let mut entries: Vec<Entry> = scan.problems.iter().map(problem_entry).collect();
    let selected = select(scan.logins, &index, &request, &mut entries);
    if request.name.is_some() && selected.len() != 1 {
        return Err(ImportError::NameNeedsOne(selected.len()));
    }
    let mut prepared = Vec::new();
    for (login, candidate) in selected {
        match prepare(http, login, candidate).await {
            Ok(p) => prepared.push(p),
            Err(entry) => entries.push(*entry),
        }
    }
    let now = Utc::now();
    let mut rehearsal = current.clone();
    let planned = place::place_all(&mut rehearsal, &prepared, request.name.as_ref(), now);
    let placed = if request.dry_run || !planned.iter().any(|e| e.outcome == Outcome::Imported) {
        planned
    } else {
        let name = request.name.clone();
        vault
            .transact_async(move |store: &mut Store| {
                Ok::<_, ImportError>(place::place_all(store, &prepared, name.as_ref(), now))
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

fn problem_entry(p: &store::FileProblem) -> Entry {
    let mut e = Entry::new(
        Outcome::Failed,
        format!("{} {}", p.file.display(), p.reason),
    )
    .with_fix(p.fix.clone());
    e.hash = Some(p.hash.clone());
    e.folder = Some(p.folder.clone());
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
    let mut selected = Vec::new();
    for login in logins {
        match index.get(&login.hash) {
            Some(c) if request.urls.is_empty() || c.source == Source::CommandLine => {
                selected.push((login, c.clone()))
            }
            Some(_) => {}
            None if request.urls.is_empty() => entries.push(
                Entry::of_login(
                    Outcome::UnknownServer,
                    &login,
                    format!("unknown server (hash {})", login.hash),
                )
                .with_fix("pass its URL: tether import mcp-remote URL"),
            ),
            None => {}
        }
    }
    for url in &request.urls {
        let found = selected
            .iter()
            .any(|(_, c)| servers::spellings(url).contains(&c.url));
        if !found {
            let mut e = Entry::new(
                Outcome::Failed,
                format!(
                    "no mcp-remote login for {url} in {} (it would be named {}_tokens.json)",
                    request.dir.display(),
                    servers::Invocation::plain(url.trim()).hash()
                ),
            )
            .with_fix("check the URL is spelled as in the MCP client's config, or pass --dir");
            e.url = Some(url.clone());
            entries.push(e);
        }
    }
    selected
}

/// Discovery for the login's server, and the check that its client belongs there.
async fn prepare(
    http: &reqwest::Client,
    login: Login,
    candidate: Candidate,
) -> Result<Prepared, Box<Entry>> {
    let fail = |login: &Login, message: String, fix: &str| {
        let mut e = Entry::of_login(Outcome::Failed, login, message).with_fix(fix);
        e.url = Some(candidate.url.clone());
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
    let stored = login
        .client
        .issuer
        .as_deref()
        .or(login.tokens.issuer.as_deref());
    if let Some(stored) = stored
        && stored.trim_end_matches('/') != found.issuer.trim_end_matches('/')
    {
        let message = format!(
            "mcp-remote's client was registered at {stored}, but {upstream} now uses {}",
            found.issuer
        );
        let fix = "sign in afresh: tether add NAME URL, then tether login NAME";
        return Err(fail(&login, message, fix));
    }
    let notes = login_notes(&login, &candidate);
    Ok(Prepared {
        discovered: found.to_discovered(Utc::now()),
        login,
        candidate,
        upstream,
        notes,
    })
}

fn login_notes(login: &Login, candidate: &Candidate) -> Vec<String> {
    let mut notes = Vec::new();
    if !candidate.extras.is_empty() {
        notes.push(format!(
            "mcp-remote was also given {}; tether sends none of these",
            candidate.extras.join(", ")
        ));
    }
    let redirect = login.client.redirect_uris.first();
    let loopback = redirect
        .and_then(|r| url::Url::parse(r).ok())
        .is_some_and(|u| u.scheme() == "http" && crate::vault::is_loopback(&u));
    if !loopback {
        notes.push(format!(
            "the client's redirect URI ({}) is not a loopback address: a later sign-in needs `tether login NAME --reregister`",
            redirect.map(String::as_str).unwrap_or("none")
        ));
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
        let Ok(_lock) = crate::oauth::refresh::lock_refresh(lock_file.clone()).await else {
            continue;
        };
        let mark = crate::oauth::watermark::path(&lock_file);
        crate::oauth::watermark::raise(mark, generation, None).await;
    }
}
