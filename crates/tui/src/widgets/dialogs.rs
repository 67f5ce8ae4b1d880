//! Small dialogs: the confirmation before deleting, cleaning orphans or revoking a client,
//! the endpoint popup that shows a client's URL once after copying it, and a client asking
//! to sign in to tether, drawn over every screen until it is answered.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Padding, Paragraph, Wrap};

use super::{bold, centered, dialog};
use crate::action::Command;
use crate::app::{App, Confirm, Endpoint, Shown};
use crate::keymap::{self, Context};
use tether_core::printable::printable;
use tether_core::summary;

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

/// "Codex wants to use 'linear' through tether", as the consent page says it. Everything
/// the client said about itself is made printable: it is untrusted.
pub fn consent(frame: &mut Frame, app: &App, shown: &Shown) {
    let theme = app.theme();
    let request = &shown.asking.request;
    let who = printable(&request.client_name, 60);
    let name = printable(&request.connection, 60);
    let left = (shown.asking.expires_at() - app.now()).num_seconds().max(0);
    let key = |command: Command| {
        keymap::bindings(Context::Consent)
            .find(|b| b.command == command)
            .and_then(|b| b.keys.first())
            .map(|k| format!(" {} ", k.label()))
            .unwrap_or_default()
    };
    let lines = vec![
        Line::from(vec![
            Span::styled(who, bold(theme.fg(theme.accent))),
            Span::raw(" wants to use "),
            Span::styled(format!("'{name}'"), bold(theme.fg(theme.accent))),
            Span::raw(" through tether."),
        ]),
        Line::raw(""),
        Line::raw(format!(
            "If you allow it, it can call every tool of '{name}' with your account until you \
             revoke it: tether status {name} lists its clients, tether revoke {name} --client \
             LABEL revokes one."
        )),
        Line::raw(""),
        Line::styled(
            format!(
                "The name is what the app calls itself; tether cannot check it. The browser \
                 then returns to {}.",
                printable(&return_address(&request.redirect_uri), 60)
            ),
            theme.muted(),
        ),
        Line::styled(
            format!(
                "Also shown on the consent page in the browser. Expires in {}.",
                summary::duration(left)
            ),
            theme.muted(),
        ),
        Line::raw(""),
        Line::from(vec![
            Span::styled(key(Command::Allow), theme.selected()),
            Span::raw(" allow    "),
            Span::styled(key(Command::Deny), theme.selected()),
            Span::raw(" deny"),
        ]),
    ];
    let title = if shown.of > 1 {
        format!(" Sign-in request · {} of {} ", shown.position, shown.of)
    } else {
        " Sign-in request ".to_string()
    };
    let width = 72.min(frame.area().width);
    let height = lines
        .iter()
        .map(|l| word_wrapped_rows(l, width.saturating_sub(4)))
        .sum::<u16>()
        + 2;
    let area: Rect = centered(frame.area(), width, height);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(dialog(theme, title).padding(Padding::horizontal(1)))
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// Where the browser goes once answered, as the page says it: `scheme://host`.
fn return_address(redirect_uri: &str) -> String {
    url::Url::parse(redirect_uri)
        .ok()
        .map(|u| match u.host_str() {
            Some(host) => format!("{}://{host}", u.scheme()),
            None => format!("{}:", u.scheme()),
        })
        .unwrap_or_else(|| "an address that does not parse".to_string())
}

/// The rows `line` takes when wrapped at word boundaries into `width` columns, as the
/// paragraph wraps it.
fn word_wrapped_rows(line: &Line, width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let text = line.to_string();
    let (mut rows, mut column) = (1usize, 0usize);
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if column > 0 && column + 1 + len <= width {
            column += 1 + len;
        } else {
            if column > 0 {
                rows += 1;
            }
            rows += len.saturating_sub(1) / width;
            column = (len - 1) % width + 1;
        }
    }
    u16::try_from(rows).unwrap_or(u16::MAX)
}
