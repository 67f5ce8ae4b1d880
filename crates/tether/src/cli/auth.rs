//! `login`, `refresh` and `orphans`: authorizing connections and keeping them authorized
//! from the command line.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cli::LoginArgs;
use crate::errors::bad_input;
use crate::runtime::open_vault;
use tether_core::diagnosis::explain;
use tether_core::oauth::authorize::{
    self, Browser, DeviceGrant, LoginOptions, LoginStep, StepOutcome,
};
use tether_core::oauth::refresh::{TokenManager, Trigger};
use tether_core::oauth::registration::{self, AtServer, Cleanup};
use tether_core::secret::mask;
use tether_core::vault::{Auth, RegistrationStatus, Store};

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let vault = open_vault()?;
    require_oauth(&vault.load_async().await?, &args.name)?;
    let options = LoginOptions {
        browser: if args.no_browser {
            Browser::Print
        } else {
            Browser::System
        },
        reregister: args.reregister,
        extra_scopes: args
            .scope
            .as_deref()
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
        client_metadata_url: args.client_metadata_url.clone(),
        timeout: Duration::from_secs(args.timeout),
        device: device_choice(&args),
        pasted: args.no_browser.then(stdin_lines),
    };
    let headless = args.no_browser;
    let progress: authorize::Progress = Arc::new(move |s, o| print_step(s, o, headless));
    let outcome = authorize::login(
        &tether_core::http::client(),
        &vault,
        &args.name,
        options,
        progress,
    )
    .await
    .map_err(|e| {
        if e.is_diagnosed() {
            anyhow::anyhow!("{e} [{}]", e.diagnosis())
        } else {
            anyhow::anyhow!("{e}")
        }
    })?;
    tether_core::say!(
        "Authorized '{}' at {} (client {}, {}, {}).",
        args.name,
        outcome.issuer,
        mask(&outcome.client_id),
        outcome
            .expires_in
            .map(|s| format!(
                "token expires in {}",
                tether_core::summary::duration(s as i64)
            ))
            .unwrap_or_else(|| "token does not expire".to_string()),
        if outcome.has_refresh_token {
            "refresh token kept"
        } else {
            "no refresh token issued"
        }
    );
    Ok(())
}

/// The flag rules: `--device` requires the device grant, `--no-device` rules it out, and
/// `--no-browser` alone prefers it where the server offers it.
fn device_choice(args: &LoginArgs) -> DeviceGrant {
    match (args.device, args.no_device, args.no_browser) {
        (true, _, _) => DeviceGrant::Require,
        (_, true, _) => DeviceGrant::Off,
        (_, _, true) => DeviceGrant::Prefer,
        _ => DeviceGrant::Off,
    }
}

/// Lines pasted on stdin, read on a thread of their own: a blocking read must hold up
/// neither the runtime nor the exit once the login is over. The channel closes at EOF.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What the user must act on, on stdout (scripts over SSH capture it); `false` for the
/// other steps.
fn print_instruction(step: &LoginStep, headless: bool) -> bool {
    match step {
        LoginStep::BrowserOpened { url } if headless => {
            tether_core::say!("Open this URL in a browser to authorize:\n  {url}")
        }
        LoginStep::BrowserOpened { url } => {
            tether_core::say_err!(
                "Open this URL to authorize (it is also sent to your browser):\n  {url}"
            )
        }
        LoginStep::AwaitingPaste { redirect_uri } => tether_core::say!(
            "If that browser is on another machine, the sign-in ends on a page that cannot load \
             ({redirect_uri}?code=…): copy its whole address from the address bar, paste it \
             here and press Enter."
        ),
        LoginStep::PasteRejected { reason } => tether_core::say_err!("  ✗ {reason}. Paste again:"),
        LoginStep::DeviceCode {
            verification_uri,
            verification_uri_complete,
            user_code,
            expires_in,
        } => {
            tether_core::say!(
                "To authorize, open {verification_uri} on any device and enter the code:"
            );
            tether_core::say!("  {user_code}");
            if let Some(complete) = verification_uri_complete {
                tether_core::say!("(or open {complete})");
            }
            tether_core::say!(
                "The code is valid for {}.",
                tether_core::summary::duration(*expires_in as i64)
            );
        }
        _ => return false,
    }
    true
}

/// Login progress on stderr, one line per finished step; the URL always in full.
fn print_step(step: LoginStep, outcome: StepOutcome, headless: bool) {
    if print_instruction(&step, headless) {
        return;
    }
    let label = match &step {
        LoginStep::ResourceMetadata => "protected resource metadata",
        LoginStep::AuthServerMetadata => "authorization server",
        LoginStep::ClientRegistration => "client",
        LoginStep::WaitingForCallback => "browser sign-in",
        LoginStep::DeviceAuthorization => "device authorization",
        LoginStep::WaitingForApproval => "device sign-in",
        _ => "token",
    };
    match outcome {
        StepOutcome::Running if step == LoginStep::WaitingForCallback => {
            tether_core::say_err!("  … waiting for the browser to come back")
        }
        StepOutcome::Running if step == LoginStep::WaitingForApproval => {
            tether_core::say_err!("  … waiting for the sign-in to be approved")
        }
        StepOutcome::Running => {}
        StepOutcome::Done(detail) => tether_core::say_err!("  ✓ {label}: {detail}"),
        StepOutcome::Failed { diagnosis, .. } => tether_core::say_err!("  ✗ {label} [{diagnosis}]"),
    }
}

fn require_oauth(store: &Store, name: &str) -> anyhow::Result<()> {
    let c = store
        .get(name)
        .ok_or_else(|| bad_input(format!("no connection named '{name}'")))?;
    if !matches!(c.auth, Auth::OAuth { .. }) {
        return Err(bad_input(format!(
            "'{name}' uses {} authentication, not OAuth: there is nothing to log in to or refresh",
            c.auth.kind()
        )));
    }
    Ok(())
}

pub async fn refresh(name: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    let store = vault.load_async().await?;
    require_oauth(&store, name)?;
    let connection = store.get(name).expect("checked above");
    let manager = TokenManager::new(
        connection,
        vault.clone(),
        tether_core::http::token_client(),
        Arc::new(tokio::sync::Notify::new()),
    );
    let current = manager.refresh(Trigger::Manual).await?;
    let expiry = current
        .expires_at
        .map(|at| format!("expires {}", tether_core::summary::relative(at, Utc::now())))
        .unwrap_or_else(|| "does not expire".to_string());
    tether_core::say!(
        "Refreshed '{name}': generation {}, {expiry}.",
        current.generation
    );
    Ok(())
}

#[derive(Serialize)]
struct OrphanRow {
    connection: String,
    client_id: String,
    issuer: String,
    deletable: bool,
    /// What the server says of it (RFC 7592 read), where it can be asked: `registered`
    /// (with `expires` when it said), `gone`, `unknown`.
    at_server: Option<String>,
    result: Option<String>,
}

pub async fn orphans(name: Option<&str>, delete: bool, json: bool) -> anyhow::Result<()> {
    let vault = open_vault()?;
    let store = vault.load_async().await?;
    if let Some(name) = name
        && store.get(name).is_none()
    {
        return Err(bad_input(format!("no connection named '{name}'")));
    }
    let http = tether_core::http::client();
    let mut rows = Vec::new();
    let mut gone = Vec::new();
    for c in store.connections() {
        if name.is_some_and(|n| n != c.name.as_str()) {
            continue;
        }
        for r in c
            .clients
            .iter()
            .filter(|r| r.status == RegistrationStatus::Orphan)
        {
            // Asked only when listing: a deletion says for itself.
            let read = if delete {
                AtServer::Unreadable
            } else {
                registration::read(&http, r).await
            };
            let at_server = match read {
                AtServer::Unreadable => None,
                AtServer::Known {
                    secret_expires_at: Some(at),
                } if at <= chrono::Utc::now() => Some("expired".to_string()),
                AtServer::Known { .. } => Some("registered".to_string()),
                AtServer::Gone(status) => Some(format!("gone (HTTP {status})")),
                AtServer::Unknown(why) => Some(format!("unknown: {why}")),
            };
            let result = if delete {
                let cleanup = registration::delete(&http, r).await;
                if !matches!(cleanup, Cleanup::Kept(_)) {
                    gone.push((c.name.to_string(), r.client_id.clone()));
                }
                Some(match cleanup {
                    Cleanup::Deleted => "deleted at the server".to_string(),
                    Cleanup::Forgotten(why) => format!("forgotten ({why})"),
                    Cleanup::Kept(why) => format!("kept: {why}"),
                })
            } else {
                None
            };
            rows.push(OrphanRow {
                connection: c.name.to_string(),
                client_id: mask(&r.client_id),
                issuer: r.issuer.clone(),
                deletable: r.registration_access_token.is_some(),
                at_server,
                result,
            });
        }
    }
    if !gone.is_empty() {
        vault
            .transact_async(move |store: &mut Store| {
                for (conn, client) in &gone {
                    if let Some(c) = store.get_mut(conn) {
                        c.clients.retain(|r| {
                            !(r.client_id == *client && r.status == RegistrationStatus::Orphan)
                        });
                    }
                }
                Ok::<_, tether_core::vault::VaultError>(())
            })
            .await?;
    }
    if json {
        tether_core::say!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        tether_core::say!("No orphaned client registrations.");
    } else {
        for r in &rows {
            let at_server = r
                .at_server
                .as_deref()
                .map(|s| format!("  at the server: {s}"))
                .unwrap_or_default();
            tether_core::say!(
                "{}  {}  {}  {}{at_server}",
                r.connection,
                r.client_id,
                r.issuer,
                r.result.clone().unwrap_or_else(|| if r.deletable {
                    "deletable at the server".into()
                } else {
                    "can only be forgotten".into()
                })
            );
        }
        if !delete {
            tether_core::say!(
                "{}",
                explain(tether_core::vault::DiagnosisCode::DcrOrphan).remedy
            );
        }
    }
    Ok(())
}
