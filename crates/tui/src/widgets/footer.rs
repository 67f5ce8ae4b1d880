//! The footer: the newest notice while it is fresh, then the keys that apply now, taken
//! from the keymap and filtered by what the selected connection allows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::fit;
use crate::action::Command;
use crate::app::{App, Overlay};
use crate::keymap::{self, Context};
use crate::wizard::{Phase, Status};
use tether_core::engine::NoticeLevel;
use tether_core::vault::{Auth, RegistrationStatus};

/// Footer words a narrow footer drops first: arrows and tabs explain themselves.
const SELF_EVIDENT: [&str; 5] = ["move", "tabs", "focus", "theme", "events"];

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme();
    let mut spans = Vec::new();
    let mut used = 0usize;
    if let Some(notice) = app.notice() {
        let colour = match notice.level {
            NoticeLevel::Info => theme.info,
            NoticeLevel::Warning => theme.warning,
            NoticeLevel::Error => theme.error,
        };
        let text = fit(&notice.text, (area.width as usize * 3 / 5).max(20));
        used += text.chars().count() + 3;
        spans.push(Span::styled(format!(" {text}  "), theme.fg(colour)));
    }
    let keys = keys(app);
    let budget = (area.width as usize).saturating_sub(used + 1);
    let mut shown: Vec<(String, &str)> = keys;
    while width(&shown) > budget && shown.len() > 1 {
        // Self-evident keys go first; then from the end, keeping help and quit.
        let drop_at = shown
            .iter()
            .position(|(_, word)| SELF_EVIDENT.contains(word))
            .unwrap_or_else(|| shown.len().saturating_sub(3).min(shown.len() - 1));
        shown.remove(drop_at);
    }
    spans.push(Span::raw(" "));
    for (i, (key, word)) in shown.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(key.clone(), theme.key()));
        spans.push(Span::styled(format!(" {word}"), theme.muted()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn width(keys: &[(String, &str)]) -> usize {
    keys.iter()
        .map(|(k, w)| k.chars().count() + w.chars().count() + 3)
        .sum()
}

/// `(key label, word)` for each footer binding that applies now.
pub fn keys(app: &App) -> Vec<(String, &'static str)> {
    let context = app.context();
    if let Overlay::Wizard(w) = &app.overlay
        && let Phase::Running(p) = &w.phase
    {
        let first = match p.status(&app.state().store) {
            Status::Done => ("Enter".to_string(), "close"),
            Status::Failed { .. } if p.login => ("Enter".to_string(), "retry"),
            _ => ("Esc".to_string(), "cancel"),
        };
        let mut keys = vec![first];
        if keys[0].0 != "Esc" {
            keys.push(("Esc".to_string(), "cancel"));
        }
        return keys;
    }
    // The Calls tab shows the list's keys; the main screen's still work there.
    let layers = context.layers();
    let shown = if context == Context::CallsTab {
        &layers[..1]
    } else {
        layers
    };
    shown
        .iter()
        .flat_map(|layer| keymap::bindings(*layer))
        .filter(|b| b.footer.is_some())
        .filter(|b| context != Context::Main || applies(app, b.command))
        .filter(|b| b.command != Command::OpenDiagnosis || opened_call_has_diagnosis(app))
        .map(|b| {
            let label = b
                .keys
                .iter()
                .map(|k| k.label())
                .collect::<Vec<_>>()
                .join("/");
            (label, b.footer.unwrap_or_default())
        })
        .collect()
}

fn opened_call_has_diagnosis(app: &App) -> bool {
    matches!(&app.overlay, Overlay::Call { record, .. } if crate::calls::diagnosis_of(record).is_some())
}

/// Whether a main-screen command would do something for the selected connection.
pub fn applies(app: &App, command: Command) -> bool {
    let Some(c) = app.selected_connection() else {
        return matches!(
            command,
            Command::Add
                | Command::Filter
                | Command::NextTheme
                | Command::Help
                | Command::Events
                | Command::Quit
        );
    };
    let oauth = matches!(c.auth, Auth::OAuth { .. });
    match command {
        Command::Login => oauth,
        Command::Reauthorize => oauth && !c.clients.is_empty(),
        Command::Refresh => oauth && c.token.is_some() && c.state.diagnosis().is_none(),
        Command::CleanOrphans => c
            .clients
            .iter()
            .any(|r| r.status == RegistrationStatus::Orphan),
        _ => true,
    }
}
