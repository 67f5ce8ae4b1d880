//! One module per screen region, and the small pieces they share: state glyphs, urgency
//! colours for countdowns, panes, label/value lines and centred dialogs.

pub mod call;
pub mod calls;
pub mod clients;
pub mod detail;
pub mod diagnosis;
pub mod dialogs;
pub mod events;
pub mod footer;
pub mod header;
pub mod help;
pub mod history;
pub mod overview;
pub mod table;
pub mod traffic;
pub mod wizard;

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType};

use super::theme::Theme;
use tether_core::summary;
use tether_core::vault::{ConnectionState, EventKind, TokenSet};

/// The glyph and theme colour of a connection state.
pub fn state_look(theme: &Theme, state: &ConnectionState) -> (&'static str, Color) {
    match state {
        ConnectionState::Healthy => ("●", theme.ok),
        ConnectionState::Expiring => ("◐", theme.warning),
        ConnectionState::Refreshing => ("↻", theme.info),
        ConnectionState::Degraded { .. } => ("▲", theme.warning),
        ConnectionState::NeedsReauth { .. } => ("✗", theme.error),
        ConnectionState::NeedsLogin => ("○", theme.info),
        ConnectionState::Disabled => ("⊘", theme.muted),
    }
}

/// "● healthy", coloured.
pub fn state_span(theme: &Theme, state: &ConnectionState) -> Span<'static> {
    let (glyph, colour) = state_look(theme, state);
    Span::styled(format!("{glyph} {}", state.word()), Style::new().fg(colour))
}

/// The colour of a countdown: plenty of time, under 5 minutes (or a fifth of the
/// lifetime), under a minute or expired.
pub fn urgency(theme: &Theme, left_secs: i64, lifetime_secs: Option<i64>) -> Color {
    let fraction = lifetime_secs
        .filter(|l| *l > 0)
        .map(|l| left_secs as f64 / l as f64);
    if left_secs < 60 {
        theme.error
    } else if left_secs < 300 || fraction.is_some_and(|f| f < 0.2) {
        theme.warning
    } else {
        theme.ok
    }
}

/// The token's time left as a coloured countdown ("18m 58s", "expired", "no expiry").
pub fn countdown(theme: &Theme, token: Option<&TokenSet>, now: DateTime<Utc>) -> Span<'static> {
    let Some(token) = token else {
        return Span::styled("—", theme.muted());
    };
    let Some(expires_at) = token.expires_at else {
        return Span::styled("no expiry", theme.muted());
    };
    let left = (expires_at - now).num_seconds();
    if left <= 0 {
        return Span::styled("expired", Style::new().fg(theme.error));
    }
    let lifetime = (expires_at - token.obtained_at).num_seconds();
    Span::styled(
        summary::duration(left),
        Style::new().fg(urgency(theme, left, Some(lifetime))),
    )
}

/// A forecast's colour: its level's (a limit further than a week is plain).
pub fn forecast_style(theme: &Theme, f: &tether_core::forecast::Forecast) -> Style {
    use tether_core::forecast::Level;
    match f.level {
        Level::Error => Style::new().fg(theme.error),
        Level::Warn => Style::new().fg(theme.warning),
        Level::Ok => theme.muted(),
    }
}

/// "3m ago" (largest unit only, for narrow columns), or a muted dash.
pub fn ago(theme: &Theme, at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Span<'static> {
    match at {
        Some(at) => Span::raw(short_ago(at, now)),
        None => Span::styled("—", theme.muted()),
    }
}

/// "45m ago", "6h ago", "3d ago", "in 2m": one unit, so it fits a table column.
pub fn short_ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let n = secs.abs();
    let unit = match n {
        0..60 => format!("{n}s"),
        60..3600 => format!("{}m", n / 60),
        3600..86_400 => format!("{}h", n / 3600),
        _ => format!("{}d", n / 86_400),
    };
    match secs {
        0 => "now".to_string(),
        s if s > 0 => format!("{unit} ago"),
        _ => format!("in {unit}"),
    }
}

/// A bordered pane with a title; its border shows whether it has the keyboard.
pub fn pane<'a>(theme: &Theme, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border(focused))
        .title(title.into().style(theme.title()))
}

/// A dialog's frame: its own surface colour and a focused border.
pub fn dialog<'a>(theme: &Theme, title: impl Into<Line<'a>>) -> Block<'a> {
    pane(theme, title, true).style(theme.dialog())
}

/// A `width`×`height` rectangle centred in `area`, never larger than it.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// " Label       value" with the label muted and padded.
pub fn field<'a>(theme: &Theme, label: &str, value: Vec<Span<'a>>) -> Line<'a> {
    let mut spans = vec![Span::styled(format!("{label:<15}"), theme.muted())];
    spans.extend(value);
    Line::from(spans)
}

/// What an event kind is called on screen.
pub fn event_word(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Added => "added",
        EventKind::Discovered => "discovered",
        EventKind::Registered => "registered",
        EventKind::Authorized => "authorized",
        EventKind::Refreshed => "refreshed",
        EventKind::RefreshFailed => "refresh failed",
        EventKind::Adopted => "adopted",
        EventKind::StateChanged => "state changed",
        EventKind::ClientAdded => "client added",
        EventKind::ClientRevoked => "client revoked",
        EventKind::Rejected => "token rejected early",
        EventKind::Renamed => "renamed",
        EventKind::Other => "other",
    }
}

pub fn event_colour(theme: &Theme, kind: EventKind) -> Color {
    match kind {
        EventKind::RefreshFailed => theme.error,
        EventKind::Refreshed | EventKind::Authorized | EventKind::Adopted => theme.ok,
        EventKind::StateChanged | EventKind::ClientRevoked | EventKind::Rejected => theme.warning,
        _ => theme.text,
    }
}

pub fn bold(style: Style) -> Style {
    style.add_modifier(Modifier::BOLD)
}

/// Cuts `text` to `width` columns, ending in "…" when it had to cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// Rows `lines` take when wrapped at `width` (character wrapping, an upper bound for words).
pub fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    let width = width.max(1) as usize;
    lines
        .iter()
        .map(|l| l.width().div_ceil(width).max(1))
        .sum::<usize>()
        .min(u16::MAX as usize) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn countdowns_turn_warning_then_error_as_expiry_nears() {
        let t = Theme::default_theme();
        assert_eq!(urgency(&t, 3000, Some(3600)), t.ok);
        assert_eq!(
            urgency(&t, 600, Some(3600)),
            t.warning,
            "under a fifth of the lifetime"
        );
        assert_eq!(urgency(&t, 299, None), t.warning, "under five minutes");
        assert_eq!(
            urgency(&t, 59, Some(60 * 86_400)),
            t.error,
            "under a minute"
        );
        let now = Utc::now();
        let token = |left: i64| TokenSet {
            client_id: String::new(),
            issuer: String::new(),
            access_token: tether_core::secret::Secret::new("x"),
            refresh_token: None,
            scope: None,
            expires_at: Some(now + Duration::seconds(left)),
            obtained_at: now - Duration::seconds(3600 - left),
            generation: 1,
            used_refresh_hashes: Vec::new(),
            granted_at: None,
            refresh_expires_at: None,
        };
        assert_eq!(countdown(&t, Some(&token(-5)), now).content, "expired");
        assert_eq!(countdown(&t, Some(&token(250)), now).content, "4m 10s");
        assert_eq!(countdown(&t, None, now).content, "—");
    }

    #[test]
    fn short_times_fit_a_column() {
        let now = Utc::now();
        assert_eq!(short_ago(now - Duration::seconds(2736), now), "45m ago");
        assert_eq!(short_ago(now - Duration::days(3), now), "3d ago");
        assert_eq!(short_ago(now + Duration::seconds(90), now), "in 1m");
        assert_eq!(short_ago(now, now), "now");
        assert_eq!(fit("invalid_grant.reused", 8), "invalid…");
        assert_eq!(fit("ok", 8), "ok");
    }
}
