//! The add / authorize wizard's modal: the form with its `tui-input` fields, then one line
//! per login step as the engine reports it — ✓, in progress, or the diagnosis inline.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{bold, centered, dialog, wrapped_height};
use crate::app::App;
use crate::wizard::{Phase, Progress, Status, Wizard};
use tether_core::diagnosis::explain;
use tether_core::engine::{LoginStep, StepOutcome};

const LABEL: u16 = 15;

pub fn draw(frame: &mut Frame, app: &App, wizard: &Wizard) {
    let theme = app.theme();
    let screen = frame.area();
    let width = 84.min(screen.width);
    match &wizard.phase {
        Phase::Form => {
            let height = wizard.kind.fields().len() as u16 * 2 + 8;
            let area = centered(screen, width, height.min(screen.height.saturating_sub(2)));
            let block = dialog(theme, " Add a connection ");
            let inner = block.inner(area);
            frame.render_widget(Clear, area);
            frame.render_widget(block, area);
            draw_form(frame, app, wizard, inner);
        }
        Phase::Running(progress) => {
            let verb = if progress.login {
                "Authorizing"
            } else {
                "Adding"
            };
            let block = dialog(theme, format!(" {verb} {} ", progress.name));
            let lines = progress_lines(app, wizard, progress, width.saturating_sub(2));
            let height = wrapped_height(&lines, width.saturating_sub(2)) + 2;
            let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
            let area = centered(screen, width, height.min(screen.height.saturating_sub(2)));
            frame.render_widget(Clear, area);
            frame.render_widget(paragraph.block(block), area);
        }
    }
}

fn draw_form(frame: &mut Frame, app: &App, wizard: &Wizard, area: Rect) {
    let theme = app.theme();
    let mut y = area.y + 1;
    let bottom = area.y + area.height;
    for &field in wizard.kind.fields() {
        if y >= bottom {
            return;
        }
        let focused = field == wizard.focus;
        let label_style = if focused { theme.key() } else { theme.muted() };
        let row = Rect {
            y,
            height: 1,
            ..area
        };
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!(" {:<width$}", field.label(), width = LABEL as usize - 1),
                label_style,
            )),
            row,
        );
        let value_area = Rect {
            x: row.x + LABEL,
            width: row.width.saturating_sub(LABEL + 1),
            ..row
        };
        match wizard.input(field) {
            Some(input) => {
                let width = value_area.width as usize;
                let scroll = input.visual_scroll(width.saturating_sub(1));
                let text: String = if field.secret() {
                    "•".repeat(input.value().chars().count())
                } else {
                    input.value().to_string()
                };
                let shown: String = text.chars().skip(scroll).take(width).collect();
                let style = if focused {
                    Style::new().fg(theme.selection_text).bg(theme.selection)
                } else {
                    Style::new()
                        .fg(theme.text)
                        .add_modifier(Modifier::UNDERLINED)
                };
                let padded = format!("{shown:<width$}");
                frame.render_widget(Paragraph::new(Span::styled(padded, style)), value_area);
                if focused {
                    let x = value_area.x + (input.visual_cursor().saturating_sub(scroll)) as u16;
                    frame.set_cursor_position(Position::new(
                        x.min(value_area.right().saturating_sub(1)),
                        y,
                    ));
                }
            }
            None => {
                let style = if focused {
                    theme.selected()
                } else {
                    Style::new().fg(theme.text)
                };
                let line = Line::from(vec![
                    Span::styled("‹ ", theme.muted()),
                    Span::styled(wizard.kind.label(), style),
                    Span::styled(" ›", theme.muted()),
                ]);
                frame.render_widget(Paragraph::new(line), value_area);
            }
        }
        y += 2;
    }
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!(" {:<width$}", "", width = LABEL as usize - 1),
            theme.muted(),
        ),
        Span::styled(wizard.focus.hint(), theme.muted()),
    ])];
    if let Some(error) = &wizard.error {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled(" ✗ ", bold(theme.fg(theme.error))),
            Span::styled(error.clone(), theme.fg(theme.error)),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " Enter moves on; on the last field it adds the connection.",
        theme.muted(),
    ));
    let rest = Rect {
        y: y.min(bottom),
        height: bottom.saturating_sub(y),
        ..area
    };
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), rest);
}

/// Tells whether a reported step is this one.
type IsStep = fn(&LoginStep) -> bool;

const STEPS: [(&str, IsStep); 6] = [
    ("Protected resource metadata", |s| {
        matches!(s, LoginStep::ResourceMetadata)
    }),
    ("Authorization server metadata", |s| {
        matches!(s, LoginStep::AuthServerMetadata)
    }),
    ("Client registration", |s| {
        matches!(s, LoginStep::ClientRegistration)
    }),
    ("Browser opened", |s| {
        matches!(s, LoginStep::BrowserOpened { .. })
    }),
    ("Waiting for the callback", |s| {
        matches!(s, LoginStep::WaitingForCallback)
    }),
    ("Token received", |s| matches!(s, LoginStep::TokenReceived)),
];

fn progress_lines(
    app: &App,
    wizard: &Wizard,
    progress: &Progress,
    width: u16,
) -> Vec<Line<'static>> {
    let theme = app.theme();
    let status = progress.status(&app.state().store);
    let mut out = vec![Line::raw("")];
    if progress.login {
        for (label, is) in STEPS {
            let reported = progress.steps.iter().find(|(s, _)| is(s));
            out.extend(step_lines(app, label, reported, width as usize));
        }
    } else {
        let added = app.state().store.get(&progress.name).is_some();
        out.push(if added {
            Line::from(vec![
                Span::styled(" ✓ ", theme.fg(theme.ok)),
                Span::raw("Added"),
            ])
        } else {
            Line::from(vec![
                Span::styled(" ↻ ", theme.fg(theme.info)),
                Span::raw("Adding…"),
            ])
        });
    }
    if progress.awaits_paste() {
        out.extend(paste_lines(app, wizard, progress));
    }
    out.push(Line::raw(""));
    match status {
        Status::Working => out.push(Line::styled(
            " Working… Esc cancels and leaves nothing half-added behind.",
            theme.muted(),
        )),
        Status::Done => out.push(Line::from(vec![
            Span::styled(" ✓ Connected. ", bold(theme.fg(theme.ok))),
            Span::raw("Press Enter, then c on it to copy an endpoint for an MCP client."),
        ])),
        Status::Failed { diagnosis, detail } => {
            if let Some(code) = diagnosis {
                out.push(Line::from(vec![
                    Span::styled(" Fix: ", theme.title()),
                    Span::raw(explain(code).remedy),
                ]));
            } else {
                out.push(Line::from(vec![
                    Span::styled(" ✗ ", theme.fg(theme.error)),
                    Span::styled(detail, theme.fg(theme.error)),
                ]));
            }
            let cleanup = if progress.added_here {
                format!(
                    " Enter retries · Esc cancels and removes '{}' (it has no token)",
                    progress.name
                )
            } else {
                " Enter retries · Esc cancels".to_string()
            };
            out.push(Line::styled(cleanup, theme.muted()));
        }
    }
    out
}

/// The field for the address a browser on another machine ended on, and why the last one
/// was refused.
fn paste_lines(app: &App, wizard: &Wizard, progress: &Progress) -> Vec<Line<'static>> {
    let theme = app.theme();
    let mut lines = vec![
        Line::raw(""),
        Line::styled(
            " Browser elsewhere (SSH)? When the sign-in ends on a page that cannot load,",
            theme.muted(),
        ),
        Line::styled(
            " paste that page's address here and press Enter:",
            theme.muted(),
        ),
        Line::from(vec![
            Span::styled(" › ", theme.key()),
            Span::styled(
                masked_address(wizard.redirect.value()),
                Style::new().fg(theme.selection_text).bg(theme.selection),
            ),
            Span::styled("▏", theme.key()),
        ]),
    ];
    if let Some(reason) = progress.paste_refused() {
        lines.push(Line::from(vec![
            Span::styled(" ✗ ", theme.fg(theme.error)),
            Span::styled(format!("{reason}."), theme.fg(theme.error)),
        ]));
    }
    lines
}

/// A pasted address as shown: what comes after `code=` is the authorization code, so only
/// its first characters are.
fn masked_address(address: &str) -> String {
    match address.find("code=") {
        Some(at) => {
            let shown = at + "code=".len();
            let code: String = address[shown..].chars().take(4).collect();
            let hidden = address[shown..].chars().count().saturating_sub(4);
            if hidden == 0 {
                address.to_string()
            } else {
                format!("{}{code}… ({hidden} more characters)", &address[..shown])
            }
        }
        None => address.to_string(),
    }
}

fn step_lines(
    app: &App,
    label: &'static str,
    reported: Option<&(LoginStep, StepOutcome)>,
    width: usize,
) -> Vec<Line<'static>> {
    let theme = app.theme();
    let Some((step, outcome)) = reported else {
        return vec![Line::from(vec![
            Span::styled(" · ", theme.muted()),
            Span::styled(label, theme.muted()),
        ])];
    };
    let mut lines = Vec::new();
    match outcome {
        StepOutcome::Running => lines.push(Line::from(vec![
            Span::styled(" ↻ ", theme.fg(theme.info)),
            Span::styled(label, theme.fg(theme.info)),
            Span::styled("…", theme.muted()),
        ])),
        StepOutcome::Done(detail) => {
            // A detail that does not fit beside the label goes on its own line.
            let beside = 3 + label.chars().count() + 2 + detail.chars().count() <= width;
            lines.push(Line::from(vec![
                Span::styled(" ✓ ", theme.fg(theme.ok)),
                Span::raw(label),
                Span::styled(
                    if detail.is_empty() || !beside {
                        String::new()
                    } else {
                        format!("  {detail}")
                    },
                    theme.muted(),
                ),
            ]));
            if !detail.is_empty() && !beside {
                lines.push(Line::styled(format!("   {detail}"), theme.muted()));
            }
        }
        StepOutcome::Failed { diagnosis, detail } => {
            lines.push(Line::from(vec![
                Span::styled(" ✗ ", theme.fg(theme.error)),
                Span::raw(label),
                Span::styled(format!("  {diagnosis}"), bold(theme.fg(theme.error))),
            ]));
            lines.push(Line::styled(
                format!("   {}", explain(*diagnosis).summary),
                theme.fg(theme.error),
            ));
            if !detail.is_empty() {
                lines.push(Line::styled(format!("   {detail}"), theme.muted()));
            }
        }
    }
    if let LoginStep::BrowserOpened { url } = step {
        lines.push(Line::styled(
            "   If no browser opened here (SSH), open this URL (Ctrl-Y copies it):",
            theme.muted(),
        ));
        lines.push(Line::styled(format!("   {url}"), theme.fg(theme.accent)));
    }
    lines
}
