//! The call views' keys: moving through the calls, opening one and scrolling it, the
//! filters, the calls of all connections, and from a call to the diagnosis it led to.

use std::sync::Arc;

use tui_input::Input;

use super::{App, Focus, Overlay};
use crate::action::{Command, DetailTab, Effect};
use crate::calls::{self, CallView};
use crate::ui;
use tether_core::calls::{CallRecord, Rings};
use tether_core::engine::NoticeLevel;

impl App {
    /// The calls the views show: those through this process's proxy, or — when another
    /// tether serves the proxy — those read from the audit log.
    pub fn call_rings(&self) -> &Rings {
        self.log_calls.as_ref().unwrap_or(&self.state.calls)
    }

    /// Whether the calls come from the audit log.
    pub fn calls_from_log(&self) -> bool {
        self.log_calls.is_some()
    }

    /// The list of all connections' calls (`all`) or the Calls tab's.
    pub fn call_view(&self, all: bool) -> &CallView {
        if all {
            &self.all_calls
        } else {
            &self.tab_calls
        }
    }

    /// The rows of a view, newest first through its filter.
    pub fn call_rows(&self, all: bool) -> Vec<Arc<CallRecord>> {
        let connection = if all {
            None
        } else {
            match self.selected.as_deref() {
                Some(name) => Some(name),
                None => return Vec::new(),
            }
        };
        calls::rows(self.call_rings(), connection, &self.call_view(all).filter)
    }

    /// The call selected in the Calls tab.
    pub fn selected_call(&self) -> Option<Arc<CallRecord>> {
        self.tab_calls.call(&self.call_rows(false))
    }

    /// Whether the keyboard is in the Calls tab's list.
    pub(super) fn in_calls_tab(&self) -> bool {
        self.focus == Focus::Detail && self.tab == DetailTab::Calls && self.selected.is_some()
    }

    /// A key in a call view; in the Calls tab, what the list does not take goes to the
    /// main screen.
    pub(super) fn calls_command(&mut self, all: bool, command: Command) -> Option<Effect> {
        if self.call_view(all).filter.editing {
            return self.call_filter_command(all, command);
        }
        let rows = self.call_rows(all);
        let page = self.call_page(all) as isize;
        let view = if all {
            &mut self.all_calls
        } else {
            &mut self.tab_calls
        };
        match command {
            Command::Up => view.move_by(&rows, -1),
            Command::Down => view.move_by(&rows, 1),
            Command::PageUp => view.move_by(&rows, -page),
            Command::PageDown => view.move_by(&rows, page),
            Command::Top => view.follow(),
            Command::Bottom => view.move_by(&rows, isize::MAX / 2),
            Command::Submit | Command::ToggleFocus => {
                if let Some(record) = view.call(&rows) {
                    self.overlay = Overlay::Call {
                        record,
                        scroll: 0,
                        from_all: all,
                    };
                }
            }
            Command::FilterCalls => view.filter.editing = true,
            Command::NextClient => {
                let connection = if all { None } else { self.selected.as_deref() };
                let clients = calls::clients(self.call_rings(), connection);
                let view = if all {
                    &mut self.all_calls
                } else {
                    &mut self.tab_calls
                };
                view.filter.next_client(&clients);
                view.refilter();
            }
            Command::ErrorsOnly => {
                view.filter.errors = !view.filter.errors;
                view.refilter();
            }
            Command::Back if view.filter.is_active() => view.filter.clear(),
            Command::Back | Command::AllCalls if all => self.overlay = Overlay::None,
            Command::Back => self.focus = Focus::Table,
            Command::AllCalls => self.show_all_calls(),
            Command::Quit => return Some(Effect::Quit(Vec::new())),
            other if !all => return self.main_command(other),
            _ => {}
        }
        None
    }

    fn call_filter_command(&mut self, all: bool, command: Command) -> Option<Effect> {
        let view = if all {
            &mut self.all_calls
        } else {
            &mut self.tab_calls
        };
        match command {
            Command::Submit => view.filter.editing = false,
            Command::Back => {
                view.filter.editing = false;
                view.filter.text = Input::default();
                view.refilter();
            }
            Command::Quit => return Some(Effect::Quit(Vec::new())),
            _ => {}
        }
        None
    }

    /// A key in an opened call: scroll it, close it (back to the list it was opened
    /// from), or go to the Diagnosis tab of its connection.
    pub(super) fn call_command(
        &mut self,
        record: Arc<CallRecord>,
        scroll: u16,
        from_all: bool,
        command: Command,
    ) -> Option<Effect> {
        let page = self.area.height.saturating_sub(6).max(1);
        let scroll = match command {
            Command::Back => {
                if from_all {
                    self.overlay = Overlay::Calls;
                }
                return None;
            }
            Command::Quit => return Some(Effect::Quit(Vec::new())),
            Command::OpenDiagnosis => {
                self.open_diagnosis(&record.connection);
                return None;
            }
            Command::Up => scroll.saturating_sub(1),
            Command::Down => scroll.saturating_add(1),
            Command::PageUp => scroll.saturating_sub(page),
            Command::PageDown => scroll.saturating_add(page),
            _ => scroll,
        };
        self.overlay = Overlay::Call {
            record,
            scroll,
            from_all,
        };
        None
    }

    /// Opens the calls of all connections, following the newest.
    pub(super) fn show_all_calls(&mut self) {
        self.all_calls.follow();
        self.overlay = Overlay::Calls;
    }

    /// Rows a page of a call view moves.
    fn call_page(&self, all: bool) -> u16 {
        let rows = if all {
            ui::all_calls_area(self.area).height.saturating_sub(3)
        } else {
            ui::layout(self.area, self)
                .detail_body
                .height
                .saturating_sub(1)
        };
        rows.max(1)
    }

    /// From a call to the Diagnosis tab of its connection, the keyboard on the table so
    /// the fix's key works at once.
    pub(super) fn open_diagnosis(&mut self, name: &str) {
        if self.state.store.get(name).is_none() {
            self.notify(
                NoticeLevel::Info,
                format!("'{name}' is no longer a connection"),
            );
            return;
        }
        if !self.visible().iter().any(|c| c.name.as_str() == name) {
            self.filtering = false;
            self.filter = Input::default();
        }
        if self.selected.as_deref() != Some(name) {
            self.selected = Some(name.to_string());
            self.reset_detail();
        }
        self.show_tab(DetailTab::Diagnosis);
        self.focus = Focus::Table;
        self.overlay = Overlay::None;
        self.keep_selection_visible();
    }
}
