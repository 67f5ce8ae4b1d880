//! Commands a front end sends the engine, as the TUI sends them: in the order sent for
//! those that change the vault alone, and a cancelled add wizard's `Abandon`, which
//! removes a connection only while it has never been authorized.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_core::engine::{
    AddAuth, Engine, EngineCommand, EngineHandle, EngineOptions, ProxyStatus,
};
use tether_core::oauth::authorize::Browser;
use tether_core::vault::{Store, Vault, parse_upstream};
use tether_sim::{Profile, SimOptions};

use crate::support::vault_at;

async fn engine(vault: Vault, browser: Browser) -> Engine {
    Engine::start(
        vault,
        tether_core::http::client(),
        EngineOptions {
            schedule: false,
            browser,
            proxy: ProxyStatus::Off {
                reason: "test".into(),
            },
        },
    )
    .await
    .unwrap()
}

/// Waits until the published store satisfies `done`.
async fn until(handle: &EngineHandle, what: &str, done: impl Fn(&Store) -> bool) {
    let mut state = handle.state.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if done(&state.borrow_and_update().store) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            tokio::time::timeout(left, state.changed()).await.is_ok(),
            "timed out waiting for {what}"
        );
    }
}

fn add(name: &str, url: &str) -> EngineCommand {
    EngineCommand::Add {
        name: name.into(),
        url: url.into(),
        auth: AddAuth::OAuth,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_sent_with_its_add_signs_the_new_connection_in() {
    let sim = tether_sim::start(SimOptions::new(Profile::Generic))
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let engine = engine(vault_at(home.path()), Browser::Fetch).await;
    let handle = engine.handle();
    let url = sim.mcp_url().to_string();
    // Sent together, as the add wizard sends them.
    handle.send(add("wiki", &url));
    handle.send(EngineCommand::Login {
        name: "wiki".into(),
    });
    until(&handle, "wiki to be signed in", |store| {
        store.get("wiki").is_some_and(|c| c.token.is_some())
    })
    .await;
    assert_eq!(sim.stats().totals.authorization_code_grants, 1);
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandon_removes_only_a_connection_never_signed_in() {
    let sim = tether_sim::start(SimOptions::new(Profile::Generic))
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let vault = vault_at(home.path());
    tether::demo::add_and_sign_in(
        &tether_core::http::client(),
        &vault,
        "kept",
        parse_upstream(sim.mcp_url().as_str()).unwrap(),
        Arc::new(|_, _| {}),
    )
    .await
    .unwrap();
    // The browser never comes back: the new connection's sign-in waits.
    let engine = engine(vault.clone(), Browser::Print).await;
    let handle = engine.handle();
    let url = sim.mcp_url().to_string();
    handle.send(add("drafted", &url));
    handle.send(EngineCommand::Login {
        name: "drafted".into(),
    });
    handle.send(EngineCommand::CancelLogin {
        name: "drafted".into(),
    });
    handle.send(EngineCommand::Abandon {
        name: "drafted".into(),
    });
    // A connection with a token is never abandoned, whoever asks.
    handle.send(EngineCommand::Abandon {
        name: "kept".into(),
    });
    // The commands run in order; an Add after them shows they all have.
    handle.send(add("marker", &url));
    until(&handle, "the marker connection", |store| {
        store.get("marker").is_some()
    })
    .await;
    let store = vault.load().unwrap();
    let names: Vec<&str> = store
        .connections()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["kept", "marker"]);
    assert!(store.get("kept").unwrap().token.is_some());
    engine.shutdown();
}
