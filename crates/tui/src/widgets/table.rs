//! The connections table: name, upstream host, state, a live countdown coloured by
//! urgency, last refresh, refreshes ok/failed, active clients and the diagnosis code (or,
//! with none, a near forecast: "sign in again within 3d").

use chrono::{DateTime, Duration, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::{ago, countdown, fit, pane, state_span};
use crate::app::{App, Focus};
use crate::theme::Theme;
use tether_core::engine::EngineState;
use tether_core::forecast::{Forecast, Observed};
use tether_core::summary::ConnectionSummary;
use tether_core::vault::Connection;

/// A client that called within this long counts as active.
const ACTIVE_WITHIN_MINUTES: i64 = 15;

/// Wide enough for the host column.
const WIDE: u16 = 112;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme();
    let wide = area.width >= WIDE;
    let visible = app.visible();
    let mut header = vec!["Name"];
    if wide {
        header.push("Host");
    }
    header.extend([
        "State",
        "Expires in",
        "Refreshed",
        "OK/fail",
        "Clients",
        "Diagnosis",
    ]);
    let observed = tether_core::forecast::observed(&app.state().store);
    let rows = visible
        .iter()
        .map(|c| row(theme, app.state(), c, &observed, app.now(), wide));
    let mut widths = vec![Constraint::Length(name_width(&visible))];
    if wide {
        widths.push(Constraint::Length(24));
    }
    widths.extend([
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Fill(1),
    ]);
    let title = Line::from(vec![
        Span::raw(" Connections "),
        Span::styled(format!("{} ", visible.len()), theme.muted()),
    ]);
    let mut block = pane(theme, title, app.focus() == Focus::Table);
    if app.filtering || !app.filter_text().is_empty() {
        let cursor = if app.filtering { "▏" } else { "" };
        block = block.title_top(
            Line::from(vec![
                Span::styled(" / ", theme.key()),
                Span::raw(format!("{}{cursor} ", app.filter_text())),
            ])
            .right_aligned(),
        );
    }
    if visible.is_empty() {
        let hint = if app.filter_text().is_empty() {
            " no connections yet — press a to add one "
        } else {
            " nothing matches the filter — Esc clears it "
        };
        block = block.title_bottom(Line::styled(hint, theme.muted()).centered());
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.title()))
        .block(block)
        .column_spacing(1)
        .row_highlight_style(theme.selected());
    let mut state = TableState::new()
        .with_offset(app.table_offset)
        .with_selected(app.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
}

fn name_width(visible: &[&Connection]) -> u16 {
    let longest = visible
        .iter()
        .map(|c| c.name.as_str().len())
        .max()
        .unwrap_or(4);
    longest.clamp(8, 20) as u16
}

fn row<'a>(
    theme: &Theme,
    state: &EngineState,
    c: &Connection,
    observed: &Observed,
    now: DateTime<Utc>,
    wide: bool,
) -> Row<'a> {
    let summary = ConnectionSummary::with_observed(c, observed, now);
    let mut cells = vec![Cell::from(c.name.to_string())];
    if wide {
        let host = c.upstream.host_str().unwrap_or_default();
        cells.push(Cell::from(Span::styled(fit(host, 24), theme.muted())));
    }
    let failed_style = if summary.refreshes_failed > 0 {
        theme.fg(theme.error)
    } else {
        theme.muted()
    };
    let (active, total) = active_clients(state, c, now);
    cells.extend([
        Cell::from(state_span(
            theme,
            &tether_core::summary::shown_state(c, now),
        )),
        Cell::from(countdown(theme, c.token.as_ref(), now)),
        Cell::from(ago(theme, summary.last_refresh, now)),
        Cell::from(Line::from(vec![
            Span::raw(summary.refreshes_ok.to_string()),
            Span::styled("/", theme.muted()),
            Span::styled(summary.refreshes_failed.to_string(), failed_style),
        ])),
        Cell::from(Line::from(vec![
            Span::raw(active.to_string()),
            Span::styled(format!("/{total}"), theme.muted()),
        ])),
        Cell::from(diagnosis(theme, c, summary.forecast.as_ref())),
    ]);
    Row::new(cells)
}

/// The diagnosis code; with none, a near forecast ("sign in again within 3d").
fn diagnosis(theme: &Theme, c: &Connection, forecast: Option<&Forecast>) -> Span<'static> {
    if let Some(f) = forecast.filter(|f| f.is_near() && c.state.diagnosis().is_none()) {
        return Span::styled(f.advice(), super::forecast_style(theme, f));
    }
    match c.state.diagnosis() {
        Some(code) => Span::styled(code.as_str(), theme.fg(theme.error)),
        None => match c.history.last().and_then(|e| e.diagnosis) {
            Some(code) if c.state.word() == "degraded" => {
                Span::styled(code.as_str(), theme.fg(theme.warning))
            }
            _ => Span::styled("—", theme.muted()),
        },
    }
}

/// Local clients seen lately, and all of them.
pub fn active_clients(state: &EngineState, c: &Connection, now: DateTime<Utc>) -> (usize, usize) {
    let traffic = state.traffic.get(c.name.as_str());
    let since = now - Duration::minutes(ACTIVE_WITHIN_MINUTES);
    let active = c
        .access
        .iter()
        .filter(|a| {
            let seen = traffic
                .and_then(|t| t.get(&a.label))
                .and_then(|t| t.last_seen)
                .max(a.last_seen);
            seen.is_some_and(|at| at >= since)
        })
        .count();
    (active, c.access.len())
}
