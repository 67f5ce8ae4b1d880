//! The help overlay (`?`), generated from the keymap so it can never disagree with it,
//! followed by what each state glyph means. Every main-screen action is listed first and
//! can be chosen (↑/↓) and run (Enter) from here.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::{centered, dialog, state_span};
use crate::app::App;
use crate::keymap::{self, Context};
use crate::theme::Theme;
use tether_core::vault::{ConnectionState, DiagnosisCode};

const KEY_COLUMN: usize = 16;

/// The help's lines; the main-screen binding `selected` is highlighted.
pub fn lines(theme: &Theme, selected: Option<usize>) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for context in Context::ALL {
        if context == Context::Help || keymap::bindings(context).next().is_none() {
            continue;
        }
        if !out.is_empty() {
            out.push(Line::raw(""));
        }
        out.push(Line::styled(context.title(), theme.title()));
        for (i, b) in keymap::bindings(context).enumerate() {
            let keys = b
                .keys
                .iter()
                .map(|k| k.label())
                .collect::<Vec<_>>()
                .join(" ");
            let chosen = context == Context::Main && selected == Some(i);
            let marker = if chosen { "›" } else { " " };
            let line = Line::from(vec![
                Span::styled(format!("{marker} {keys:<KEY_COLUMN$}"), theme.key()),
                Span::raw(b.help),
            ]);
            out.push(if chosen {
                line.style(theme.selected())
            } else {
                line
            });
        }
    }
    out.push(Line::raw(""));
    out.push(Line::styled("States", theme.title()));
    let states = [
        (
            ConnectionState::Healthy,
            "token valid, refreshed ahead of expiry",
        ),
        (
            ConnectionState::Expiring,
            "token close to expiry, a refresh is due",
        ),
        (ConnectionState::Refreshing, "a refresh is in flight"),
        (
            ConnectionState::Degraded { why: String::new() },
            "the server failed; retrying, token kept",
        ),
        (
            ConnectionState::NeedsReauth {
                diagnosis: DiagnosisCode::InvalidGrantExpiredOrRevoked,
                detail: String::new(),
            },
            "cannot refresh: see the Diagnosis tab",
        ),
        (
            ConnectionState::NeedsLogin,
            "added, not authorized yet: press l",
        ),
        (ConnectionState::Disabled, "switched off"),
    ];
    for (state, meaning) in states {
        let span = state_span(theme, &state);
        let pad = (KEY_COLUMN + 2).saturating_sub(span.content.chars().count());
        out.push(Line::from(vec![
            Span::raw("  "),
            span,
            Span::raw(" ".repeat(pad.saturating_sub(2))),
            Span::styled(meaning, theme.muted()),
        ]));
    }
    out.push(Line::raw(""));
    out.push(Line::styled(
        "Mouse: click a row to select it, a tab to open it; the wheel scrolls.",
        theme.muted(),
    ));
    out
}

/// Lines in the help, for scrolling.
pub fn len() -> usize {
    lines(&Theme::default_theme(), None).len()
}

/// Where the help overlay sits in a terminal of `screen`.
fn area(screen: Rect) -> Rect {
    centered(screen, 84, screen.height.saturating_sub(4))
}

/// The view that shows main-screen binding `selected` (it sits on line `1 + selected`,
/// after the section title), for a terminal of `screen`.
pub fn scroll_for(selected: usize, screen: Rect) -> u16 {
    let inner = area(screen).height.saturating_sub(2).max(1);
    let line = 1 + selected as u16;
    (line + 1).saturating_sub(inner)
}

pub fn draw(frame: &mut Frame, app: &App, selected: usize, scroll: Option<u16>) {
    let theme = app.theme();
    let area = area(frame.area());
    let lines = lines(theme, Some(selected));
    let inner_height = area.height.saturating_sub(2);
    let max = (lines.len() as u16).saturating_sub(inner_height);
    let scroll = scroll.unwrap_or_else(|| scroll_for(selected, frame.area()));
    let block = dialog(theme, " Help — keys ").title_bottom(
        Line::styled(
            " ↑/↓ choose · Enter run · PgUp/PgDn scroll · Esc close ",
            theme.muted(),
        )
        .right_aligned(),
    );
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((scroll.min(max), 0)),
        area,
    );
}
