//! `import mcp-remote`: where to look (mcp-remote's folder, the MCP clients' configs), and
//! the report as text or JSON. Exits 1 when some login could not be imported.

use std::path::PathBuf;

use chrono::Utc;

use crate::cli::McpRemoteArgs;
use crate::errors::bad_input;
use crate::runtime::open_vault;
use tether_core::import::{self, Entry, Outcome, Report, Request};

pub async fn mcp_remote(args: McpRemoteArgs) -> anyhow::Result<()> {
    let request = request(args.urls, args.dir, args.name.as_deref(), args.dry_run)?;
    let vault = open_vault()?;
    let report = import::run(&tether_core::http::client(), &vault, request)
        .await
        .map_err(|e| match e {
            e if e.is_bad_input() => bad_input(e.to_string()),
            e => anyhow::Error::new(e),
        })?;
    if args.json {
        tether_core::say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    let failed = report.entries.iter().filter(|e| e.failed()).count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} mcp-remote entries could not be imported; each is listed above with its fix",
            report.entries.len()
        );
    }
    Ok(())
}

fn request(
    urls: Vec<String>,
    dir: Option<PathBuf>,
    name: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<Request> {
    let name = name
        .map(|n| n.parse().map_err(|e| bad_input(format!("{e}"))))
        .transpose()?;
    let home = directories::BaseDirs::new();
    let home_dir = home.as_ref().map(|h| h.home_dir().to_path_buf());
    let dir = dir
        .or_else(|| std::env::var_os("MCP_REMOTE_CONFIG_DIR").filter(|d| !d.is_empty()).map(PathBuf::from))
        .or_else(|| home_dir.as_ref().map(|h| h.join(".mcp-auth")))
        .ok_or_else(|| bad_input("cannot find your home folder: pass --dir DIR (mcp-remote's folder, usually ~/.mcp-auth)"))?;
    let config_files = match tether_core::clients::Locations::from_env() {
        Some(at) => {
            import::servers::client_config_files(&at, &std::env::current_dir().unwrap_or_default())
        }
        None => Vec::new(),
    };
    Ok(Request {
        dir,
        urls,
        name,
        dry_run,
        config_files,
    })
}

fn print_report(report: &Report) {
    let folders = if report.folders.is_empty() {
        "no mcp-remote-* folders".to_string()
    } else {
        report.folders.join(", ")
    };
    tether_core::say!("mcp-remote store: {} ({folders})", report.dir);
    if report.entries.is_empty() {
        tether_core::say!("  nothing to import: mcp-remote holds no logins here");
    }
    for entry in &report.entries {
        print_entry(entry);
    }
    for note in &report.notes {
        tether_core::say!("  note: {note}");
    }
    let count = |o: Outcome| report.entries.iter().filter(|e| e.outcome == o).count();
    let imported = count(Outcome::Imported);
    tether_core::say!(
        "{} {}, skipped {}, not imported {}.",
        if report.dry_run {
            "Dry run: would import"
        } else {
            "Imported"
        },
        imported + count(Outcome::WouldImport),
        count(Outcome::Skipped),
        report.entries.iter().filter(|e| e.failed()).count(),
    );
    if imported > 0 {
        tether_core::say!(
            "Next: point your MCP clients at tether (`tether url NAME`). mcp-remote still holds these logins; where a server rotates refresh tokens, whichever of the two refreshes second is signed out."
        );
    }
}

fn print_entry(e: &Entry) {
    let mark = match e.outcome {
        Outcome::Imported => "✓",
        Outcome::WouldImport => "+",
        Outcome::Skipped => "-",
        Outcome::UnknownServer | Outcome::Failed => "✗",
    };
    match &e.url {
        Some(url) => tether_core::say!("  {mark} {url}: {}", e.message),
        None => tether_core::say!("  {mark} {}", e.message),
    }
    if let (Some(client), Some(token)) = (&e.client_id, &e.access_token)
        && matches!(e.outcome, Outcome::Imported | Outcome::WouldImport)
    {
        let expiry = e
            .expires_at
            .map(|at| format!("expires {}", tether_core::summary::relative(at, Utc::now())))
            .unwrap_or_else(|| "no expiry".into());
        let refresh = if e.has_refresh_token {
            "refresh token kept"
        } else {
            "no refresh token"
        };
        tether_core::say!("      client {client}, token {token}, {expiry}, {refresh}");
    }
    if let Some(from) = &e.url_from {
        tether_core::say!("      URL found in {from}");
    }
    for note in &e.notes {
        tether_core::say!("      note: {note}");
    }
    if let Some(fix) = &e.fix {
        tether_core::say!("      fix: {fix}");
    }
}
