//! The call lists, newest first: the Calls tab (the selected connection's calls) and the
//! calls of all connections (`C`), with a connection column. At the top a list follows
//! new calls; moved down, it holds the selected call in place (`calls::CallView`). The
//! active filter shows in the view's title. Enter opens a call (`widgets::call`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Wrap};

use super::dialog;
use crate::app::{App, Focus};
use crate::ui;
use tether_core::calls::CallRecord;
use tether_core::engine::ProxyStatus;
use tether_core::summary;
use tether_core::vault::Connection;

/// Calls of `c` kept, whatever the filter.
pub fn len(app: &App, c: &Connection) -> usize {
    app.call_rings().get(c.name.as_str()).map_or(0, |r| r.len())
}

pub fn at(r: &CallRecord) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(r.at_ms).unwrap_or_default()
}

pub fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn outcome(r: &CallRecord) -> String {
    match r.error_code {
        Some(code) => format!("{} {code}", r.status),
        None => r.status.to_string(),
    }
}

/// The filter as the right side of a view's title, when one is set or being typed.
pub fn filter_title(app: &App, all: bool) -> Option<Line<'static>> {
    let words = app.call_view(all).filter.words()?;
    let theme = app.theme();
    Some(
        Line::from(vec![
            Span::styled(" filter ", theme.key()),
            Span::raw(format!(" {words} ")),
        ])
        .right_aligned(),
    )
}

/// The Calls tab of connection `c`.
pub fn draw(frame: &mut Frame, app: &App, c: &Connection, area: Rect) {
    let theme = app.theme();
    if len(app, c) == 0 {
        let text = vec![
            Line::styled("No calls yet.", theme.muted()),
            Line::raw(""),
            Line::raw(where_calls_come_from(app)),
        ];
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let rows = app.call_rows(false);
    if rows.is_empty() {
        frame.render_widget(no_match(app), area);
        return;
    }
    let focused = app.focus() == Focus::Detail;
    frame.render_widget(list(app, &rows, false, focused, area.height), area);
}

/// Where the calls come from, for an empty view.
fn where_calls_come_from(app: &App) -> String {
    match &app.state().proxy {
        ProxyStatus::ServedElsewhere { addr, .. } => format!(
            "The tether serving the proxy on {addr} writes its calls to the audit log \
             (logs/calls.jsonl); they show here as it writes them ([calls] capture in \
             config.toml)."
        ),
        _ => "Calls through this tether's proxy show here as they happen ([calls] capture in \
              config.toml; `tether calls` reads them from the audit log)."
            .to_string(),
    }
}

fn no_match(app: &App) -> Paragraph<'static> {
    Paragraph::new(Line::styled(
        "No call matches the filter — Esc clears it.",
        app.theme().muted(),
    ))
}

/// The calls of all connections, over the whole screen.
pub fn draw_all(frame: &mut Frame, app: &App) {
    let theme = app.theme();
    let area = ui::all_calls_area(frame.area());
    let rows = app.call_rows(true);
    let from = if app.calls_from_log() {
        " · from the audit log"
    } else {
        ""
    };
    let mut block = dialog(
        theme,
        format!(" All calls ({}{from}) ", count(app, &rows, true)),
    )
    .title_bottom(
        Line::styled(
            " ↑/↓ move · Enter open · / filter · c client · e errors · Esc back ",
            theme.muted(),
        )
        .right_aligned(),
    );
    if let Some(filter) = filter_title(app, true) {
        block = block.title_top(filter);
    }
    frame.render_widget(Clear, area);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if rows.is_empty() {
        let text = if app.call_rings().values().all(|r| r.is_empty()) {
            vec![
                Line::styled("No calls yet.", theme.muted()),
                Line::raw(""),
                Line::raw(where_calls_come_from(app)),
            ]
        } else {
            frame.render_widget(no_match(app), inner);
            return;
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    }
    frame.render_widget(list(app, &rows, true, true, inner.height), inner);
}

/// "2 of 6, following": the calls shown, of how many kept when filtered, and whether the
/// view follows new calls.
fn count(app: &App, rows: &[Arc<CallRecord>], all: bool) -> String {
    let view = app.call_view(all);
    let follow = if view.following() {
        "following"
    } else {
        "paused"
    };
    if !view.filter.is_active() {
        return format!("{}, {follow}", rows.len());
    }
    let kept: usize = if all {
        app.call_rings().values().map(|r| r.len()).sum()
    } else {
        app.selected_name()
            .and_then(|n| app.call_rings().get(n))
            .map_or(0, |r| r.len())
    };
    format!("{} of {kept}, {follow}", rows.len())
}

/// The rows of a view as a table of `height` lines, the selected row highlighted when the
/// view has the keyboard.
fn list<'a>(
    app: &'a App,
    rows: &'a [Arc<CallRecord>],
    all: bool,
    focused: bool,
    height: u16,
) -> Table<'a> {
    let theme = app.theme();
    let view = app.call_view(all);
    let selected = view.selected(rows);
    let visible = height.saturating_sub(1).max(1) as usize;
    let skip = selected.saturating_sub(visible - 1);
    let table_rows = rows
        .iter()
        .enumerate()
        .skip(skip)
        .take(visible)
        .map(|(i, r)| {
            let status = if r.is_error() {
                theme.fg(theme.error)
            } else {
                theme.fg(theme.ok)
            };
            let mut cells = vec![Cell::from(Span::styled(
                summary::relative(at(r), app.now()),
                theme.muted(),
            ))];
            if all {
                cells.push(Cell::from(r.connection.clone()));
            }
            cells.extend([
                Cell::from(r.client.clone()),
                Cell::from(r.what()),
                Cell::from(Span::styled(outcome(r), status)),
                Cell::from(ms(r.total_us)),
            ]);
            let row = Row::new(cells);
            if i == selected && focused {
                row.style(theme.selected())
            } else {
                row
            }
        });
    // Names take what the longest shown needs, so the call itself keeps the room.
    let widest = |name: fn(&CallRecord) -> &str, title: usize, max: usize| {
        let longest = rows.iter().map(|r| name(r).chars().count()).max();
        longest.unwrap_or(0).clamp(title, max) as u16
    };
    let mut widths = vec![Constraint::Length(11)];
    let mut header = vec![Cell::from("When")];
    if all {
        widths.push(Constraint::Length(widest(|r| &r.connection, 10, 16)));
        header.push(Cell::from("Connection"));
    }
    widths.extend([
        Constraint::Length(widest(|r| &r.client, 6, 14)),
        Constraint::Fill(1),
        Constraint::Length(10),
        Constraint::Length(9),
    ]);
    header.extend([
        Cell::from("Client"),
        // The count is in the title of all connections' calls.
        Cell::from(if all {
            "Call".to_string()
        } else {
            format!("Call ({})", count(app, rows, false))
        }),
        Cell::from("Status"),
        Cell::from("Time"),
    ]);
    Table::new(table_rows, widths)
        .header(Row::new(header).style(theme.title()))
        .column_spacing(1)
        .block(Block::new())
}
