//! The refresh engine's two speeds: the hot path (a valid token, read from memory by many
//! tasks at once) in nanoseconds per call, and a stampede — 1,000 tasks finding the same
//! expired token at once — which must be served by exactly one refresh.
//!
//! Run: `cargo bench --bench token`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_core::config::{Config, KeySourceChoice};
use tether_core::oauth::refresh::TokenManager;
use tether_core::paths::Paths;
use tether_core::vault::{Store, Vault, VaultError, parse_upstream};
use tether_sim::{Profile, SimOptions};

const HOT_TASKS: usize = 8;
const HOT_CALLS_PER_TASK: usize = 1_000_000;
const WAITERS: usize = 1_000;

async fn authorized_vault(dir: &std::path::Path, mcp_url: &str) -> Vault {
    let mut config = Config::default();
    config.vault.key_source = KeySourceChoice::File;
    let vault = Vault::open(&Paths::under(dir.to_path_buf()), &config).expect("vault");
    let upstream = parse_upstream(mcp_url).expect("url");
    tether::demo::add_and_sign_in(
        &tether_core::http::client(),
        &vault,
        "bench",
        upstream,
        Arc::new(|_, _| {}),
    )
    .await
    .expect("login");
    vault
}

fn manager(vault: &Vault) -> Arc<TokenManager> {
    let store = vault.load().expect("load");
    Arc::new(TokenManager::new(
        store.get("bench").expect("connection"),
        vault.clone(),
        tether_core::http::token_client(),
        Arc::new(tokio::sync::Notify::new()),
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = tether_sim::start(SimOptions::new(Profile::Generic))
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("dir");
    let vault = authorized_vault(dir.path(), sim.mcp_url().as_str()).await;

    // Hot path: a valid token, many tasks.
    let m = manager(&vault);
    let start = Instant::now();
    let tasks: Vec<_> = (0..HOT_TASKS)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move {
                for _ in 0..HOT_CALLS_PER_TASK {
                    std::hint::black_box(m.credential().await.expect("token"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let calls = (HOT_TASKS * HOT_CALLS_PER_TASK) as f64;
    let elapsed = start.elapsed();
    println!(
        "access_token() hot path: {:.1} ns per call ({HOT_TASKS} tasks x {HOT_CALLS_PER_TASK} calls on 2 workers, {:.1} M calls/s)",
        elapsed.as_nanos() as f64 / calls,
        calls / elapsed.as_secs_f64() / 1e6
    );

    // Stampede: the token expires; 1,000 waiters arrive at once.
    vault
        .transact(|s: &mut Store| {
            let c = s.get_mut("bench").expect("connection");
            if let Some(t) = c.token.as_mut() {
                t.expires_at = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
            }
            Ok::<_, VaultError>(())
        })
        .expect("expire");
    let before = sim.stats().totals.refresh_calls;
    let m = manager(&vault);
    let start = Instant::now();
    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.credential().await.map(|c| c.generation) })
        })
        .collect();
    let mut served = 0;
    let mut generations = std::collections::BTreeSet::new();
    for w in waiters {
        if let Ok(Ok(g)) = w.await {
            served += 1;
            generations.insert(g);
        }
    }
    let refreshes = sim.stats().totals.refresh_calls - before;
    println!(
        "stampede: {served} of {WAITERS} waiters served by {refreshes} refresh(es) in {:.1?}; generations handed out: {generations:?}",
        start.elapsed()
    );
    assert_eq!(served, WAITERS, "every waiter must get a token");
    assert_eq!(refreshes, 1, "exactly one refresh for the whole stampede");
    sim.shutdown().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
