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
use super::app::App;
use super::theme::ThemeSet;
use crate::engine::{ClientTraffic, EngineState, MinuteCount, ProxyStatus};
use crate::secret::Secret;
use crate::vault::{
    ApiKeyHeader, Auth, ClientAccess, ClientRegistration, Connection, ConnectionState,
    DiagnosisCode, Discovered, Event, EventKind, Evidence, RegistrationMethod, RegistrationStatus,
    Store, TokenSet, parse_upstream,
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
        linear(now),
        github(now),
        notion(now),
        todoist(now),
        atlassian(now),
        sentry(now),
        asana(now),
        stripe(now),
        wiki(now),
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
        key_source: crate::vault::KeySource::File {
            path: PathBuf::from("/home/ada/.local/share/tether/vault.key"),
            fallback_reason: Some("no D-Bus session bus".to_string()),
        },
        traffic,
        logins: BTreeMap::new(),
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
    let client = crate::secret::mask(&c.token.as_ref().map_or_else(
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
    }
}

fn linear(now: DateTime<Utc>) -> Connection {
    let mut c = oauth(
        "linear",
        "https://mcp.linear.app/mcp",
        now - Duration::days(21),
    );
    discovered(
        &mut c,
        "https://mcp.linear.app",
        &["read", "write"],
        now - Duration::days(21),
    );
    let id = "lin-9d1c0e2f7a6b4c3d";
    c.clients.push(registration(
        id,
        "https://mcp.linear.app",
        now - Duration::days(21),
        RegistrationStatus::Active,
        true,
    ));
    c.token = Some(TokenSet {
        scope: Some("read write".into()),
        ..token(id, now, 3600, 41 * 60 + 2, true, 58)
    });
    refresh_history(
        &mut c,
        now,
        56,
        2700,
        1,
        &[(31, DiagnosisCode::UpstreamUnreachable)],
    );
    c.access = vec![
        access("claude-code", now, Some(0)),
        access("cursor", now, Some(3)),
        access("scripts", now, Some(240)),
    ];
    c
}

fn github(now: DateTime<Utc>) -> Connection {
    let mut c = oauth(
        "github",
        "https://api.githubcopilot.com/mcp/",
        now - Duration::days(9),
    );
    discovered(
        &mut c,
        "https://github.com/login/oauth",
        &["repo", "read:org"],
        now - Duration::days(9),
    );
    let id = "Iv23liGHfixture0000a";
    c.clients.push(ClientRegistration {
        method: RegistrationMethod::Preregistered,
        ..registration(
            id,
            "https://github.com/login/oauth",
            now - Duration::days(9),
            RegistrationStatus::Active,
            false,
        )
    });
    c.token = Some(token(id, now, 8 * 3600, 2 * 3600 + 640, true, 24));
    refresh_history(
        &mut c,
        now,
        22,
        6 * 3600,
        2,
        &[(18, DiagnosisCode::TokenEvicted)],
    );
    c.access = vec![
        access("claude-code", now, Some(1)),
        access("vscode", now, Some(9)),
    ];
    c
}

fn notion(now: DateTime<Utc>) -> Connection {
    let mut c = oauth(
        "notion",
        "https://mcp.notion.com/mcp",
        now - Duration::days(64),
    );
    discovered(
        &mut c,
        "https://mcp.notion.com",
        &[],
        now - Duration::days(64),
    );
    let issuer = "https://mcp.notion.com";
    c.clients.push(registration(
        "ntn-c1-0b6e4f0fixture",
        issuer,
        now - Duration::days(64),
        RegistrationStatus::Orphan,
        true,
    ));
    c.clients.push(registration(
        "ntn-c2-77aa13fixture",
        issuer,
        now - Duration::days(30),
        RegistrationStatus::Legacy,
        true,
    ));
    c.clients.push(registration(
        "ntn-c3-5f90c2fixture",
        issuer,
        now - Duration::days(2),
        RegistrationStatus::Rejected,
        false,
    ));
    c.token = Some(token("ntn-c3-5f90c2fixture", now, 3600, 5400, true, 31));
    refresh_history(
        &mut c,
        now,
        24,
        2700,
        3,
        &[(23, DiagnosisCode::ClientRejected)],
    );
    c.state = ConnectionState::NeedsReauth {
        diagnosis: DiagnosisCode::ClientRejected,
        detail: "the server expired tether's dynamically registered client".to_string(),
    };
    c.access = vec![access("claude-desktop", now, Some(35))];
    c
}

fn todoist(now: DateTime<Utc>) -> Connection {
    let mut c = oauth(
        "todoist",
        "https://ai.todoist.net/mcp",
        now - Duration::days(140),
    );
    discovered(
        &mut c,
        "https://todoist.com",
        &["data:read_write"],
        now - Duration::days(140),
    );
    let id = "td-3e8b1fixture00000";
    c.clients.push(registration(
        id,
        "https://todoist.com",
        now - Duration::days(140),
        RegistrationStatus::Active,
        false,
    ));
    c.token = Some(token(id, now, 3650 * 86_400, 140 * 86_400, false, 1));
    let mut e = Event::new(
        now - Duration::days(140),
        EventKind::Authorized,
        "signed in; no refresh token issued (10-year token)",
    );
    e.diagnosis = Some(DiagnosisCode::NoRefreshToken);
    c.record(e);
    c.access = vec![access("claude-code", now, Some(14))];
    c
}

fn atlassian(now: DateTime<Utc>) -> Connection {
    let mut c = oauth(
        "atlassian",
        "https://mcp.atlassian.com/v1/mcp",
        now - Duration::days(5),
    );
    discovered(
        &mut c,
        "https://auth.atlassian.com",
        &["read:jira-work", "write:jira-work"],
        now - Duration::days(5),
    );
    let id = "atl-0c4d2bfixture0000";
    c.clients.push(registration(
        id,
        "https://auth.atlassian.com",
        now - Duration::days(5),
        RegistrationStatus::Active,
        false,
    ));
    c.token = Some(token(id, now, 45 * 60, 42 * 60 + 20, true, 143));
    refresh_history(&mut c, now, 70, 2000, 4, &[]);
    c.state = ConnectionState::Expiring;
    c.access = vec![access("cursor", now, Some(6))];
    c
}

fn sentry(now: DateTime<Utc>) -> Connection {
    let mut c = oauth(
        "sentry",
        "https://mcp.sentry.dev/mcp",
        now - Duration::days(3),
    );
    discovered(
        &mut c,
        "https://sentry.io",
        &["org:read", "project:read"],
        now - Duration::days(3),
    );
    let id = "sn-61f0a9fixture0000";
    c.clients.push(registration(
        id,
        "https://sentry.io",
        now - Duration::days(3),
        RegistrationStatus::Active,
        false,
    ));
    c.token = Some(token(id, now, 3600, 3600 - 38, true, 12));
    refresh_history(
        &mut c,
        now,
        12,
        2700,
        5,
        &[
            (10, DiagnosisCode::UpstreamUnreachable),
            (11, DiagnosisCode::UpstreamUnreachable),
        ],
    );
    c.state = ConnectionState::Degraded {
        why: "token endpoint answered 503; retrying".to_string(),
    };
    c.access = vec![access("claude-code", now, Some(1))];
    c
}

fn asana(now: DateTime<Utc>) -> Connection {
    let mut c = oauth(
        "asana",
        "https://mcp.asana.com/mcp",
        now - Duration::days(40),
    );
    discovered(
        &mut c,
        "https://app.asana.com",
        &["default"],
        now - Duration::days(40),
    );
    let id = "as-1207fixture000000";
    c.clients.push(registration(
        id,
        "https://app.asana.com",
        now - Duration::days(40),
        RegistrationStatus::Active,
        true,
    ));
    c.token = Some(token(id, now, 3600, 19 * 60 + 3600, true, 57));
    refresh_history(
        &mut c,
        now,
        30,
        2700,
        6,
        &[(29, DiagnosisCode::InvalidGrantLostResponse)],
    );
    c.state = ConnectionState::NeedsReauth {
        diagnosis: DiagnosisCode::InvalidGrantLostResponse,
        detail: "the refresh response was lost; the server had already rotated the token"
            .to_string(),
    };
    c.access = vec![access("claude-code", now, Some(19))];
    c
}

fn stripe(now: DateTime<Utc>) -> Connection {
    let upstream = parse_upstream("https://mcp.stripe.com/")
        .unwrap_or_else(|_| url::Url::parse("https://example.com/").expect("literal URL"));
    let mut c = Connection::new(
        "stripe"
            .parse()
            .unwrap_or_else(|_| "fixture".parse().expect("literal name")),
        upstream,
        Auth::ApiKey {
            header: ApiKeyHeader::default(),
            value: Secret::new("rk_live_fixture_not_a_real_key_000"),
        },
        now - Duration::days(11),
    );
    c.record(Event::new(
        now - Duration::days(11),
        EventKind::Added,
        "added with an API key from STRIPE_API_KEY",
    ));
    c.access = vec![access("scripts", now, Some(95))];
    c
}

fn wiki(now: DateTime<Utc>) -> Connection {
    let mut c = oauth(
        "internal-wiki",
        "https://wiki.corp.example/mcp",
        now - Duration::minutes(4),
    );
    c.state = ConnectionState::NeedsLogin;
    c.record(Event::new(
        now - Duration::minutes(4),
        EventKind::Added,
        "added; not authorized yet",
    ));
    c
}

/// Every screen and dialog worth a snapshot or a screenshot, by name, at `width`×`height`.
pub fn scenes(width: u16, height: u16) -> Vec<(&'static str, App)> {
    use super::action::{Command, DetailTab};
    let now = fixed_now();
    let base = |theme: Option<&str>| app(demo_state(now), theme, now, width, height);
    let with = |commands: &[Command]| {
        let mut a = base(None);
        for c in commands {
            a.update(Action::Command(*c));
        }
        a
    };
    let select = |name: &str, commands: &[Command]| {
        let mut a = base(None);
        let index = a
            .visible()
            .iter()
            .position(|c| c.name.as_str() == name)
            .unwrap_or(0);
        for _ in 0..index {
            a.update(Action::Command(Command::Down));
        }
        for c in commands {
            a.update(Action::Command(*c));
        }
        a
    };
    let mut filter = with(&[Command::Filter]);
    type_text(&mut filter, "lin");
    let mut empty = app(state_of(Vec::new(), now), None, now, width, height);
    empty.update(Action::Tick(now));
    let mut elsewhere = demo_state(now);
    elsewhere.proxy = ProxyStatus::ServedElsewhere { addr: proxy_addr() };
    elsewhere.key_source = crate::vault::KeySource::Keyring;
    let mut endpoint = base(None);
    endpoint.update(Action::Engine(crate::engine::EngineEvent::Endpoint {
        connection: "linear".to_string(),
        label: "claude-code".to_string(),
        url: Secret::new(format!(
            "http://{}/s/FIXTURE-not-a-real-secret-0000000000000000/mcp",
            proxy_addr()
        )),
    }));
    vec![
        ("main", base(None)),
        ("history", with(&[Command::ShowTab(DetailTab::History)])),
        (
            "diagnosis",
            select("asana", &[Command::ShowTab(DetailTab::Diagnosis)]),
        ),
        (
            "diagnosis-client-rejected",
            select("notion", &[Command::ShowTab(DetailTab::Diagnosis)]),
        ),
        (
            "diagnosis-recovered",
            select("github", &[Command::ShowTab(DetailTab::Diagnosis)]),
        ),
        (
            "clients",
            select(
                "notion",
                &[Command::ShowTab(DetailTab::Clients), Command::ToggleFocus],
            ),
        ),
        ("traffic", with(&[Command::ShowTab(DetailTab::Traffic)])),
        ("overview-api-key", select("stripe", &[])),
        ("overview-needs-login", select("internal-wiki", &[])),
        ("wizard-form", wizard_form(base(None), None)),
        ("wizard-invalid", wizard_form(base(None), Some("not a url"))),
        ("wizard-steps", wizard_steps(base(None), false)),
        ("wizard-failed", wizard_steps(base(None), true)),
        ("help", with(&[Command::Help])),
        ("confirm-delete", with(&[Command::Delete])),
        (
            "confirm-orphans",
            select("notion", &[Command::CleanOrphans]),
        ),
        ("endpoint", endpoint),
        ("events", with(&[Command::Events])),
        ("filter", filter),
        ("empty", empty),
        ("served-elsewhere", app(elsewhere, None, now, width, height)),
        ("theme-light", base(Some("tether-light"))),
        ("theme-high-contrast", base(Some("high-contrast"))),
        ("theme-catppuccin", select("asana", &[])),
    ]
    .into_iter()
    .map(|(name, mut a)| {
        if name == "theme-catppuccin" {
            a = {
                let mut t = app(
                    demo_state(now),
                    Some("catppuccin-mocha"),
                    now,
                    width,
                    height,
                );
                let index = t
                    .visible()
                    .iter()
                    .position(|c| c.name.as_str() == "asana")
                    .unwrap_or(0);
                for _ in 0..index {
                    t.update(Action::Command(Command::Down));
                }
                t.update(Action::Command(Command::ShowTab(DetailTab::Diagnosis)));
                t
            };
        }
        (name, a)
    })
    .collect()
}

/// The add wizard with a name and URL typed, the auth kind focused.
fn wizard_form(mut a: App, url: Option<&str>) -> App {
    use super::action::Command;
    a.update(Action::Command(Command::Add));
    type_text(&mut a, "linear-work");
    a.update(Action::Command(Command::NextField));
    type_text(&mut a, url.unwrap_or("https://mcp.linear.app/mcp"));
    a.update(Action::Command(Command::NextField));
    if url.is_some() {
        a.update(Action::Command(Command::Submit));
    }
    a
}

/// The wizard after submitting, with the login's steps as the engine reports them.
fn wizard_steps(a: App, fail: bool) -> App {
    use super::action::Command;
    use crate::engine::{EngineEvent, LoginStep, StepOutcome};
    let mut a = wizard_form(a, None);
    a.update(Action::Command(Command::Submit));
    let done = |s: &str| StepOutcome::Done(s.to_string());
    let mut steps = vec![
        (
            LoginStep::ResourceMetadata,
            done("https://mcp.linear.app/.well-known/oauth-protected-resource/mcp"),
        ),
        (
            LoginStep::AuthServerMetadata,
            done("issuer https://mcp.linear.app · PKCE S256"),
        ),
    ];
    if fail {
        steps.push((
            LoginStep::ClientRegistration,
            StepOutcome::Failed {
                diagnosis: DiagnosisCode::ClientRejected,
                detail: "registration endpoint answered 400 invalid_client_metadata".to_string(),
            },
        ));
    } else {
        steps.extend([
            (LoginStep::ClientRegistration, done("dynamic registration, client lin-4c1e…")),
            (
                LoginStep::BrowserOpened {
                    url: "https://mcp.linear.app/authorize?response_type=code&client_id=lin-4c1e…&code_challenge_method=S256&state=…".to_string(),
                },
                done(""),
            ),
            (LoginStep::WaitingForCallback, StepOutcome::Running),
        ]);
    }
    for (step, outcome) in steps {
        a.update(Action::Engine(EngineEvent::LoginStep {
            connection: "linear-work".to_string(),
            step,
            outcome,
        }));
    }
    a
}
