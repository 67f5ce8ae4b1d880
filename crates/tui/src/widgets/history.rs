//! The History tab: a sparkline of refresh latency with a marker under each failure, then
//! the timeline (time, event, latency, diagnosis), newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Sparkline, SparklineBar, Table};

use super::{event_colour, event_word};
use crate::app::App;
use tether_core::summary;
use tether_core::vault::{Connection, Event, EventKind};

pub fn draw(frame: &mut Frame, app: &App, c: &Connection, area: Rect) {
    let theme = app.theme();
    let [title, spark, markers, _, timeline] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(area);
    let refreshes: Vec<&Event> = c
        .history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Refreshed | EventKind::RefreshFailed))
        .collect();
    let shown = &refreshes[refreshes.len().saturating_sub(spark.width as usize)..];
    let mut latencies: Vec<u64> = shown.iter().filter_map(|e| e.latency_ms).collect();
    latencies.sort_unstable();
    let failed = shown
        .iter()
        .filter(|e| e.kind == EventKind::RefreshFailed)
        .count();
    let summary = if shown.is_empty() {
        Line::styled("No refreshes yet.", theme.muted())
    } else {
        Line::from(vec![
            Span::styled("Refresh latency", theme.title()),
            Span::styled(
                format!(
                    "  last {} · median {} ms · max {} ms · ",
                    shown.len(),
                    latencies.get(latencies.len() / 2).copied().unwrap_or(0),
                    latencies.last().copied().unwrap_or(0),
                ),
                theme.muted(),
            ),
            Span::styled(
                format!("{failed} failed"),
                if failed > 0 {
                    theme.fg(theme.error)
                } else {
                    theme.muted()
                },
            ),
        ])
    };
    frame.render_widget(Paragraph::new(summary), title);
    let bars = shown.iter().map(|e| {
        let colour = if e.kind == EventKind::RefreshFailed {
            theme.error
        } else {
            theme.accent
        };
        SparklineBar::from(e.latency_ms.unwrap_or(0)).style(Some(Style::new().fg(colour)))
    });
    frame.render_widget(Sparkline::default().data(bars), spark);
    let marks: String = shown
        .iter()
        .map(|e| {
            if e.kind == EventKind::RefreshFailed {
                '✗'
            } else {
                ' '
            }
        })
        .collect();
    frame.render_widget(
        Paragraph::new(Span::styled(marks, theme.fg(theme.error))),
        markers,
    );
    let rows = c
        .history
        .iter()
        .rev()
        .skip(app.detail_scroll as usize)
        .map(|e| {
            let latency = match e.latency_ms {
                Some(ms) => Span::raw(format!("{ms} ms")),
                None => Span::styled("—", theme.muted()),
            };
            let mut detail = vec![Span::raw(e.detail.clone())];
            if let Some(code) = e.diagnosis {
                detail.push(Span::styled(format!("  {code}"), theme.fg(theme.error)));
            }
            Row::new(vec![
                Cell::from(Span::styled(
                    summary::relative(e.at, app.now()),
                    theme.muted(),
                )),
                Cell::from(Span::styled(
                    event_word(e.kind),
                    theme.fg(event_colour(theme, e.kind)),
                )),
                Cell::from(latency),
                Cell::from(Line::from(detail)),
            ])
        });
    let table = Table::new(
        rows,
        [
            Constraint::Length(11),
            Constraint::Length(14),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["When", "Event", "Latency", "Detail"]).style(theme.title()))
    .column_spacing(1);
    frame.render_widget(table, timeline);
}
