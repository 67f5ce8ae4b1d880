//! The Calls tab: the newest calls through this process's proxy for the selected
//! connection, newest first. At the top it follows new calls; scrolled, the selected call
//! stays put while new ones arrive above it (`App::follow_calls`). Enter opens one
//! ([`draw_call`]): timings, the error, and with `capture = "full"` the bodies.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Clear, Paragraph, Row, Table, Wrap};

use super::dialog;
use crate::app::{App, Focus};
use tether_core::calls::CallRecord;
use tether_core::summary;
use tether_core::vault::Connection;

/// The connection's calls, newest first.
pub fn of<'a>(app: &'a App, c: &Connection) -> impl Iterator<Item = &'a Arc<CallRecord>> {
    app.state()
        .calls
        .get(c.name.as_str())
        .into_iter()
        .flat_map(|ring| ring.iter().rev())
}

pub fn len(app: &App, c: &Connection) -> usize {
    app.state()
        .calls
        .get(c.name.as_str())
        .map_or(0, |r| r.len())
}

fn at(r: &CallRecord) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(r.at_ms).unwrap_or_default()
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn outcome(r: &CallRecord) -> String {
    match r.error_code {
        Some(code) => format!("{} {code}", r.status),
        None => r.status.to_string(),
    }
}

pub fn draw(frame: &mut Frame, app: &App, c: &Connection, area: Rect) {
    let theme = app.theme();
    let total = len(app, c);
    if total == 0 {
        let text = vec![
            Line::styled("No calls yet.", theme.muted()),
            Line::raw(""),
            Line::raw(
                "Calls through this tether's proxy show here as they happen ([calls] capture in \
                 config.toml; `tether calls` reads them from the audit log).",
            ),
        ];
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let selected = app.detail_scroll as usize;
    let visible = area.height.saturating_sub(1).max(1) as usize;
    let skip = selected.saturating_sub(visible - 1);
    let rows = of(app, c).enumerate().skip(skip).map(|(i, r)| {
        let status = if r.is_error() {
            theme.fg(theme.error)
        } else {
            theme.fg(theme.ok)
        };
        let row = Row::new(vec![
            Cell::from(Span::styled(
                summary::relative(at(r), app.now()),
                theme.muted(),
            )),
            Cell::from(r.client.clone()),
            Cell::from(r.what()),
            Cell::from(Span::styled(outcome(r), status)),
            Cell::from(ms(r.total_us)),
        ]);
        if i == selected && app.focus() == Focus::Detail {
            row.style(theme.selected())
        } else {
            row
        }
    });
    let follow = if selected == 0 { "following" } else { "paused" };
    let table = Table::new(
        rows,
        [
            Constraint::Length(11),
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(11),
            Constraint::Length(10),
        ],
    )
    .header(
        Row::new(vec![
            Cell::from("When"),
            Cell::from("Client"),
            Cell::from(format!("Call ({total}, {follow})")),
            Cell::from("Status"),
            Cell::from("Time"),
        ])
        .style(theme.title()),
    )
    .column_spacing(1);
    frame.render_widget(table, area);
}

/// One call, opened with Enter: what it was, how it went, and what was captured.
pub fn draw_call(frame: &mut Frame, app: &App, r: &CallRecord, scroll: u16) {
    let theme = app.theme();
    let area = frame.area().inner(ratatui::layout::Margin::new(2, 1));
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:<14}"), theme.muted()),
            Span::raw(value),
        ])
    };
    let when = at(r).format("%Y-%m-%d %H:%M:%S%.3f UTC");
    let mut lines = vec![
        field("call", r.what()),
        field("client", r.client.clone()),
        field(
            "when",
            format!("{when} ({})", summary::relative(at(r), app.now())),
        ),
        field(
            "protocol",
            r.protocol.clone().unwrap_or_else(|| "—".to_string()),
        ),
        field("HTTP", format!("{} {}", r.http, r.status)),
        field("first byte", ms(r.first_byte_us)),
        field("total", ms(r.total_us)),
        field("bytes", format!("{} in, {} out", r.bytes_in, r.bytes_out)),
    ];
    if r.streamed {
        lines.push(field("streamed", format!("{} events", r.events)));
    }
    if r.refreshed || r.retried {
        let what = match (r.refreshed, r.retried) {
            (true, true) => "token refreshed after a 401, call sent again",
            (true, false) => "token refresh asked after a 401",
            _ => "call sent again",
        };
        lines.push(field("tether", what.to_string()));
    }
    if r.is_error() {
        let code = r.error_code.map(|c| format!("{c} ")).unwrap_or_default();
        let message = r.error_message.clone().unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", "error"), theme.muted()),
            Span::styled(format!("{code}{message}"), theme.fg(theme.error)),
        ]));
    }
    for (title, body) in [("request", &r.request), ("response", &r.response)] {
        lines.push(Line::raw(""));
        match body {
            Some(body) => {
                lines.push(Line::styled(title, theme.title()));
                lines.extend(pretty(body).lines().map(|l| Line::raw(l.to_string())));
            }
            None => lines.push(Line::styled(
                format!("{title}: not kept (capture = \"full\" in [calls] keeps bodies)"),
                theme.muted(),
            )),
        }
    }
    let block = dialog(theme, format!(" Call — {} ", r.connection)).title_bottom(
        Line::styled(" ↑/↓ PgUp/PgDn scroll · Esc close ", theme.muted()).right_aligned(),
    );
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
}

/// A JSON body indented; an event stream's `data:` lines each; anything else as it is.
fn pretty(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        return serde_json::to_string_pretty(&v).unwrap_or_else(|_| body.to_string());
    }
    body.lines()
        .map(|line| match line.strip_prefix("data:") {
            Some(data) => serde_json::from_str::<serde_json::Value>(data.trim())
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| line.to_string()),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
