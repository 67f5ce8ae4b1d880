//! Writes the README's screenshots from a live `tether demo`:
//! `cargo run --example screenshots [OUT_DIR]` (default `screenshots/`).
//!
//! It starts the demo in-process (six simulated providers, a throwaway vault, the engine
//! and its proxy), sends some client traffic through the proxy, loses one refresh
//! response on the Linear-style provider so that connection breaks for real, fails two
//! token calls on the Atlassian-style one (healed by retries), records a real login's
//! steps for the wizard, and draws each screen from the engine's live state into PNGs with
//! the embedded DejaVu Sans Mono — no display needed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use tether::demo::Demo;
use tether_core::engine::EngineEvent;
use tether_core::oauth::authorize::{LoginStep, StepOutcome};
use tether_core::oauth::refresh::Trigger;
use tether_sim::{FaultPlan, Profile};
use tether_tui::{Action, App, Command, DetailTab, fixture};

mod png;

const WIDTH: u16 = 120;
const HEIGHT: u16 = 34;
const SCALE: f32 = 1.5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "screenshots".to_string()),
    );
    std::fs::create_dir_all(&out)?;
    let demo = Demo::start(600.0).await?;
    send_traffic(&demo).await?;
    break_linear(&demo).await;
    call_tools(&demo).await?;
    trouble_atlassian(&demo);
    // Let the short demo tokens refresh a dozen times on their own, the Atlassian-style
    // provider's through two failures healed by the scheduler's retries.
    tokio::time::sleep(Duration::from_secs(25)).await;
    demo.engine.reload().await?;
    let state = demo.engine.handle().state.borrow().as_ref().clone();
    let (steps, url) = record_a_login(&demo).await?;
    let now = chrono::Utc::now();
    let app = |theme: Option<&str>| fixture::app(state.clone(), theme, now, WIDTH, HEIGHT);
    let shots: Vec<(&str, App)> = vec![
        ("main", select(app(None), "generic", &[])),
        (
            "history",
            select(
                app(None),
                "atlassian",
                &[Command::ShowTab(DetailTab::History)],
            ),
        ),
        (
            "diagnosis",
            select(
                app(None),
                "linear",
                &[Command::ShowTab(DetailTab::Diagnosis)],
            ),
        ),
        ("calls", select(app(None), "generic", &[Command::AllCalls])),
        ("add-wizard", wizard(app(None), &url, &steps)),
        (
            "theme-light",
            select(app(Some("tether-light")), "github", &[]),
        ),
        (
            "theme-catppuccin",
            select(
                app(Some("catppuccin-mocha")),
                "linear",
                &[Command::ShowTab(DetailTab::Diagnosis)],
            ),
        ),
    ];
    for (file, app) in shots {
        let png = png::render_png(&app, WIDTH, HEIGHT, SCALE)?;
        let path = out.join(format!("{file}.png"));
        std::fs::write(&path, png)?;
        println!("{}", path.display());
    }
    demo.stop().await;
    Ok(())
}

/// Two local clients calling through the demo's proxy, so the Traffic and Clients tabs
/// have something to show.
async fn send_traffic(demo: &Demo) -> anyhow::Result<()> {
    let addr = match &demo.engine.handle().state.borrow().proxy {
        tether_core::engine::ProxyStatus::Serving { addr } => *addr,
        other => anyhow::bail!("the demo proxy is not serving: {other:?}"),
    };
    let http = reqwest::Client::new();
    for (name, label, calls) in [
        ("generic", "claude-code", 40),
        ("generic", "cursor", 15),
        ("github", "claude-code", 25),
    ] {
        let (secret, _) = tether_core::access::endpoint_secret(&demo.vault, name, label).await?;
        let url = format!("http://{addr}/s/{}/mcp", secret.expose());
        for _ in 0..calls {
            http.post(&url)
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/list")
                .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
                .send()
                .await?;
        }
    }
    Ok(())
}

/// Tool calls for the Calls view: answered ones, one refused for a missing argument, and
/// one on the broken Linear-style connection that tether answers with its diagnosis.
async fn call_tools(demo: &Demo) -> anyhow::Result<()> {
    let addr = match &demo.engine.handle().state.borrow().proxy {
        tether_core::engine::ProxyStatus::Serving { addr } => *addr,
        other => anyhow::bail!("the demo proxy is not serving: {other:?}"),
    };
    let http = reqwest::Client::new();

    for (name, label, tool, arguments) in [
        ("generic", "claude-code", "whoami", json!({})),
        ("github", "cursor", "echo", json!({"text": "review"})),
        (
            "generic",
            "claude-code",
            "progress",
            json!({"steps": 4, "delay_ms": 60}),
        ),
        ("atlassian", "claude-code", "whoami", json!({})),
        ("generic", "cursor", "echo", json!({})),
        ("notion", "claude-code", "echo", json!({"text": "page"})),
        ("linear", "claude-code", "echo", json!({"text": "ENG-42"})),
        (
            "github",
            "claude-code",
            "progress",
            json!({"steps": 2, "delay_ms": 120}),
        ),
        ("generic", "claude-code", "echo", json!({"text": "done"})),
    ] {
        let (secret, _) = tether_core::access::endpoint_secret(&demo.vault, name, label).await?;
        let url = format!("http://{addr}/s/{}/mcp", secret.expose());
        http.post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", tool)
            .json(&json!({
                "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }))
            .send()
            .await?
            .bytes()
            .await?;
    }
    Ok(())
}

/// The Linear-style provider rotates a refresh token but the response is lost; the next
/// refresh presents the spent token and the grant is dead — as in the field.
async fn break_linear(demo: &Demo) {
    if let Some((_, sim)) = demo.providers.iter().find(|(p, _)| *p == Profile::Linear) {
        sim.set_faults(FaultPlan {
            drop_next_refresh: true,
            ..FaultPlan::default()
        });
    }
    if let Some(manager) = demo.engine.manager("linear") {
        let _ = manager.refresh(Trigger::Manual).await;
        let _ = manager.refresh(Trigger::Manual).await;
    }
}

/// The Atlassian-style provider's token endpoint fails twice (HTTP 500): the History tab
/// shows the failed refreshes and the scheduler's retries healing them.
fn trouble_atlassian(demo: &Demo) {
    if let Some((_, sim)) = demo
        .providers
        .iter()
        .find(|(p, _)| *p == Profile::Atlassian)
    {
        sim.set_faults(FaultPlan {
            fail_token_calls: 2,
            ..FaultPlan::default()
        });
    }
}

/// A real login's steps, against the demo's generic provider, for the wizard screen.
type Steps = Vec<(LoginStep, StepOutcome)>;

async fn record_a_login(demo: &Demo) -> anyhow::Result<(Steps, String)> {
    let upstream = demo
        .providers
        .iter()
        .find(|(p, _)| *p == Profile::Generic)
        .map(|(_, sim)| sim.mcp_url())
        .ok_or_else(|| anyhow::anyhow!("no generic provider"))?;
    let url = upstream.to_string();
    let steps = Arc::new(Mutex::new(Vec::new()));
    let recorder = steps.clone();
    tether::demo::add_and_sign_in(
        demo.engine.http(),
        &demo.vault,
        "linear-work",
        upstream,
        Arc::new(move |step, outcome| {
            if let Ok(mut s) = recorder.lock() {
                s.push((step, outcome));
            }
        }),
    )
    .await?;
    let steps = steps.lock().map(|s| s.clone()).unwrap_or_default();
    Ok((steps, url))
}

fn select(mut app: App, name: &str, commands: &[Command]) -> App {
    let index = app
        .visible()
        .iter()
        .position(|c| c.name.as_str() == name)
        .unwrap_or(0);
    for _ in 0..index {
        app.update(Action::Command(Command::Down));
    }
    for c in commands {
        app.update(Action::Command(*c));
    }
    app
}

/// The add wizard as a user fills it in, then the login steps as the engine reported them.
fn wizard(mut app: App, url: &str, steps: &[(LoginStep, StepOutcome)]) -> App {
    app.update(Action::Command(Command::Add));
    fixture::type_text(&mut app, "linear-work");
    app.update(Action::Command(Command::NextField));
    fixture::type_text(&mut app, url);
    app.update(Action::Command(Command::NextField));
    app.update(Action::Command(Command::Submit));
    for (step, outcome) in steps {
        app.update(Action::Engine(EngineEvent::LoginStep {
            connection: "linear-work".to_string(),
            step: step.clone(),
            outcome: outcome.clone(),
        }));
    }
    app
}
