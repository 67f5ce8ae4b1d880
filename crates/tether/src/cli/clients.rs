//! `config CLIENT NAME`: pointing an MCP client at tether (printing the snippet, or merging
//! it into the client's file); `clients`: which client entries go through tether and which
//! still drift to an upstream directly.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use chrono::Utc;
use serde_json::Value;

use crate::cli::ConfigArgs;
use crate::errors::bad_input;
use crate::runtime::open_vault;
use tether_core::access;
use tether_core::clients::document::Document;
use tether_core::clients::drift::{self, FileState, Kind, Level};
use tether_core::clients::files::Original;
use tether_core::clients::{Client, Locations, Target, tilde};
use tether_core::config::{Config, KeySourceChoice};
use tether_core::paths::Paths;
use tether_core::printable::printable;
use tether_core::secret::Secret;
use tether_core::vault::KEY_ENV;

pub async fn config(args: ConfigArgs) -> anyhow::Result<()> {
    let client = Client::parse(&args.app).ok_or_else(|| {
        bad_input(format!(
            "unknown client '{}': use {}",
            args.app,
            Client::choices()
        ))
    })?;
    let label = args.label.as_deref().unwrap_or(client.id());
    let vault = open_vault()?;
    if vault.load_async().await?.get(&args.name).is_none() {
        return Err(bad_input(format!(
            "no connection named '{0}': `tether list` shows the names; add it with `tether add {0} URL`",
            args.name
        )));
    }
    let (secret, _) = access::endpoint_secret(&vault, &args.name, label).await?;
    let configured = Config::load(&Paths::discover()?)?.proxy.bind;
    let serves = crate::serving::address(&vault, configured).await;
    let target = target(client, &args.name, label, &secret, serves)?;
    let entry = client.entry(&target);
    let (file, shown) = config_file(client, args.file.as_deref())?;
    if args.write {
        write(client, &file, &shown, &args.name, &entry)?;
    } else {
        print_snippet(client, &shown, &args.name, &target, &entry);
    }
    if let Some(note) = client.note() {
        tether_core::say!("Note: {note}");
    }
    if client.launches_commands_only() {
        warn_key_out_of_reach(client, &vault)?;
    }
    Ok(())
}

/// A desktop app starts `tether stdio` without the shell's environment: a vault key kept
/// only in `TETHER_VAULT_KEY` (or a `TETHER_KEY_SOURCE` it needs) is out of its reach.
fn warn_key_out_of_reach(client: Client, vault: &tether_core::vault::Vault) -> anyhow::Result<()> {
    let paths = Paths::discover()?;
    let choice = Config::load_without_env(&paths)?.vault.key_source;
    let key_file = paths.key_file();
    if tether_core::vault::found_without_env(choice, &paths.vault_file(), &key_file) {
        return Ok(());
    }
    let here = vault.key_source().describe();
    let config = if choice == KeySourceChoice::Env {
        format!(
            ", and set key_source = \"auto\" in {}",
            paths.config_file().display()
        )
    } else {
        String::new()
    };
    tether_core::say_err!(
        "tether: warning: {} starts `tether stdio` without your shell's environment, where this \
         vault's key comes from ({here}): its bridge will not find the key. Keep the key where \
         it does — in the OS keyring, or in the key file: \
         (umask 077; printf '%s\\n' \"${KEY_ENV}\" > '{}'){config}.",
        client.title(),
        key_file.display()
    );
    Ok(())
}

/// What the client's entry points at: the stdio bridge for clients that only launch
/// commands, else the same endpoint `tether url` shows, at the address the running tether
/// (or the service) serves.
fn target(
    client: Client,
    name: &str,
    label: &str,
    secret: &Secret,
    serves: std::net::SocketAddr,
) -> anyhow::Result<Target> {
    if client.launches_commands_only() {
        let exe = std::env::current_exe().context("cannot find tether's own path")?;
        // The bridge starts in the client's working folder: give it an absolute vault path.
        let home = std::env::var_os(tether_core::paths::HOME_ENV)
            .map(PathBuf::from)
            .map(|h| std::path::absolute(&h).unwrap_or(h));
        Ok(Target::stdio(&exe, name, label, home.as_deref()))
    } else {
        Ok(Target::Url(access::path_endpoint(
            &format!("http://{serves}"),
            secret,
        )))
    }
}

/// The file to write (`--file`, else the client's own) and how to name it in messages.
fn config_file(client: Client, given: Option<&Path>) -> anyhow::Result<(PathBuf, String)> {
    let home = Locations::from_env();
    let file = match (given, &home) {
        (Some(file), _) => file.to_path_buf(),
        (None, Some(at)) => client.config_file(at),
        (None, None) => anyhow::bail!("cannot find your home folder: set HOME or pass --file PATH"),
    };
    let shown = match &home {
        Some(at) => tilde(&file, &at.home),
        None => file.display().to_string(),
    };
    Ok((file, shown))
}

fn print_snippet(client: Client, file: &str, name: &str, target: &Target, entry: &Value) {
    if let (Client::ClaudeCode, Target::Url(url)) = (client, target) {
        tether_core::say!("Run:");
        tether_core::say!("  claude mcp add --transport http --scope user {name} {url}");
        tether_core::say!("or add this to {file}:");
    } else {
        tether_core::say!("Add this to {file}:");
    }
    tether_core::say!("{}", snippet(client, name, entry));
    tether_core::say!(
        "Or let tether merge it in: tether config {} {name} --write",
        client.id()
    );
}

/// The entry inside its surrounding server list, as the client's file spells it.
fn snippet(client: Client, name: &str, entry: &Value) -> String {
    let mut doc = Document::parse(client.format(), "").expect("empty text parses");
    // A fresh document has no shape to conflict with.
    let _ = doc.set(name, entry);
    doc.render().trim_end().to_string()
}

fn write(
    client: Client,
    file: &Path,
    shown: &str,
    name: &str,
    entry: &Value,
) -> anyhow::Result<()> {
    let mut original = Original::read(file).with_context(|| format!("cannot read '{shown}'"))?;
    let text = match &original.bytes {
        None => String::new(),
        Some(bytes) => String::from_utf8(bytes.clone()).map_err(|_| {
            anyhow!("'{shown}' is not UTF-8 text: fix or move the file and run again; it was left unchanged")
        })?,
    };
    let mut doc = Document::parse(client.format(), &text).map_err(|e| {
        anyhow!(
            "cannot parse '{shown}' at line {}, column {}: {}; fix the file (or move it away) and run again — it was left unchanged",
            e.line,
            e.column,
            e.message
        )
    })?;
    let previous = doc.get(name);
    if previous.as_ref() == Some(entry) {
        tether_core::say!("'{name}' in {shown} already goes through tether: nothing changed.");
        return Ok(());
    }
    doc.set(name, entry).map_err(|e| {
        anyhow!("cannot add '{name}' to '{shown}': {e}; fix the file and run again — it was left unchanged")
    })?;
    let backup = original
        .back_up(Utc::now())
        .with_context(|| format!("cannot back up '{shown}'; it was left unchanged"))?;
    // An endpoint URL carries its secret: no other user may read the file that holds it.
    let loosened = if client.launches_commands_only() {
        None
    } else {
        original.make_private()
    };
    original
        .replace(&doc.render())
        .with_context(|| format!("cannot write '{shown}'"))?;
    report_write(client, shown, name, entry, previous.as_ref(), backup);
    if let Some(mode) = loosened {
        tether_core::say!(
            "Made {shown} private (mode {mode:04o} → {:04o}): it now holds an endpoint secret.",
            original.mode
        );
    }
    Ok(())
}

fn report_write(
    client: Client,
    shown: &str,
    name: &str,
    entry: &Value,
    previous: Option<&Value>,
    backup: Option<PathBuf>,
) {
    let now = drift::describe(entry);
    match (previous, &backup) {
        (_, None) => tether_core::say!("Created {shown} with '{name}' → {now}."),
        (None, Some(_)) => tether_core::say!("Added '{name}' → {now} to {shown}."),
        (Some(old), Some(_)) => tether_core::say!(
            "Replaced '{name}' in {shown}: it pointed at {}, now {now}.",
            printable(&drift::describe(old), 300)
        ),
    }
    if let Some(backup) = backup {
        tether_core::say!("Backup of the previous file: {}", backup.display());
    }
    tether_core::say!(
        "Restart {} (or reload its MCP servers) to use it.",
        client.title()
    );
}

pub fn clients(json: bool) -> anyhow::Result<()> {
    let store = open_vault()?.load()?;
    let at = Locations::from_env()
        .ok_or_else(|| anyhow!("cannot find your home folder: set HOME and run again"))?;
    let folder = std::env::current_dir().ok();
    let reports = drift::scan(&at, folder.as_deref(), &store);
    if json {
        tether_core::say!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print_reports(&reports);
    }
    let drifting = reports.iter().flat_map(|r| r.drifting()).count();
    if drifting > 0 {
        anyhow::bail!(
            "{drifting} client {} to an upstream directly: run the fix shown for each",
            if drifting == 1 {
                "entry still talks"
            } else {
                "entries still talk"
            }
        );
    }
    Ok(())
}

fn print_reports(reports: &[drift::Report]) {
    // Names, commands, folders and URLs come from files anyone may have written.
    let shown = |text: &str| printable(text, 300);
    for r in reports {
        let file = shown(&r.file);
        let level = match r.level {
            Level::User => "",
            Level::Project => " (project file)",
        };
        match r.state {
            FileState::Missing => {
                tether_core::say!("{}  {file}: no config (not installed here)", r.title);
                continue;
            }
            FileState::Unreadable => {
                tether_core::say!(
                    "{}  {file}{level}: cannot read it ({}); left untouched",
                    r.title,
                    shown(r.error.as_deref().unwrap_or(""))
                );
                continue;
            }
            FileState::Read if r.servers.is_empty() => {
                tether_core::say!("{}  {file}{level}: no MCP servers", r.title);
                continue;
            }
            FileState::Read => tether_core::say!("{}  {file}{level}", r.title),
        }
        for e in &r.servers {
            let scope = e
                .scope
                .as_deref()
                .map(|s| format!(" (project {})", shown(s)))
                .unwrap_or_default();
            let kind = match e.kind {
                Kind::Tether => "tether",
                Kind::Drift => "drift",
                Kind::Other => "other",
            };
            tether_core::say!(
                "  {:<20} {kind:<7} {}{scope}",
                shown(&e.name),
                shown(&e.target)
            );
            if let (Some(connection), Some(fix)) = (&e.connection, &e.remedy) {
                tether_core::say!(
                    "  {:<20} talks to '{connection}' directly, beside tether: fix: {}",
                    "",
                    shown(fix)
                );
            }
        }
    }
}
