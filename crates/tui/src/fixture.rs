//! A realistic engine state built in code — connections in every state, with histories,
//! evidence, registrations and traffic — for screenshots, snapshot tests and the render
//! benchmark. Every time is relative to the `now` passed in, so renders are reproducible.
//! Every secret here is a made-up placeholder.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::action::Action;

mod calls;
mod connections;
mod scenes;
use super::app::App;
use super::theme::ThemeSet;
pub use scenes::{consenting, scenes};
use tether_core::engine::{ClientTraffic, EngineState, MinuteCount, ProxyStatus};
use tether_core::secret::Secret;
use tether_core::vault::{
    Auth, ClientAccess, ClientRegistration, Connection, ConnectionState, DiagnosisCode, Discovered,
    Event, EventKind, Evidence, RegistrationMethod, RegistrationStatus, Store, TokenSet,
    parse_upstream,
};

/// The fixed clock screenshots and snapshots are drawn at.
pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 9, 30, 0)
        .single()
        .unwrap_or_default()
}

/// The proxy address the fixture shows.
pub fn proxy_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8787))
}

/// The demo's connections: healthy, expiring, degraded, two needing re-authorization (a
/// lost refresh response and a rejected client), one never logged in, an API-key one.
pub fn demo_state(now: DateTime<Utc>) -> EngineState {
    let connections = vec![
        connections::linear(now),
        connections::github(now),
        connections::notion(now),
        connections::todoist(now),
        connections::atlassian(now),
        connections::sentry(now),
        connections::asana(now),
        connections::stripe(now),
        connections::wiki(now),
    ];
    let mut state = state_of(connections, now);
    state.calls = Arc::new(calls::rings(now));
    state
}

/// The demo's connections with limits near: linear's refresh token expires in 3 days
/// (GitHub-style `refresh_token_expires_in`), atlassian's registration in 5 hours
/// (Notion-style `client_secret_expires_at`).
pub fn forecast_state(now: DateTime<Utc>) -> EngineState {
    let mut linear = connections::linear(now);
    if let Some(t) = linear.token.as_mut() {
        t.refresh_expires_at = Some(now + Duration::days(3) + Duration::hours(4));
    }
    let mut atlassian = connections::atlassian(now);
    if let Some(r) = atlassian.clients.last_mut() {
        r.secret_expires_at = Some(now + Duration::hours(5));
    }
    let connections = vec![
        linear,
        connections::github(now),
        connections::notion(now),
        atlassian,
    ];
    state_of(connections, now)
}

/// `n` healthy-looking connections with full histories, for the render benchmark.
pub fn many_connections(n: usize, now: DateTime<Utc>) -> EngineState {
    let connections = (0..n)
        .map(|i| {
            let mut c = oauth(
                &format!("service-{i:03}"),
                &format!("https://mcp{i}.example.com/mcp"),
                now - Duration::days(30),
            );
            let lifetime = 3600 + (i as i64 % 7) * 600;
            c.token = Some(token(
                &format!("svc{i}"),
                now,
                lifetime,
                (i as i64 * 97) % lifetime,
                true,
                i as u64 + 3,
            ));
            refresh_history(&mut c, now, 40, lifetime * 3 / 4, i as u64, &[]);
            c.access = vec![
                access("claude-code", now, Some(2)),
                access("cursor", now, Some(60)),
            ];
            c
        })
        .collect();
    state_of(connections, now)
}

/// An app over `state`, sized `width`×`height`, drawn at `now`.
pub fn app(
    state: EngineState,
    theme: Option<&str>,
    now: DateTime<Utc>,
    width: u16,
    height: u16,
) -> App {
    let mut app = App::new(Arc::new(state), ThemeSet::builtin(), theme, now);
    app.update(Action::Resize { width, height });
    app
}

/// The demo state's app at the fixed clock.
pub fn demo_app(theme: Option<&str>, width: u16, height: u16) -> App {
    app(demo_state(fixed_now()), theme, fixed_now(), width, height)
}

/// Types `text` into whatever field has the keyboard.
pub fn type_text(app: &mut App, text: &str) {
    app.update(Action::Paste(text.to_string()));
}

fn state_of(connections: Vec<Connection>, now: DateTime<Utc>) -> EngineState {
    let mut next_refresh = BTreeMap::new();
    let mut traffic = BTreeMap::new();
    for (i, c) in connections.iter().enumerate() {
        if let Some(t) = &c.token
            && t.refresh_token.is_some()
            && let Some(exp) = t.expires_at
            && !matches!(c.state, ConnectionState::NeedsReauth { .. })
        {
            let lifetime = exp - t.obtained_at;
            next_refresh.insert(
                c.name.to_string(),
                (t.obtained_at + lifetime * 3 / 4).max(now),
            );
        }
        let per_client: BTreeMap<String, ClientTraffic> = c
            .access
            .iter()
            .enumerate()
            .map(|(j, a)| {
                (
                    a.label.clone(),
                    client_traffic(i * 7 + j, a.last_seen, &c.state),
                )
            })
            .collect();
        if !per_client.is_empty() {
            traffic.insert(c.name.to_string(), per_client);
        }
    }
    EngineState {
        store: Arc::new(Store::from_connections(connections)),
        next_refresh,
        proxy: ProxyStatus::Serving { addr: proxy_addr() },
        key_source: tether_core::vault::KeySource::File {
            path: PathBuf::from("/home/ada/.local/share/tether/vault.key"),
            fallback_reason: Some("no D-Bus session bus".to_string()),
        },
        traffic,
        logins: BTreeMap::new(),
        calls: Arc::default(),
        consents: Vec::new(),
    }
}

/// A small deterministic generator, so fixtures vary without randomness.
fn wobble(seed: u64, i: u64, spread: u64) -> u64 {
    let x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(i.wrapping_mul(1442695040888963407));
    (x >> 33) % spread.max(1)
}

fn client_traffic(
    seed: usize,
    last_seen: Option<DateTime<Utc>>,
    state: &ConnectionState,
) -> ClientTraffic {
    let broken = matches!(
        state,
        ConnectionState::NeedsReauth { .. } | ConnectionState::Degraded { .. }
    );
    let per_minute: VecDeque<MinuteCount> = (0..60u64)
        .map(|m| {
            let busy = (m + seed as u64) % 17 < 6;
            let requests = if busy {
                4 + wobble(seed as u64, m, 14)
            } else {
                wobble(seed as u64, m, 3)
            };
            let errors = if broken && m > 44 {
                requests.min(1 + wobble(seed as u64 + 1, m, 3))
            } else {
                u64::from(wobble(seed as u64 + 2, m, 40) == 0)
            };
            MinuteCount { requests, errors }
        })
        .collect();
    ClientTraffic {
        requests: per_minute.iter().map(|m| m.requests).sum::<u64>() + 900 + seed as u64 * 37,
        errors: per_minute.iter().map(|m| m.errors).sum(),
        last_seen,
        per_minute,
        latency: Default::default(),
    }
}

fn oauth(name: &str, url: &str, created: DateTime<Utc>) -> Connection {
    let upstream = parse_upstream(url)
        .unwrap_or_else(|_| url::Url::parse("https://example.com/mcp").expect("literal URL"));
    let name = name
        .parse()
        .unwrap_or_else(|_| "fixture".parse().expect("literal name"));
    let mut c = Connection::new(
        name,
        upstream,
        Auth::OAuth {
            scopes: Vec::new(),
            discovery: None,
        },
        created,
    );
    c.state = ConnectionState::Healthy;
    c
}

fn discovered(c: &mut Connection, issuer: &str, scopes: &[&str], at: DateTime<Utc>) {
    c.auth = Auth::OAuth {
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        discovery: Some(Discovered {
            resource_metadata_url: None,
            resource: c.upstream.to_string(),
            issuer: issuer.to_string(),
            as_metadata: "{}".to_string(),
            tried: Vec::new(),
            at,
        }),
    };
}

fn registration(
    id: &str,
    issuer: &str,
    at: DateTime<Utc>,
    status: RegistrationStatus,
    deletable: bool,
) -> ClientRegistration {
    ClientRegistration {
        client_id: id.to_string(),
        client_secret: None,
        issuer: issuer.to_string(),
        method: RegistrationMethod::Dcr,
        redirect_uri: Some("http://127.0.0.1:33418/callback".to_string()),
        registered_at: at,
        secret_expires_at: None,
        registration_access_token: deletable
            .then(|| Secret::new("fixture-registration-token-not-real")),
        registration_client_uri: deletable
            .then(|| url::Url::parse(&format!("{issuer}/register/{id}")).ok())
            .flatten(),
        status,
        token_endpoint_auth_method: Some("none".to_string()),
    }
}

/// A token obtained `age` seconds ago that lives `lifetime` seconds.
fn token(
    client: &str,
    now: DateTime<Utc>,
    lifetime: i64,
    age: i64,
    refresh: bool,
    generation: u64,
) -> TokenSet {
    let obtained_at = now - Duration::seconds(age);
    TokenSet {
        client_id: client.to_string(),
        issuer: String::new(),
        access_token: Secret::new(format!("{client}_access_fixture_not_a_real_token")),
        refresh_token: refresh
            .then(|| Secret::new(format!("{client}_refresh_fixture_not_a_real_token"))),
        scope: None,
        expires_at: Some(obtained_at + Duration::seconds(lifetime)),
        obtained_at,
        generation,
        used_refresh_hashes: Vec::new(),
        granted_at: None,
        refresh_expires_at: None,
    }
}

/// `count` refreshes every `every` seconds up to now, failing at the given indexes.
fn refresh_history(
    c: &mut Connection,
    now: DateTime<Utc>,
    count: u64,
    every: i64,
    seed: u64,
    failures: &[(u64, DiagnosisCode)],
) {
    c.record(Event::new(
        now - Duration::seconds(every * (count as i64 + 1) + 600),
        EventKind::Added,
        "added",
    ));
    c.record(Event::new(
        now - Duration::seconds(every * (count as i64 + 1) + 540),
        EventKind::Authorized,
        "signed in; generation 1",
    ));
    for i in 0..count {
        let at = now
            - Duration::seconds(every * (count - i) as i64)
            - Duration::seconds(wobble(seed, i, 50) as i64);
        let latency = 120 + wobble(seed, i, 260) + if i % 11 == 7 { 500 } else { 0 };
        let mut e = match failures.iter().find(|(at_index, _)| *at_index == i) {
            Some((_, code)) => {
                let mut e = Event::new(at, EventKind::RefreshFailed, failure_detail(*code));
                e.diagnosis = Some(*code);
                e.evidence = evidence(*code, c);
                e
            }
            None => Event::new(at, EventKind::Refreshed, format!("generation {}", i + 2)),
        };
        e.latency_ms = Some(latency);
        c.record(e);
    }
}

fn failure_detail(code: DiagnosisCode) -> &'static str {
    match code {
        DiagnosisCode::UpstreamUnreachable => "token endpoint answered 503; retrying with backoff",
        DiagnosisCode::TokenEvicted => "401 invalid_token 6h before expiry; refreshed",
        DiagnosisCode::ClientRejected => "token endpoint answered invalid_client",
        DiagnosisCode::InvalidGrantLostResponse => {
            "invalid_grant after a refresh whose response was lost"
        }
        _ => "refresh failed",
    }
}

fn evidence(code: DiagnosisCode, c: &Connection) -> Vec<Evidence> {
    let host = c.upstream.host_str().unwrap_or("example.com").to_string();
    let token_url = format!("https://{host}/oauth/token");
    let client = tether_core::secret::mask(&c.token.as_ref().map_or_else(
        || "fixture-client-id-0000".to_string(),
        |t| t.client_id.clone(),
    ));
    let e = |label: &str, value: &str| Evidence::new(label, value);
    match code {
        DiagnosisCode::UpstreamUnreachable => vec![
            e("status", "503 Service Unavailable"),
            e("url", &token_url),
            e(
                "retry",
                "attempt 3 of ∞, next in 40s (capped backoff with jitter)",
            ),
        ],
        DiagnosisCode::ClientRejected => vec![
            e("status", "401 Unauthorized"),
            e("oauth error", "invalid_client"),
            e("description", "\"Client registration has expired\""),
            e("url", &token_url),
            e("client", &client),
        ],
        DiagnosisCode::InvalidGrantLostResponse => vec![
            e("status", "400 Bad Request"),
            e("oauth error", "invalid_grant"),
            e(
                "description",
                "\"refresh token is invalid or has been used\"",
            ),
            e("url", &token_url),
            e("client", &client),
            e(
                "journal",
                "refresh from generation 57 started 09:11:02, no response (connection reset)",
            ),
        ],
        DiagnosisCode::TokenEvicted => vec![
            e("status", "401 Unauthorized"),
            e("www-authenticate", "Bearer error=\"invalid_token\""),
            e("token age", "1h 50m of 8h"),
            e("client", &client),
        ],
        _ => Vec::new(),
    }
}

fn access(label: &str, now: DateTime<Utc>, seen_minutes_ago: Option<i64>) -> ClientAccess {
    ClientAccess {
        label: label.to_string(),
        secret_hash: [7; 32],
        created_at: now - Duration::days(12),
        last_seen: seen_minutes_ago.map(|m| now - Duration::minutes(m)),
        nonce: vec![1; 16],
        derived_for: None,
        signed_in: None,
    }
}

/// Draws `app` at `width`×`height` cells and returns the buffer.
pub fn render_buffer(
    app: &App,
    width: u16,
    height: u16,
) -> Result<ratatui::buffer::Buffer, String> {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
        .map_err(|e| e.to_string())?;
    terminal
        .draw(|frame| super::ui::draw(frame, app))
        .map_err(|e| e.to_string())?;
    Ok(terminal.backend().buffer().clone())
}
