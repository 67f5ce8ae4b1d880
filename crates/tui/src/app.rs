//! The TUI's state and the one place it changes: `App::update(Action) -> Option<Effect>`.
//! Views read an `&App`; network work goes to the engine as commands in an `Effect`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ratatui::layout::Rect;
use tui_input::{Input, InputRequest};

use super::action::{Action, Command, DetailTab, Effect};
use super::calls::CallView;
use super::keymap::Context;
use super::theme::{Theme, ThemeSet};
use super::ui;
use super::wizard::{Phase, Wizard};

mod calls;
mod commands;
mod consents;
mod navigation;
pub use consents::Shown;
use tether_core::calls::{CallRecord, Rings};
use tether_core::engine::{EngineCommand, EngineEvent, EngineState, NoticeLevel};
use tether_core::secret::Secret;
use tether_core::vault::Connection;

/// How long a notice stays in the status line.
const NOTICE_SECS: i64 = 8;
/// Notices kept for the events log.
const NOTICES_KEPT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Table,
    Detail,
}

#[derive(Debug, Clone)]
pub enum Overlay {
    None,
    /// The help: `selected` is the main-screen binding Enter runs; `scroll`, when the
    /// user paged the view, else the view follows the selection.
    Help {
        selected: usize,
        scroll: Option<u16>,
    },
    Confirm(Confirm),
    Endpoint(Endpoint),
    Wizard(Box<Wizard>),
    Events {
        scroll: usize,
    },
    /// The calls of all connections (`C`); its state is `App::all_calls`.
    Calls,
    /// One call, from the Calls tab or from all connections' calls (`from_all`), where
    /// closing it goes back to.
    Call {
        record: Arc<CallRecord>,
        scroll: u16,
        from_all: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Delete { name: String },
    CleanOrphans { name: String, count: usize },
    Revoke { name: String, label: String },
}

impl Confirm {
    fn command(&self) -> EngineCommand {
        match self.clone() {
            Confirm::Delete { name } => EngineCommand::Remove { name },
            Confirm::CleanOrphans { name, .. } => EngineCommand::CleanOrphans { name },
            Confirm::Revoke { name, label } => EngineCommand::RevokeClient { name, label },
        }
    }
}

/// A downstream client's endpoint, shown once in a popup and copied.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub connection: String,
    pub label: String,
    pub url: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub at: DateTime<Utc>,
    pub level: NoticeLevel,
    pub text: String,
}

pub struct App {
    pub(crate) state: Arc<EngineState>,
    /// The clock every countdown and relative time is drawn against; moved by `Tick`.
    pub(crate) now: DateTime<Utc>,
    pub(crate) area: Rect,
    pub(crate) selected: Option<String>,
    pub(crate) table_offset: usize,
    pub(crate) focus: Focus,
    pub(crate) tab: DetailTab,
    pub(crate) detail_scroll: u16,
    /// The downstream client selected in the Clients tab.
    pub(crate) client_row: usize,
    pub(crate) filter: Input,
    pub(crate) filtering: bool,
    pub(crate) overlay: Overlay,
    pub(crate) themes: ThemeSet,
    pub(crate) theme_index: usize,
    pub(crate) notices: VecDeque<Notice>,
    /// The Calls tab's list and the list of all connections' calls.
    pub(crate) tab_calls: CallView,
    pub(crate) all_calls: CallView,
    /// Calls read from the audit log, once another tether serving the proxy has the
    /// views read them there.
    pub(crate) log_calls: Option<Rings>,
    /// Clients asking to sign in through the proxy another tether serves, from its file.
    pub(crate) consents_elsewhere: Vec<crate::consents::Asking>,
    /// When this UI first saw each request waiting in this process's proxy.
    pub(crate) consents_seen: BTreeMap<String, DateTime<Utc>>,
    /// Requests answered here: no longer shown, though their source may still list them
    /// for a moment.
    pub(crate) answered: BTreeSet<String>,
}

impl App {
    /// `theme` names the theme to start with (falls back to the default with a notice).
    pub fn new(
        state: Arc<EngineState>,
        mut themes: ThemeSet,
        theme: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        let theme_index = themes.pick(theme);
        let mut app = Self {
            state,
            now,
            area: Rect::new(0, 0, 100, 30),
            selected: None,
            table_offset: 0,
            focus: Focus::Table,
            tab: DetailTab::Overview,
            detail_scroll: 0,
            client_row: 0,
            filter: Input::default(),
            filtering: false,
            overlay: Overlay::None,
            themes,
            theme_index,
            notices: VecDeque::new(),
            tab_calls: CallView::default(),
            all_calls: CallView::default(),
            log_calls: None,
            consents_elsewhere: Vec::new(),
            consents_seen: BTreeMap::new(),
            answered: BTreeSet::new(),
        };
        for warning in std::mem::take(&mut app.themes.warnings) {
            app.notify(NoticeLevel::Warning, warning);
        }
        app.fix_selection();
        app.see_consents();
        app
    }

    pub fn theme(&self) -> &Theme {
        &self.themes.themes[self.theme_index.min(self.themes.themes.len() - 1)]
    }

    pub fn state(&self) -> &EngineState {
        &self.state
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    pub fn focus(&self) -> Focus {
        self.focus
    }

    pub fn tab(&self) -> DetailTab {
        self.tab
    }

    pub fn filter_text(&self) -> &str {
        self.filter.value()
    }

    pub fn selected_name(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// The newest notice, while it is fresh.
    pub fn notice(&self) -> Option<&Notice> {
        self.notices
            .back()
            .filter(|n| self.now - n.at < Duration::seconds(NOTICE_SECS))
    }

    /// Which keymap applies now.
    pub fn context(&self) -> Context {
        if self.consent().is_some() {
            return Context::Consent;
        }
        match &self.overlay {
            Overlay::Wizard(_) => Context::Wizard,
            Overlay::Help { .. } => Context::Help,
            Overlay::Confirm(_) => Context::Confirm,
            Overlay::Endpoint(_) => Context::Endpoint,
            Overlay::Events { .. } => Context::Events,
            Overlay::Calls if self.all_calls.filter.editing => Context::CallFilter,
            Overlay::Calls => Context::AllCalls,
            Overlay::Call { .. } => Context::Call,
            Overlay::None if self.filtering => Context::Filter,
            Overlay::None if self.in_calls_tab() && self.tab_calls.filter.editing => {
                Context::CallFilter
            }
            Overlay::None if self.in_calls_tab() => Context::CallsTab,
            Overlay::None => Context::Main,
        }
    }

    /// The connections the filter lets through, in the vault's order.
    pub fn visible(&self) -> Vec<&Connection> {
        let needle = self.filter.value().trim().to_lowercase();
        self.state
            .store
            .connections()
            .iter()
            .filter(|c| needle.is_empty() || matches_filter(c, &needle))
            .collect()
    }

    pub fn selected_index(&self) -> Option<usize> {
        let name = self.selected.as_deref()?;
        self.visible().iter().position(|c| c.name.as_str() == name)
    }

    pub fn selected_connection(&self) -> Option<&Connection> {
        self.state.store.get(self.selected.as_deref()?)
    }

    pub fn update(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Tick(now) => {
                self.now = now;
                None
            }
            Action::State(state) => {
                self.state = state;
                self.follow_login_state();
                self.fix_selection();
                self.see_consents();
                None
            }
            Action::Consents(waiting) => {
                self.consents_elsewhere = waiting;
                self.see_consents();
                None
            }
            Action::Engine(event) => self.on_engine_event(event),
            Action::Resize { width, height } => {
                self.area = Rect::new(0, 0, width, height);
                self.keep_selection_visible();
                None
            }
            // The screen under a sign-in request holds still until it is answered.
            Action::Click { .. } | Action::Scroll { .. } if self.consent().is_some() => None,
            Action::Click { column, row } => {
                self.click(column, row);
                None
            }
            Action::Scroll { column, row, down } => {
                self.wheel(column, row, down);
                None
            }
            Action::Input(request) => {
                self.edit(request);
                None
            }
            Action::Paste(text) => {
                for ch in text.chars().filter(|c| !c.is_control()) {
                    self.edit(InputRequest::InsertChar(ch));
                }
                None
            }
            Action::Command(command) => self.command(command),
            Action::Calls(records) => {
                super::calls::keep(self.log_calls.get_or_insert_with(Rings::new), records);
                None
            }
        }
    }

    fn notify(&mut self, level: NoticeLevel, text: impl Into<String>) {
        self.notices.push_back(Notice {
            at: self.now,
            level,
            text: text.into(),
        });
        while self.notices.len() > NOTICES_KEPT {
            self.notices.pop_front();
        }
    }

    fn edit(&mut self, request: InputRequest) {
        let in_calls_tab = self.in_calls_tab();
        match &mut self.overlay {
            Overlay::Wizard(w) => w.edit(request),
            Overlay::None if self.filtering => {
                self.filter.handle(request);
                self.fix_selection();
            }
            Overlay::Calls => self.all_calls.edit(request),
            Overlay::None if in_calls_tab => self.tab_calls.edit(request),
            _ => {}
        }
    }

    fn on_engine_event(&mut self, event: EngineEvent) -> Option<Effect> {
        match event {
            EngineEvent::Notice { level, text } => {
                if let Overlay::Wizard(w) = &mut self.overlay
                    && let Phase::Running(p) = &mut w.phase
                    && level == NoticeLevel::Error
                    && p.added_here
                    && self.state.store.get(&p.name).is_none()
                {
                    p.error = Some(text.clone());
                }
                self.notify(level, text);
                None
            }
            EngineEvent::LoginStep {
                connection,
                step,
                outcome,
            } => {
                if let Overlay::Wizard(w) = &mut self.overlay
                    && let Phase::Running(p) = &mut w.phase
                    && p.name == connection
                {
                    p.record(step, outcome);
                }
                None
            }
            EngineEvent::Endpoint {
                connection,
                label,
                url,
            } => {
                if !matches!(self.overlay, Overlay::Wizard(_)) {
                    self.overlay = Overlay::Endpoint(Endpoint {
                        connection,
                        label,
                        url: url.clone(),
                    });
                }
                Some(Effect::Clipboard(url))
            }
            EngineEvent::SecretRefused { connection, count } => {
                let text = match connection {
                    Some(name) => format!(
                        "a client sent a refused secret for '{name}' {count} times: give it a new URL (tether url {name} --client LABEL)"
                    ),
                    None => format!(
                        "a client sent an unknown endpoint secret {count} times: give it a new URL (tether url NAME --client LABEL)"
                    ),
                };
                self.notify(NoticeLevel::Warning, text);
                None
            }
        }
    }

    /// The engine's record of a login is the truth while it has one.
    fn follow_login_state(&mut self) {
        if let Overlay::Wizard(w) = &mut self.overlay
            && let Phase::Running(p) = &mut w.phase
            && let Some(login) = self.state.logins.get(&p.name)
        {
            for (step, outcome) in &login.steps {
                p.record(step.clone(), outcome.clone());
            }
        }
    }

    fn command(&mut self, command: Command) -> Option<Effect> {
        if self.consent().is_some() && command != Command::Quit {
            return self.consent_command(command).flatten();
        }
        match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::None => {
                if self.filtering {
                    self.filter_command(command)
                } else if self.in_calls_tab() {
                    self.calls_command(false, command)
                } else {
                    self.main_command(command)
                }
            }
            Overlay::Calls => {
                self.overlay = Overlay::Calls;
                self.calls_command(true, command)
            }
            Overlay::Wizard(mut wizard) => {
                let outcome = wizard.command(command, &self.state.store);
                if !outcome.close {
                    self.overlay = Overlay::Wizard(wizard);
                }
                if let Some(Effect::Clipboard(_)) = &outcome.effect {
                    self.notify(
                        NoticeLevel::Info,
                        "sign-in URL copied (OSC 52): open it in the browser on your machine",
                    );
                }
                outcome.effect
            }
            Overlay::Confirm(confirm) => match command {
                Command::Confirm => Effect::one(confirm.command()),
                Command::Quit => Some(Effect::Quit(Vec::new())),
                Command::Back => None,
                _ => {
                    self.overlay = Overlay::Confirm(confirm);
                    None
                }
            },
            Overlay::Endpoint(endpoint) => match command {
                Command::Quit => Some(Effect::Quit(Vec::new())),
                Command::Back => None,
                Command::CopyEndpoint => {
                    let url = endpoint.url.clone();
                    self.notify(NoticeLevel::Info, "endpoint copied to the clipboard");
                    self.overlay = Overlay::Endpoint(endpoint);
                    Some(Effect::Clipboard(url))
                }
                _ => {
                    self.overlay = Overlay::Endpoint(endpoint);
                    None
                }
            },
            Overlay::Events { scroll } => {
                let len = ui::event_rows(self).len();
                let page = self.area.height.saturating_sub(6).max(1) as usize;
                let scroll = match command {
                    Command::Back => return None,
                    Command::Quit => return Some(Effect::Quit(Vec::new())),
                    Command::Up => scroll.saturating_sub(1),
                    Command::Down => scroll + 1,
                    Command::PageUp => scroll.saturating_sub(page),
                    Command::PageDown => scroll + page,
                    Command::Top => 0,
                    Command::Bottom => len,
                    _ => scroll,
                };
                self.overlay = Overlay::Events {
                    scroll: scroll.min(len.saturating_sub(1)),
                };
                None
            }
            Overlay::Call {
                record,
                scroll,
                from_all,
            } => self.call_command(record, scroll, from_all, command),
            Overlay::Help { selected, scroll } => {
                let actions = crate::keymap::bindings(crate::keymap::Context::Main).count();
                let view = scroll.unwrap_or_else(|| ui::help_scroll_for(selected, self.area));
                let page = self.area.height.saturating_sub(8).max(1);
                let (selected, scroll) = match command {
                    Command::Back => return None,
                    Command::Quit => return Some(Effect::Quit(Vec::new())),
                    // Every main-screen action is one Enter away from the help.
                    Command::Submit => {
                        let binding =
                            crate::keymap::bindings(crate::keymap::Context::Main).nth(selected)?;
                        return self.main_command(binding.command);
                    }
                    Command::Up => (selected.saturating_sub(1), None),
                    Command::Down => ((selected + 1).min(actions.saturating_sub(1)), None),
                    Command::Top => (0, None),
                    Command::Bottom => (actions.saturating_sub(1), None),
                    Command::PageUp => (selected, Some(view.saturating_sub(page))),
                    Command::PageDown => (
                        selected,
                        Some(view.saturating_add(page).min(ui::help_len() as u16)),
                    ),
                    _ => (selected, scroll),
                };
                self.overlay = Overlay::Help { selected, scroll };
                None
            }
        }
    }
}

fn matches_filter(c: &Connection, needle: &str) -> bool {
    let host = c.upstream.host_str().unwrap_or_default();
    let diagnosis = c.state.diagnosis().map(|d| d.as_str()).unwrap_or_default();
    [c.name.as_str(), host, c.state.word(), diagnosis]
        .iter()
        .any(|field| field.to_lowercase().contains(needle))
}
