//! The events log (`e`): every connection's history and this session's notices in one
//! timeline, newest first.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Clear, Row, Table};

use super::{dialog, event_colour, event_word};
use crate::app::App;
use tether_core::engine::NoticeLevel;
use tether_core::summary;
use tether_core::vault::{DiagnosisCode, EventKind};

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub at: DateTime<Utc>,
    /// The connection, or "tether" for a notice.
    pub source: String,
    pub what: What,
    pub detail: String,
    pub diagnosis: Option<DiagnosisCode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Event(EventKind),
    Notice(NoticeLevel),
}

pub fn rows(app: &App) -> Vec<EventRow> {
    let mut rows: Vec<EventRow> = app
        .state()
        .store
        .connections()
        .iter()
        .flat_map(|c| {
            c.history.iter().map(|e| EventRow {
                at: e.at,
                source: c.name.to_string(),
                what: What::Event(e.kind),
                detail: e.detail.clone(),
                diagnosis: e.diagnosis,
            })
        })
        .chain(app.notices.iter().map(|n| EventRow {
            at: n.at,
            source: "tether".to_string(),
            what: What::Notice(n.level),
            detail: n.text.clone(),
            diagnosis: None,
        }))
        .collect();
    // Newest first; the stable sort keeps each connection's own order for equal times.
    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
    rows
}

pub fn draw(frame: &mut Frame, app: &App, scroll: usize) {
    let theme = app.theme();
    let area = frame.area().inner(ratatui::layout::Margin::new(2, 1));
    let all = rows(app);
    let total = all.len();
    let table_rows = all.into_iter().skip(scroll).map(|r| {
        let (word, colour) = match r.what {
            What::Event(kind) => (event_word(kind), event_colour(theme, kind)),
            What::Notice(NoticeLevel::Info) => ("notice", theme.info),
            What::Notice(NoticeLevel::Warning) => ("warning", theme.warning),
            What::Notice(NoticeLevel::Error) => ("error", theme.error),
        };
        let mut detail = vec![Span::raw(r.detail)];
        if let Some(code) = r.diagnosis {
            detail.push(Span::styled(format!("  {code}"), theme.fg(theme.error)));
        }
        Row::new(vec![
            Cell::from(Span::styled(
                summary::relative(r.at, app.now()),
                theme.muted(),
            )),
            Cell::from(r.source),
            Cell::from(Span::styled(word, theme.fg(colour))),
            Cell::from(Line::from(detail)),
        ])
    });
    let block = dialog(theme, format!(" Events — all connections ({total}) ")).title_bottom(
        Line::styled(" ↑/↓ PgUp/PgDn scroll · Esc close ", theme.muted()).right_aligned(),
    );
    let table = Table::new(
        table_rows,
        [
            Constraint::Length(11),
            Constraint::Length(14),
            Constraint::Length(14),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["When", "Connection", "Event", "Detail"]).style(theme.title()))
    .column_spacing(1)
    .block(block);
    frame.render_widget(Clear, area);
    frame.render_widget(table, area);
}
