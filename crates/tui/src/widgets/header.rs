//! The header: the app's name, who serves the proxy and where, counts of connections by
//! state; below, why the proxy is off (wrapped: it names who holds the port and the fix)
//! and a warning line when the vault key is on the file fallback.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{bold, fit, state_look, wrapped_height};
use crate::app::App;
use tether_core::engine::ProxyStatus;
use tether_core::vault::ConnectionState;

/// Rows the proxy's off reason may take before it is cut.
const MAX_REASON_ROWS: u16 = 3;

/// One line, plus the proxy's off reason (wrapped at `width`), plus one for the key warning.
pub fn height(app: &App, width: u16) -> u16 {
    let reason = off_reason(app).map_or(0, |line| {
        wrapped_height(&[line], width).min(MAX_REASON_ROWS)
    });
    1 + reason + u16::from(app.state().key_source.fallback_warning().is_some())
}

/// Why the proxy is off, as a line to wrap under the header.
fn off_reason(app: &App) -> Option<Line<'static>> {
    let ProxyStatus::Off { reason } = &app.state().proxy else {
        return None;
    };
    let theme = app.theme();
    Some(Line::from(vec![
        Span::styled(" ⚠ ", bold(theme.fg(theme.warning))),
        Span::styled(reason.clone(), theme.fg(theme.warning)),
    ]))
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme();
    let reason_rows = height(app, area.width)
        - 1
        - u16::from(app.state().key_source.fallback_warning().is_some());
    let [top, reason, warning] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(reason_rows),
        Constraint::Fill(1),
    ])
    .areas(area);
    let mut counts = state_counts(app, false);
    if counts.width() as u16 + 44 > top.width {
        counts = state_counts(app, true);
    }
    let counts_width = counts.width() as u16;
    let [left, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(counts_width + 1)]).areas(top);
    // The badge's text takes the screen's background; a terminal default could be light.
    let badge = match theme.background {
        Color::Reset => Color::Black,
        colour => colour,
    };
    let mut spans = vec![
        Span::styled(" tether ", bold(Style::new().fg(badge).bg(theme.accent))),
        Span::raw(" "),
    ];
    spans.extend(proxy(app));
    frame.render_widget(Paragraph::new(Line::from(spans)), left);
    frame.render_widget(Paragraph::new(counts), right);
    if let Some(line) = off_reason(app) {
        frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), reason);
    }
    if let Some(text) = app.state().key_source.fallback_warning() {
        let line = Line::from(vec![
            Span::styled(" ⚠ ", bold(theme.fg(theme.warning))),
            Span::styled(
                fit(&text, warning.width.saturating_sub(3) as usize),
                theme.fg(theme.warning),
            ),
        ]);
        frame.render_widget(Paragraph::new(line), warning);
    }
}

fn proxy(app: &App) -> Vec<Span<'static>> {
    let theme = app.theme();
    match &app.state().proxy {
        ProxyStatus::Serving { addr } => vec![
            Span::styled("● ", theme.fg(theme.ok)),
            Span::raw("proxy on "),
            Span::styled(format!("http://{addr}"), theme.fg(theme.accent)),
        ],
        ProxyStatus::ServedElsewhere { addr, service } => vec![
            Span::styled("◆ ", theme.fg(theme.info)),
            Span::raw(match service {
                Some(_) => "proxy served by the tether service at ",
                None => "proxy served by another tether at ",
            }),
            Span::styled(format!("{addr}"), theme.fg(theme.accent)),
            Span::styled(" · watching the shared vault", theme.muted()),
        ],
        ProxyStatus::Off { .. } => vec![
            Span::styled("○ ", theme.fg(theme.warning)),
            Span::styled("proxy off", theme.fg(theme.warning)),
        ],
    }
}

/// "● 3 healthy  ✗ 1 needs-reauth", one per state present, in a fixed order; `compact`
/// leaves the words out.
fn state_counts(app: &App, compact: bool) -> Line<'static> {
    let theme = app.theme();
    let order = [
        ConnectionState::Healthy,
        ConnectionState::Expiring,
        ConnectionState::Refreshing,
        ConnectionState::Degraded { why: String::new() },
        ConnectionState::NeedsReauth {
            diagnosis: tether_core::vault::DiagnosisCode::ClientRejected,
            detail: String::new(),
        },
        ConnectionState::NeedsLogin,
        ConnectionState::Disabled,
    ];
    let connections = app.state().store.connections();
    let mut spans = Vec::new();
    for state in &order {
        let n = connections
            .iter()
            .filter(|c| c.state.word() == state.word())
            .count();
        if n == 0 {
            continue;
        }
        let (glyph, colour) = state_look(theme, state);
        if !spans.is_empty() {
            spans.push(Span::raw(if compact { " " } else { "  " }));
        }
        spans.push(Span::styled(format!("{glyph} {n}"), theme.fg(colour)));
        if !compact {
            spans.push(Span::styled(format!(" {}", state.word()), theme.muted()));
        }
    }
    if spans.is_empty() {
        spans.push(Span::styled("no connections", theme.muted()));
    }
    Line::from(spans)
}
