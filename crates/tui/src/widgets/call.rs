//! One call, opened with Enter from a call list: what it was, how it went, the JSON-RPC
//! error, the diagnosis a failure led to (its title, the key that fixes it, and `3` to that
//! connection's Diagnosis tab), and with `capture = "full"` the bodies.

use ratatui::Frame;
use ratatui::layout::Margin;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::calls::{at, ms};
use super::{bold, dialog};
use crate::app::App;
use crate::calls::diagnosis_of;
use crate::keymap::key_for;
use crate::theme::Theme;
use tether_core::calls::CallRecord;
use tether_core::diagnosis::explain;
use tether_core::printable::printable;
use tether_core::summary;

const LABEL: usize = 14;

fn field(theme: &Theme, name: &str, value: Vec<Span<'static>>) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("{name:<LABEL$}"), theme.muted())];
    spans.extend(value);
    Line::from(spans)
}

pub fn draw(frame: &mut Frame, app: &App, r: &CallRecord, scroll: u16) {
    let theme = app.theme();
    let area = frame.area().inner(Margin::new(2, 1));
    let mut lines = facts(app, r);
    lines.extend(error(app, r));
    for (title, body) in [("request", &r.request), ("response", &r.response)] {
        lines.push(Line::raw(""));
        match body {
            Some(body) => {
                lines.push(Line::styled(title, theme.title()));
                lines.extend(
                    pretty(body)
                        .lines()
                        .map(|l| Line::raw(printable(l, usize::MAX))),
                );
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

/// What the call was and how long it took.
fn facts(app: &App, r: &CallRecord) -> Vec<Line<'static>> {
    let theme = app.theme();
    let plain = |name: &str, value: String| field(theme, name, vec![Span::raw(value)]);
    let when = at(r).format("%Y-%m-%d %H:%M:%S%.3f UTC");
    let mut lines = vec![
        plain("call", r.what()),
        plain("client", r.client.clone()),
        plain(
            "when",
            format!("{when} ({})", summary::relative(at(r), app.now())),
        ),
        plain(
            "protocol",
            r.protocol.clone().unwrap_or_else(|| "—".to_string()),
        ),
        plain("HTTP", format!("{} {}", r.http, r.status)),
        plain("first byte", ms(r.first_byte_us)),
        plain("total", ms(r.total_us)),
        plain("bytes", format!("{} in, {} out", r.bytes_in, r.bytes_out)),
    ];
    if r.streamed {
        lines.push(plain("streamed", format!("{} events", r.events)));
    }
    if r.refreshed || r.retried {
        let what = match (r.refreshed, r.retried) {
            (true, true) => "token refreshed after a 401, call sent again",
            (true, false) => "token refresh asked after a 401",
            _ => "call sent again",
        };
        lines.push(plain("tether", what.to_string()));
    }
    lines
}

/// The JSON-RPC error, and the diagnosis the failure led to with its fix.
fn error(app: &App, r: &CallRecord) -> Vec<Line<'static>> {
    let theme = app.theme();
    let mut lines = Vec::new();
    if !r.is_error() {
        return lines;
    }
    let code = r.error_code.map(|c| format!("{c} ")).unwrap_or_default();
    let message = r.error_message.clone().unwrap_or_default();
    lines.push(field(
        theme,
        "error",
        vec![Span::styled(
            format!("{code}{message}"),
            theme.fg(theme.error),
        )],
    ));
    let Some(diagnosis) = diagnosis_of(r) else {
        return lines;
    };
    let e = explain(diagnosis);
    lines.push(Line::raw(""));
    lines.push(field(
        theme,
        "diagnosis",
        vec![Span::styled(
            diagnosis.as_str(),
            bold(theme.fg(theme.error)),
        )],
    ));
    lines.push(field(
        theme,
        "",
        vec![Span::styled(e.summary, theme.title())],
    ));
    let mut fix = vec![Span::raw(e.remedy)];
    if let Some(key) = e.fix.and_then(key_for) {
        fix.push(Span::raw("  press "));
        fix.push(Span::styled(format!(" {} ", key.label()), theme.selected()));
        fix.push(Span::raw(" on the main screen"));
    }
    if let Some(command) = e.command_for(&r.connection) {
        fix.push(Span::styled("  or run  ", theme.muted()));
        fix.push(Span::styled(command, theme.fg(theme.accent)));
    }
    lines.push(field(theme, "fix", fix));
    lines.push(field(
        theme,
        "",
        vec![
            Span::styled(" 3 ", theme.key()),
            Span::raw(format!(" opens the Diagnosis tab of '{}'", r.connection)),
        ],
    ));
    lines
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
