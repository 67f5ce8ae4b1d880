//! The Overview tab: upstream, issuer, client id (masked), scopes, the token's times with a
//! gauge of its remaining lifetime, the next scheduled refresh and the generation, and the
//! forecast: when the login will die, where a limit is known.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{countdown, field, state_span, urgency};
use crate::app::App;
use crate::theme::Theme;
use tether_core::engine::ProxyStatus;
use tether_core::secret::mask;
use tether_core::summary;
use tether_core::vault::{Auth, Connection, ConnectionState, RegistrationMethod, TokenSet};

/// Width of the lifetime gauge, in cells.
const GAUGE: usize = 30;

pub fn lines(app: &App, c: &Connection) -> Vec<Line<'static>> {
    let theme = app.theme();
    let now = app.now();
    let mut out = vec![field(theme, "State", state_line(app, c))];
    out.push(field(
        theme,
        "Upstream",
        vec![Span::raw(c.upstream.to_string())],
    ));
    out.push(field(theme, "Local URL", vec![local_url(app, c)]));
    match &c.auth {
        Auth::OAuth { scopes, discovery } => {
            let issuer = discovery
                .as_ref()
                .map(|d| d.issuer.clone())
                .or_else(|| c.token.as_ref().map(|t| t.issuer.clone()));
            out.push(field(theme, "Auth", vec![Span::raw("OAuth 2.1 + PKCE")]));
            out.push(field(theme, "Issuer", vec![optional(theme, issuer)]));
            out.push(field(theme, "Client id", client(theme, c)));
            let scope = c
                .token
                .as_ref()
                .and_then(|t| t.scope.clone())
                .or_else(|| (!scopes.is_empty()).then(|| scopes.join(" ")));
            out.push(field(theme, "Scopes", vec![optional(theme, scope)]));
            if let Some(step) = c.step_up.as_ref().filter(|s| !s.scopes.is_empty()) {
                let wanted = step.scopes.join(" ");
                let asks = if step.to_ask().is_empty() {
                    format!("'{wanted}' wanted; {} sign-ins did not get it", step.logins)
                } else {
                    format!("'{wanted}' wanted by the server — press l to sign in for it")
                };
                out.push(field(
                    theme,
                    "Step-up",
                    vec![Span::styled(asks, theme.fg(theme.warning))],
                ));
            }
        }
        Auth::ApiKey { header, value } => {
            out.push(field(
                theme,
                "Auth",
                vec![Span::raw(format!("API key in '{header}'"))],
            ));
            out.push(field(theme, "Key", vec![Span::raw(value.masked())]));
        }
        Auth::None => out.push(field(
            theme,
            "Auth",
            vec![Span::styled("none (the server is open)", theme.muted())],
        )),
    }
    let Some(token) = &c.token else {
        if matches!(c.auth, Auth::OAuth { .. }) {
            out.push(field(
                theme,
                "Token",
                vec![Span::styled(
                    "none yet — press l to log in",
                    theme.fg(theme.warning),
                )],
            ));
        }
        return out;
    };
    out.push(field(
        theme,
        "Obtained",
        vec![
            Span::raw(summary::relative(token.obtained_at, now)),
            Span::styled(format!("  generation {}", token.generation), theme.muted()),
        ],
    ));
    out.push(field(
        theme,
        "Expires in",
        vec![countdown(theme, Some(token), now)],
    ));
    out.push(field(theme, "Lifetime", gauge(theme, token, now)));
    let next = app.state().next_refresh.get(c.name.as_str());
    out.push(field(
        theme,
        "Next refresh",
        vec![match (next, &token.refresh_token) {
            (Some(at), _) => Span::raw(summary::relative(*at, now)),
            (None, None) => {
                Span::styled("none: no refresh token (long-lived token)", theme.muted())
            }
            (None, Some(_)) => Span::styled("not scheduled", theme.muted()),
        }]
        .into_iter()
        .chain(token.refresh_token.as_ref().map(|r| {
            Span::styled(
                format!("  with refresh token {}", r.masked()),
                theme.muted(),
            )
        }))
        .collect(),
    ));
    let observed = tether_core::forecast::observed(&app.state().store);
    if let Some(f) = tether_core::forecast::forecast(c, &observed, now) {
        let shown = if f.is_near() {
            f.sentence()
        } else {
            format!("{} {}", f.reason, summary::relative(f.until, now))
        };
        out.push(field(
            theme,
            "Forecast",
            vec![Span::styled(shown, super::forecast_style(theme, &f))],
        ));
    }
    if let Some(j) = &c.journal {
        out.push(field(
            theme,
            "In flight",
            vec![Span::styled(
                format!(
                    "refresh from generation {} started {} by process {}",
                    j.generation,
                    summary::relative(j.started_at, now),
                    j.pid
                ),
                theme.fg(theme.info),
            )],
        ));
    }
    out
}

fn state_line(app: &App, c: &Connection) -> Vec<Span<'static>> {
    let theme = app.theme();
    let state = tether_core::summary::shown_state(c, app.now());
    let mut spans = vec![state_span(theme, &state)];
    let why = match state.as_ref() {
        ConnectionState::Degraded { why } => Some(why.clone()),
        ConnectionState::NeedsReauth { detail, .. } => Some(detail.clone()),
        ConnectionState::NeedsLogin => Some("press l to authorize".to_string()),
        _ => None,
    };
    if let Some(why) = why {
        spans.push(Span::styled(format!(" — {why}"), theme.muted()));
    }
    spans
}

fn local_url(app: &App, c: &Connection) -> Span<'static> {
    let theme = app.theme();
    let addr = match &app.state().proxy {
        ProxyStatus::Serving { addr } | ProxyStatus::ServedElsewhere { addr, .. } => {
            addr.to_string()
        }
        ProxyStatus::Off { .. } => return Span::styled("proxy off", theme.muted()),
    };
    Span::styled(
        format!(
            "{}  (c: copy a client's URL)",
            tether_core::access::bearer_endpoint(&format!("http://{addr}"), c.name.as_str())
        ),
        theme.fg(theme.accent),
    )
}

fn client(theme: &Theme, c: &Connection) -> Vec<Span<'static>> {
    let id = c
        .token
        .as_ref()
        .map(|t| t.client_id.clone())
        .or_else(|| c.clients.last().map(|r| r.client_id.clone()));
    let Some(id) = id else {
        return vec![Span::styled("none registered yet", theme.muted())];
    };
    let method = c
        .clients
        .iter()
        .find(|r| r.client_id == id)
        .map(|r| match r.method {
            RegistrationMethod::Dcr => "dynamic registration",
            RegistrationMethod::Preregistered => "pre-registered",
            RegistrationMethod::Cimd => "client ID metadata document",
        });
    let mut spans = vec![Span::raw(mask(&id))];
    if let Some(method) = method {
        spans.push(Span::styled(format!("  ({method})"), theme.muted()));
    }
    spans
}

fn optional(theme: &Theme, value: Option<String>) -> Span<'static> {
    match value {
        Some(v) if !v.is_empty() => Span::raw(v),
        _ => Span::styled("—", theme.muted()),
    }
}

/// `━━━━━━━━───────── 42% left`, coloured by urgency.
fn gauge(
    theme: &Theme,
    token: &TokenSet,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Span<'static>> {
    let Some(expires_at) = token.expires_at else {
        return vec![Span::styled("does not expire", theme.muted())];
    };
    let lifetime = (expires_at - token.obtained_at).num_seconds().max(1);
    let left = (expires_at - now).num_seconds().clamp(0, lifetime);
    let ratio = left as f64 / lifetime as f64;
    let filled = ((ratio * GAUGE as f64).round() as usize).min(GAUGE);
    let colour = urgency(theme, left, Some(lifetime));
    vec![
        Span::styled("━".repeat(filled), Style::new().fg(colour)),
        Span::styled("─".repeat(GAUGE - filled), theme.muted()),
        Span::styled(
            format!(
                " {:>3}% left of {}",
                (ratio * 100.0).round() as u32,
                summary::duration(lifetime)
            ),
            theme.muted(),
        ),
    ]
}
