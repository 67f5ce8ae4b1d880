//! The Traffic tab: per local client, requests per minute (last hour) and errors as
//! sparklines, with totals.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::fit;
use crate::app::App;
use tether_core::vault::Connection;

/// Columns for the label on the left and the totals on the right.
const LABEL: u16 = 14;
const TOTALS: u16 = 22;

pub fn draw(frame: &mut Frame, app: &App, c: &Connection, area: Rect) {
    let theme = app.theme();
    let traffic = app.state().traffic.get(c.name.as_str());
    let [title, body] = Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(area);
    let (requests, errors) = traffic.map_or((0, 0), |t| {
        t.values()
            .fold((0, 0), |(r, e), c| (r + c.requests, e + c.errors))
    });
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Requests per minute, last hour", theme.title()),
            Span::styled(format!("  total {requests} · errors "), theme.muted()),
            Span::styled(
                errors.to_string(),
                if errors > 0 {
                    theme.fg(theme.error)
                } else {
                    theme.muted()
                },
            ),
        ])),
        title,
    );
    let Some(traffic) = traffic.filter(|t| !t.is_empty()) else {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "No traffic yet: point an MCP client at this connection's endpoint (c).",
                theme.muted(),
            )),
            body,
        );
        return;
    };
    let mut y = body.y;
    for (label, t) in traffic.iter().skip(app.detail_scroll as usize) {
        if u32::from(y) + 2 > u32::from(body.y) + u32::from(body.height) {
            break;
        }
        let row = Rect {
            y,
            height: 2,
            ..body
        };
        let [name, spark, totals] = Layout::horizontal([
            Constraint::Length(LABEL),
            Constraint::Fill(1),
            Constraint::Length(TOTALS),
        ])
        .areas(row);
        let [req_area, err_area] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(spark);
        let width = spark.width as usize;
        let minutes: Vec<_> = t
            .per_minute
            .iter()
            .rev()
            .take(width)
            .rev()
            .copied()
            .collect();
        frame.render_widget(Paragraph::new(fit(label, LABEL as usize - 1)), name);
        frame.render_widget(
            Sparkline::default()
                .data(minutes.iter().map(|m| m.requests))
                .style(Style::new().fg(theme.accent)),
            req_area,
        );
        let max_errors = minutes.iter().map(|m| m.errors).max().unwrap_or(0).max(1);
        frame.render_widget(
            Sparkline::default()
                .data(minutes.iter().map(|m| m.errors))
                .max(max_errors)
                .style(Style::new().fg(theme.error)),
            err_area,
        );
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(vec![
                    Span::raw(format!(" {:>7} ", t.requests)),
                    Span::styled("requests", theme.muted()),
                ]),
                Line::from(vec![
                    Span::styled(
                        format!(" {:>7} ", t.errors),
                        if t.errors > 0 {
                            theme.fg(theme.error)
                        } else {
                            theme.muted()
                        },
                    ),
                    Span::styled("errors", theme.muted()),
                ]),
            ]),
            totals,
        );
        y = y.saturating_add(3);
    }
}
