//! Small dialogs: the confirmation before deleting, cleaning orphans or revoking a client,
//! and the endpoint popup that shows a client's URL once after copying it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Padding, Paragraph, Wrap};

use super::{bold, centered, dialog};
use crate::app::{App, Confirm, Endpoint};

pub fn confirm(frame: &mut Frame, app: &App, confirm: &Confirm) {
    let theme = app.theme();
    let (title, question, consequence) = match confirm {
        Confirm::Delete { name } => (
            " Delete ",
            format!("Delete '{name}'?"),
            "tether forgets its tokens, client registrations and local client secrets. MCP \
             clients using its endpoint stop working. The server-side grant is not revoked.",
        ),
        Confirm::CleanOrphans { name, count } => (
            " Clean orphans ",
            format!("Clean {count} orphaned client registration(s) of '{name}'?"),
            "Registrations that allow it are deleted at the server (RFC 7592); the rest are \
             forgotten here. No live token depends on them.",
        ),
        Confirm::Revoke { name, label } => (
            " Revoke ",
            format!("Revoke local client '{label}' of '{name}'?"),
            "Its secret stops working at once; other clients are not affected.",
        ),
    };
    let lines = vec![
        Line::from(Span::styled(question, theme.title())),
        Line::raw(""),
        Line::raw(consequence),
        Line::raw(""),
        Line::from(vec![
            Span::styled(" y ", theme.selected()),
            Span::raw(" yes    "),
            Span::styled(" n ", theme.selected()),
            Span::raw(" no, keep it"),
        ]),
    ];
    show(frame, app, title, lines, 9);
}

pub fn endpoint(frame: &mut Frame, app: &App, endpoint: &Endpoint) {
    let theme = app.theme();
    let lines = vec![
        Line::from(vec![
            Span::raw("Endpoint for "),
            Span::styled(endpoint.label.clone(), bold(theme.fg(theme.accent))),
            Span::raw(" on "),
            Span::styled(endpoint.connection.clone(), bold(theme.fg(theme.accent))),
        ]),
        Line::raw(""),
        // The user's own secret URL: shown here and copied, never logged.
        Line::from(Span::styled(
            endpoint.url.expose().to_string(),
            theme.fg(theme.ok),
        )),
        Line::raw(""),
        Line::styled(
            "Copied to the clipboard (OSC 52). Paste it into the MCP client's config; the \
             secret in it is this client's alone and can be revoked with x.",
            theme.muted(),
        ),
    ];
    show(frame, app, " Endpoint ", lines, 11);
}

fn show(frame: &mut Frame, app: &App, title: &'static str, lines: Vec<Line<'static>>, height: u16) {
    let theme = app.theme();
    let area: Rect = centered(frame.area(), 72, height);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(dialog(theme, title).padding(Padding::horizontal(1)))
            .wrap(Wrap { trim: true }),
        area,
    );
}
