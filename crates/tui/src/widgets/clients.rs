//! The Clients tab: the OAuth client registrations (active, legacy, orphan, rejected; which
//! can be deleted at the server under RFC 7592) and the local MCP clients that use this
//! connection through the proxy (label, last seen, requests, errors).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use crate::app::{App, Focus};
use crate::theme::Theme;
use tether_core::secret::mask;
use tether_core::summary;
use tether_core::vault::{ClientRegistration, Connection, RegistrationMethod, RegistrationStatus};

pub fn draw(frame: &mut Frame, app: &App, c: &Connection, area: Rect) {
    let theme = app.theme();
    let regs_height = if c.clients.is_empty() {
        2
    } else {
        c.clients.len() as u16 + 2
    };
    let [regs_area, _, local_area] = Layout::vertical([
        Constraint::Length(regs_height),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [regs_title, regs_table] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(regs_area);
    let orphans = c
        .clients
        .iter()
        .filter(|r| r.status == RegistrationStatus::Orphan)
        .count();
    let mut title = vec![Span::styled("OAuth client registrations", theme.title())];
    if orphans > 0 {
        title.push(Span::styled(
            format!("  {orphans} orphaned — o cleans them"),
            theme.fg(theme.info),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(title)), regs_title);
    if c.clients.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "none: this connection does not use OAuth, or has not logged in",
                theme.muted(),
            )),
            regs_table,
        );
    } else {
        let rows = c.clients.iter().map(|r| registration_row(app, theme, c, r));
        let table = Table::new(
            rows,
            [
                Constraint::Length(12),
                Constraint::Length(14),
                Constraint::Length(9),
                Constraint::Length(11),
                Constraint::Fill(1),
            ],
        )
        .header(
            Row::new([
                "Client id",
                "Method",
                "Status",
                "Registered",
                "Delete at server",
            ])
            .style(theme.muted()),
        )
        .column_spacing(1);
        frame.render_widget(table, regs_table);
    }
    draw_local(frame, app, c, local_area);
}

fn registration_row(
    app: &App,
    theme: &Theme,
    c: &Connection,
    r: &ClientRegistration,
) -> Row<'static> {
    let in_use = c.token.as_ref().is_some_and(|t| t.client_id == r.client_id);
    let (word, colour) = match r.status {
        RegistrationStatus::Active => ("active", theme.ok),
        RegistrationStatus::Legacy => ("legacy", theme.muted),
        RegistrationStatus::Orphan => ("orphan", theme.info),
        RegistrationStatus::Rejected => ("rejected", theme.error),
    };
    let method = match r.method {
        RegistrationMethod::Dcr => "dynamic (DCR)",
        RegistrationMethod::Preregistered => "pre-registered",
        RegistrationMethod::Cimd => "metadata doc",
    };
    let deletable = r.registration_access_token.is_some() && r.registration_client_uri.is_some();
    let mut delete = vec![if deletable {
        Span::raw("yes (RFC 7592)")
    } else {
        Span::styled("no — forgotten locally", theme.muted())
    }];
    if in_use {
        delete.push(Span::styled("  · holds the token", theme.fg(theme.ok)));
    }
    Row::new(vec![
        Cell::from(mask(&r.client_id)),
        Cell::from(Span::styled(method, theme.muted())),
        Cell::from(Span::styled(word, theme.fg(colour))),
        Cell::from(summary::relative(r.registered_at, app.now())),
        Cell::from(Line::from(delete)),
    ])
}

fn draw_local(frame: &mut Frame, app: &App, c: &Connection, area: Rect) {
    let theme = app.theme();
    let [title, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let hint = if app.focus() == Focus::Detail {
        "  ↑/↓ select · c copy endpoint · x revoke"
    } else {
        "  Enter to select · c copy endpoint"
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Local clients", theme.title()),
            Span::styled(hint, theme.muted()),
        ])),
        title,
    );
    if c.access.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "none yet — press c to create an endpoint for an MCP client",
                theme.muted(),
            )),
            table_area,
        );
        return;
    }
    let traffic = app.state().traffic.get(c.name.as_str());
    let rows = c.access.iter().map(|a| {
        let t = traffic.and_then(|t| t.get(&a.label));
        let seen = t.and_then(|t| t.last_seen).max(a.last_seen);
        let errors = t.map_or(0, |t| t.errors);
        Row::new(vec![
            Cell::from(a.label.clone()),
            Cell::from(match seen {
                Some(at) => Span::raw(summary::relative(at, app.now())),
                None => Span::styled("never", theme.muted()),
            }),
            Cell::from(t.map_or(0, |t| t.requests).to_string()),
            Cell::from(Span::styled(
                errors.to_string(),
                if errors > 0 {
                    theme.fg(theme.error)
                } else {
                    theme.muted()
                },
            )),
            Cell::from(Span::styled(
                summary::relative(a.created_at, app.now()),
                theme.muted(),
            )),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["Label", "Last seen", "Requests", "Errors", "Created"]).style(theme.muted()))
    .column_spacing(1)
    .row_highlight_style(theme.selected());
    let selected = (app.focus() == Focus::Detail).then_some(app.client_row.min(c.access.len() - 1));
    let mut state = TableState::new().with_selected(selected);
    frame.render_stateful_widget(table, table_area, &mut state);
}
