//! `import SOURCE`: where each source keeps its logins (mcp-remote's folder and the MCP
//! clients' configs that name its servers; each client's token store), and the report as
//! text or JSON. Exits 1 when some login could not be imported.

use std::path::PathBuf;

use chrono::Utc;

use crate::cli::{ClientImportArgs, ImportSource, McpRemoteArgs};
use crate::errors::bad_input;
use crate::runtime::open_vault;
use tether_core::import::{self, Entry, Env, Outcome, Report, Request, Tool};
use tether_core::printable::printable;

/// One command line, whatever the source.
struct Args {
    tool: Tool,
    urls: Vec<String>,
    store: Option<PathBuf>,
    name: Option<String>,
    dry_run: bool,
    json: bool,
}

pub async fn run(source: ImportSource) -> anyhow::Result<()> {
    let client = |tool, a: ClientImportArgs| Args {
        tool,
        urls: a.urls,
        store: a.file,
        name: a.name,
        dry_run: a.dry_run,
        json: a.json,
    };
    let args = match source {
        ImportSource::McpRemote(a) => mcp_remote(a),
        ImportSource::ClaudeCode(a) => client(Tool::ClaudeCode, a),
        ImportSource::Codex(a) => client(Tool::Codex, a),
        ImportSource::Gemini(a) => client(Tool::Gemini, a),
        ImportSource::Qwen(a) => client(Tool::Qwen, a),
        ImportSource::Opencode(a) => client(Tool::Opencode, a),
        ImportSource::Copilot(a) => client(Tool::Copilot, a),
        ImportSource::Unknown(words) => return Err(unknown_source(&words)),
    };
    import(args).await
}

fn mcp_remote(a: McpRemoteArgs) -> Args {
    Args {
        tool: Tool::McpRemote,
        urls: a.urls,
        store: a.dir,
        name: a.name,
        dry_run: a.dry_run,
        json: a.json,
    }
}

fn unknown_source(words: &[String]) -> anyhow::Error {
    let given = words.first().map(String::as_str).unwrap_or_default();
    let choices: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
    bad_input(format!(
        "tether cannot import from '{}': the sources it reads are {} (tether import SOURCE --help says what each reads)",
        printable(given, 60),
        choices.join(", ")
    ))
}

async fn import(args: Args) -> anyhow::Result<()> {
    let request = request(&args)?;
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
            "{failed} of {} {} entries could not be imported; each is listed above with its fix",
            report.entries.len(),
            args.tool
        );
    }
    Ok(())
}

fn request(args: &Args) -> anyhow::Result<Request> {
    let name = args
        .name
        .as_deref()
        .map(|n| n.parse().map_err(|e| bad_input(format!("{e}"))))
        .transpose()?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let home = directories::BaseDirs::new().map(|h| h.home_dir().to_path_buf());
    let env = Env::from_process(home.clone().unwrap_or_default(), cwd.clone());
    let dir = match (&args.store, &home) {
        (Some(store), _) => store.clone(),
        (None, Some(_)) => args.tool.default_store(&env),
        (None, None) if args.tool == Tool::McpRemote && env.mcp_remote_dir.is_some() => {
            args.tool.default_store(&env)
        }
        (None, None) => {
            let flag = if args.tool == Tool::McpRemote {
                "--dir DIR (mcp-remote's folder, usually ~/.mcp-auth)"
            } else {
                "--file PATH (the client's token store)"
            };
            return Err(bad_input(format!(
                "cannot find your home folder: pass {flag}"
            )));
        }
    };
    let config_files = match tether_core::clients::Locations::from_env() {
        Some(at) if args.tool == Tool::McpRemote => import::servers::client_config_files(&at, &cwd),
        _ => Vec::new(),
    };
    Ok(Request {
        tool: args.tool,
        dir,
        env,
        urls: args.urls.clone(),
        name,
        dry_run: args.dry_run,
        config_files,
    })
}

fn print_report(report: &Report) {
    let tool = report.source;
    if tool == Tool::McpRemote {
        let folders = if report.folders.is_empty() {
            "no mcp-remote-* folders".to_string()
        } else {
            report.folders.join(", ")
        };
        tether_core::say!("mcp-remote store: {} ({folders})", report.dir);
    } else {
        tether_core::say!("{} store: {}", tool.title(), report.dir);
    }
    if report.entries.is_empty() {
        tether_core::say!("  nothing to import: {} holds no logins here", tool.title());
    }
    for entry in &report.entries {
        print_entry(tool, entry);
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
            "Next: point your MCP clients at tether (`tether url NAME`). {} still holds these logins; where a server rotates refresh tokens, whichever of the two refreshes second is signed out.",
            tool.title()
        );
    }
}

fn print_entry(tool: Tool, e: &Entry) {
    let mark = match e.outcome {
        Outcome::Imported => "✓",
        Outcome::WouldImport => "+",
        Outcome::Skipped => "-",
        Outcome::UnknownServer | Outcome::Failed => "✗",
    };
    let message = printable(&e.message, 600);
    match (&e.url, &e.folder) {
        (Some(url), _) => tether_core::say!("  {mark} {}: {message}", printable(url, 300)),
        // A client's login without a URL is named by its server's name in that client.
        (None, Some(place)) if tool != Tool::McpRemote && !message.contains(place.as_str()) => {
            tether_core::say!("  {mark} '{}': {message}", printable(place, 120))
        }
        _ => tether_core::say!("  {mark} {message}"),
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
        tether_core::say!("      URL found in {}", printable(from, 300));
    }
    for note in &e.notes {
        tether_core::say!("      note: {}", printable(note, 600));
    }
    if let Some(fix) = &e.fix {
        tether_core::say!("      fix: {}", printable(fix, 300));
    }
}
