//! Vault transaction latency: lock, read newest, decrypt, change one connection, encrypt,
//! write a temp file, fsync, rename, fsync the folder, unlock — for stores of 10 and 1,000
//! connections. Prints p50/p99/max per size.
//!
//! Run: `cargo bench --bench vault` (set `TETHER_BENCH_DIR` to measure another disk).

use std::time::{Duration, Instant};

use chrono::Utc;
use tether_core::config::{Config, KeySourceChoice};
use tether_core::paths::Paths;
use tether_core::secret::Secret;
use tether_core::vault::{
    Auth, ClientRegistration, Connection, Event, EventKind, RegistrationMethod, RegistrationStatus,
    Store, TokenSet, Vault, VaultError, parse_upstream,
};

const TRANSACTIONS: usize = 300;
const EVENTS_PER_CONNECTION: usize = 20;

fn realistic_connection(i: usize) -> Connection {
    let now = Utc::now();
    let mut c = Connection::new(
        format!("conn-{i}").parse().unwrap(),
        parse_upstream(&format!("https://mcp{i}.example.com/mcp")).unwrap(),
        Auth::OAuth {
            scopes: vec!["read".into(), "write".into()],
            discovery: None,
        },
        now,
    );
    c.clients.push(ClientRegistration {
        client_id: format!("client-{i}-0123456789abcdef"),
        client_secret: None,
        issuer: format!("https://auth{i}.example.com"),
        method: RegistrationMethod::Dcr,
        redirect_uri: Some("http://127.0.0.1:33418/callback".into()),
        registered_at: now,
        secret_expires_at: None,
        registration_access_token: Some(Secret::new("rat_".repeat(10))),
        registration_client_uri: None,
        status: RegistrationStatus::Active,
        token_endpoint_auth_method: Some("none".into()),
    });
    c.token = Some(TokenSet {
        client_id: format!("client-{i}-0123456789abcdef"),
        issuer: format!("https://auth{i}.example.com"),
        access_token: Secret::new("at_".repeat(20)),
        refresh_token: Some(Secret::new("rt_".repeat(20))),
        scope: Some("read write".into()),
        expires_at: Some(now),
        obtained_at: now,
        generation: 7,
        used_refresh_hashes: vec![[1; 8]; 4],
        granted_at: Some(now),
        refresh_expires_at: Some(now),
    });
    for _ in 0..EVENTS_PER_CONNECTION {
        c.record(Event::new(now, EventKind::Refreshed, "refreshed in 182 ms"));
    }
    c
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let base = std::env::var_os("TETHER_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let mut config = Config::default();
    config.vault.key_source = KeySourceChoice::File;
    println!(
        "vault transaction latency (read-modify-write with fsync), {TRANSACTIONS} transactions each"
    );
    for size in [10usize, 1_000] {
        let dir = tempfile::tempdir_in(&base).expect("bench dir");
        let vault = Vault::open(&Paths::under(dir.path().to_path_buf()), &config).expect("open");
        vault
            .transact(|s: &mut Store| {
                *s.connections_mut() = (0..size).map(realistic_connection).collect();
                Ok::<_, VaultError>(())
            })
            .expect("seed");
        let file_size = std::fs::metadata(vault.location())
            .map(|m| m.len())
            .unwrap_or(0);
        let mut times = Vec::with_capacity(TRANSACTIONS);
        for n in 0..TRANSACTIONS {
            let start = Instant::now();
            vault
                .transact(|s: &mut Store| {
                    let c = s
                        .get_mut(&format!("conn-{}", n % size))
                        .expect("connection");
                    c.record(Event::new(Utc::now(), EventKind::Refreshed, "bench"));
                    Ok::<_, VaultError>(())
                })
                .expect("transaction");
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "  {size:>5} connections ({:>7} KiB): p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
            file_size / 1024,
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            times[times.len() - 1],
        );
    }
}
