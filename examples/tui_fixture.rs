//! The TUI over the fixture state and a stand-in engine that answers commands with
//! notices and a simulated login, for trying the UI without providers:
//! `cargo run --example tui_fixture`. Logs go to nowhere; the real binary logs to a file.

use std::sync::Arc;
use std::time::Duration;

use tether_core::engine::{
    EngineCommand, EngineEvent, EngineHandle, LoginStep, NoticeLevel, StepOutcome,
};
use tether_core::secret::Secret;
use tether_tui::{self as tui, TuiOptions, fixture};
use tokio::sync::{broadcast, mpsc, watch};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let state = Arc::new(fixture::demo_state(chrono::Utc::now()));
    let (_state_tx, state_rx) = watch::channel(state);
    let (events, _) = broadcast::channel(64);
    let (commands, mut inbox) = mpsc::unbounded_channel();
    let handle = EngineHandle {
        state: state_rx,
        events: events.clone(),
        commands,
    };
    tokio::spawn(async move {
        while let Some(command) = inbox.recv().await {
            answer(&events, command).await;
        }
    });
    tui::run(handle, TuiOptions::default()).await
}

async fn answer(events: &broadcast::Sender<EngineEvent>, command: EngineCommand) {
    let send = |e| {
        let _ = events.send(e);
    };
    match command {
        EngineCommand::Login { name } | EngineCommand::Reauthorize { name } => {
            let steps = [
                LoginStep::ResourceMetadata,
                LoginStep::AuthServerMetadata,
                LoginStep::ClientRegistration,
                LoginStep::BrowserOpened {
                    url: "https://auth.example/authorize?…".to_string(),
                },
                LoginStep::WaitingForCallback,
                LoginStep::TokenReceived,
            ];
            for step in steps {
                send(EngineEvent::LoginStep {
                    connection: name.clone(),
                    step: step.clone(),
                    outcome: StepOutcome::Running,
                });
                tokio::time::sleep(Duration::from_millis(400)).await;
                send(EngineEvent::LoginStep {
                    connection: name.clone(),
                    step,
                    outcome: StepOutcome::Done(String::new()),
                });
            }
        }
        EngineCommand::ClientEndpoint { name, label } => send(EngineEvent::Endpoint {
            connection: name,
            label,
            url: Secret::new("http://127.0.0.1:8787/s/EXAMPLE-not-a-real-secret/mcp"),
        }),
        other => send(EngineEvent::Notice {
            level: NoticeLevel::Info,
            text: format!("the stand-in engine got {other:?}"),
        }),
    }
}
