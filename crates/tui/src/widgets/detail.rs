//! The detail pane for the selected connection: the tab bar and whichever tab is open
//! (Overview, History, Diagnosis, Clients, Traffic, Calls).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{calls, clients, diagnosis, history, overview, pane, traffic};
use crate::action::DetailTab;
use crate::app::{App, Focus};
use crate::ui::Regions;

pub const TAB_DIVIDER: &str = "│";

/// Columns a tab's title takes, padding included.
pub fn tab_width(tab: DetailTab) -> u16 {
    tab.title().len() as u16 + 2
}

pub fn draw(frame: &mut Frame, app: &App, regions: &Regions) {
    let theme = app.theme();
    let focused = app.focus() == Focus::Detail;
    let Some(connection) = app.selected_connection() else {
        let block = pane(theme, " Details ", false);
        let text = vec![
            Line::raw(""),
            Line::styled("No connection selected.", theme.title()),
            Line::raw(""),
            Line::from(vec![
                Span::raw("Press "),
                Span::styled("a", theme.key()),
                Span::raw(
                    " to add a remote MCP server: tether finds its OAuth metadata, registers a \
                     client, opens your browser once, and from then on keeps the token fresh.",
                ),
            ]),
        ];
        frame.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
            regions.detail,
        );
        return;
    };
    let host = connection.upstream.host_str().unwrap_or_default();
    let title = Line::from(vec![
        Span::raw(format!(" {} ", connection.name)),
        Span::styled(format!("{host} "), theme.muted()),
    ]);
    let mut block = pane(theme, title, focused);
    if app.tab() == DetailTab::Calls
        && let Some(filter) = calls::filter_title(app, false)
    {
        block = block.title_top(filter);
    }
    frame.render_widget(block, regions.detail);
    frame.render_widget(Paragraph::new(tab_bar(app)), regions.tabs);
    let area = regions.detail_body;
    match app.tab() {
        DetailTab::Overview => scrolled(frame, app, overview::lines(app, connection), area),
        DetailTab::History => history::draw(frame, app, connection, area),
        DetailTab::Diagnosis => scrolled(frame, app, diagnosis::lines(app, connection), area),
        DetailTab::Clients => clients::draw(frame, app, connection, area),
        DetailTab::Traffic => traffic::draw(frame, app, connection, area),
        DetailTab::Calls => calls::draw(frame, app, connection, area),
    }
}

fn tab_bar(app: &App) -> Line<'static> {
    let theme = app.theme();
    let alarm = app
        .selected_connection()
        .is_some_and(|c| c.state.diagnosis().is_some());
    let mut spans = Vec::new();
    for (i, tab) in DetailTab::ALL.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(TAB_DIVIDER, theme.border(false)));
        }
        let mut style = if tab == DetailTab::Diagnosis && alarm {
            theme.fg(theme.error)
        } else {
            theme.muted()
        };
        if tab == app.tab() {
            style = theme
                .fg(theme.accent)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
        }
        spans.push(Span::styled(format!(" {} ", tab.title()), style));
    }
    Line::from(spans)
}

/// Text tabs scroll with ↑/↓ when the pane has the keyboard.
fn scrolled(frame: &mut Frame, app: &App, lines: Vec<Line<'static>>, area: Rect) {
    let max = lines.len().saturating_sub(area.height as usize) as u16;
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.detail_scroll.min(max), 0)),
        area,
    );
}

/// Lines in the open tab, for scrolling.
pub fn len(app: &App) -> usize {
    let Some(c) = app.selected_connection() else {
        return 0;
    };
    match app.tab() {
        DetailTab::Overview => overview::lines(app, c).len(),
        DetailTab::History => c.history.len(),
        DetailTab::Diagnosis => diagnosis::lines(app, c).len(),
        DetailTab::Clients => c.access.len(),
        DetailTab::Traffic => app
            .state()
            .traffic
            .get(c.name.as_str())
            .map_or(0, |t| t.len()),
        DetailTab::Calls => calls::len(app, c),
    }
}
