//! The screen's layout and the top-level draw: header, connections table, detail pane and
//! footer, then whichever overlay is open. The layout is a pure function of the area so
//! `update` can hit-test mouse clicks against the same rectangles the views draw into.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::action::DetailTab;
use super::app::{App, Overlay};
use super::widgets::{self, detail, events, help};

/// Below this the screen cannot show a table and a detail pane.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// Where each part of the main screen goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regions {
    pub header: Rect,
    pub table: Rect,
    /// The table's data rows (inside the border, under the column titles).
    pub table_body: Rect,
    pub table_rows: u16,
    pub detail: Rect,
    /// The row of tab titles inside the detail pane.
    pub tabs: Rect,
    pub detail_body: Rect,
    pub footer: Rect,
    pub too_small: bool,
}

impl Regions {
    pub fn table_row_at(&self, column: u16, row: u16) -> Option<usize> {
        self.table_body
            .contains((column, row).into())
            .then(|| (row - self.table_body.y) as usize)
    }

    pub fn tab_at(&self, column: u16, row: u16) -> Option<DetailTab> {
        if !self.tabs.contains((column, row).into()) {
            return None;
        }
        let mut x = self.tabs.x;
        for tab in DetailTab::ALL {
            let width = detail::tab_width(tab);
            if column >= x && column < x + width {
                return Some(tab);
            }
            x += width + detail::TAB_DIVIDER.chars().count() as u16;
        }
        None
    }
}

pub fn layout(area: Rect, app: &App) -> Regions {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return Regions {
            too_small: true,
            ..Regions::default()
        };
    }
    let header_height = widgets::header::height(app, area.width);
    let [header, middle, footer] = Layout::vertical([
        Constraint::Length(header_height),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    // The table takes what its rows need, up to 45% of the middle; the detail pane the rest.
    let wanted = app.visible().len().clamp(1, 1000) as u16 + 3;
    let table_height = wanted.clamp(5, (u32::from(middle.height) * 45 / 100).max(5) as u16);
    let [table, detail] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Fill(1)]).areas(middle);
    let table_inner = Block::bordered().inner(table);
    let table_body = Rect {
        y: table_inner.y + 1,
        height: table_inner.height.saturating_sub(1),
        ..table_inner
    };
    let detail_inner = Block::bordered().inner(detail);
    let [tabs, _, detail_body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(detail_inner);
    Regions {
        header,
        table,
        table_body,
        table_rows: table_body.height,
        detail,
        tabs,
        detail_body,
        footer,
        too_small: false,
    }
}

/// Draws the whole screen from `app`; never changes it.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let theme = app.theme();
    frame.render_widget(Block::new().style(theme.base()), area);
    let regions = layout(area, app);
    if regions.too_small {
        draw_too_small(frame, app, area);
    } else {
        draw_screen(frame, app, &regions);
    }
    // A client asking to sign in is answered before anything else.
    if let Some(shown) = app.consent() {
        widgets::dialogs::consent(frame, app, &shown);
    }
}

fn draw_screen(frame: &mut Frame, app: &App, regions: &Regions) {
    widgets::header::draw(frame, app, regions.header);
    widgets::table::draw(frame, app, regions.table);
    detail::draw(frame, app, regions);
    widgets::footer::draw(frame, app, regions.footer);
    match &app.overlay {
        Overlay::None => {}
        Overlay::Help { selected, scroll } => help::draw(frame, app, *selected, *scroll),
        Overlay::Confirm(confirm) => widgets::dialogs::confirm(frame, app, confirm),
        Overlay::Endpoint(endpoint) => widgets::dialogs::endpoint(frame, app, endpoint),
        Overlay::Wizard(wizard) => widgets::wizard::draw(frame, app, wizard),
        Overlay::Events { scroll } => events::draw(frame, app, *scroll),
        Overlay::Calls => widgets::calls::draw_all(frame, app),
        Overlay::Call { record, scroll, .. } => {
            widgets::call::draw(frame, app, record, *scroll);
        }
    }
}

fn draw_too_small(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme();
    let lines = vec![
        Line::from(Span::styled("Terminal too small", theme.fg(theme.warning))),
        Line::from(Span::styled(
            format!(
                "{}×{} — tether needs at least {MIN_WIDTH}×{MIN_HEIGHT}",
                area.width, area.height
            ),
            theme.muted(),
        )),
    ];
    let height = (lines.len() as u16).min(area.height);
    let y = area.y + area.height.saturating_sub(height) / 2;
    let text_area = Rect { y, height, ..area };
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        text_area,
    );
}

/// Where the calls of all connections are drawn, in a terminal of `screen`.
pub fn all_calls_area(screen: Rect) -> Rect {
    screen.inner(ratatui::layout::Margin::new(2, 1))
}

pub use events::rows as event_rows;
pub use help::{len as help_len, scroll_for as help_scroll_for};

/// How many lines the selected connection's current tab has, for scrolling.
pub fn detail_len(app: &App) -> usize {
    detail::len(app)
}
