//! The Diagnosis tab: the current diagnosis in plain words, the evidence the server gave
//! (status, OAuth error and description, URL, client — masked), and the key that fixes it.

use ratatui::text::{Line, Span};

use super::{bold, event_word};
use crate::app::App;
use crate::keymap::key_for;
use tether_core::diagnosis::explain;
use tether_core::summary;
use tether_core::vault::{Connection, ConnectionState, DiagnosisCode, Event};

/// The diagnosis that applies now, with the event that carries its evidence, and whether
/// it is current (`false`: an earlier one the connection recovered from).
pub fn current(c: &Connection) -> Option<(DiagnosisCode, Option<&Event>, bool)> {
    let latest_with =
        |code: DiagnosisCode| c.history.iter().rev().find(|e| e.diagnosis == Some(code));
    if let Some(code) = c.state.diagnosis() {
        return Some((code, latest_with(code), true));
    }
    let last = c.history.iter().rev().find(|e| e.diagnosis.is_some())?;
    let code = last.diagnosis?;
    let ongoing = matches!(c.state, ConnectionState::Degraded { .. });
    Some((code, Some(last), ongoing))
}

pub fn lines(app: &App, c: &Connection) -> Vec<Line<'static>> {
    let theme = app.theme();
    let now = app.now();
    let Some((code, event, ongoing)) = current(c) else {
        return vec![
            Line::from(Span::styled("✓ Nothing to fix.", bold(theme.fg(theme.ok)))),
            Line::raw(""),
            Line::styled(
                "tether has seen no failure on this connection. If one happens, this tab says \
                 what the server answered, what it means, and which key fixes it.",
                theme.muted(),
            ),
        ];
    };
    let e = explain(code);
    let colour = match (ongoing, e.needs_action) {
        (true, true) => theme.error,
        (true, false) => theme.warning,
        (false, _) => theme.muted,
    };
    let mut out = Vec::new();
    if !ongoing {
        out.push(Line::from(Span::styled(
            "✓ Working now. The last diagnosis, for the record:",
            theme.fg(theme.ok),
        )));
        out.push(Line::raw(""));
    }
    out.push(Line::from(vec![
        Span::styled(if e.needs_action { "✗ " } else { "▲ " }, theme.fg(colour)),
        Span::styled(code.as_str(), bold(theme.fg(colour))),
    ]));
    out.push(Line::from(Span::styled(e.summary, theme.title())));
    out.push(Line::raw(""));
    out.push(Line::from(vec![
        Span::styled("Fix  ", theme.title()),
        Span::raw(e.remedy),
    ]));
    let mut how = vec![Span::raw("     ")];
    let key = e.fix.and_then(key_for);
    if let Some(key) = key {
        how.push(Span::raw("press "));
        how.push(Span::styled(format!(" {} ", key.label()), theme.selected()));
    }
    if let Some(command) = e.command_for(c.name.as_str()) {
        how.push(Span::styled(
            if key.is_some() { "  or run  " } else { "run  " },
            theme.muted(),
        ));
        how.push(Span::styled(command, theme.fg(theme.accent)));
    }
    if how.len() > 1 {
        out.push(Line::from(how));
    }
    out.push(Line::raw(""));
    out.push(Line::raw(e.detail));
    if let Some(event) = event {
        out.push(Line::raw(""));
        out.push(Line::from(vec![
            Span::styled("Evidence", theme.title()),
            Span::styled(
                format!(
                    " — {} {}",
                    event_word(event.kind),
                    summary::relative(event.at, now)
                ),
                theme.muted(),
            ),
        ]));
        if !event.detail.is_empty() {
            out.push(evidence_line(app, "detail", &event.detail));
        }
        for ev in &event.evidence {
            out.push(evidence_line(app, &ev.label, &ev.value));
        }
    }
    out
}

fn evidence_line(app: &App, label: &str, value: &str) -> Line<'static> {
    let theme = app.theme();
    Line::from(vec![
        Span::styled(format!("  {label:<18}"), theme.muted()),
        Span::raw(value.to_string()),
    ])
}
