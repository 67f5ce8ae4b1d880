//! What the keys do on the main screen and in the filter: navigation commands go to
//! `navigation.rs`; commands on the selected connection become engine commands, dialogs
//! or notices.

use super::{App, Confirm, Focus, Overlay};
use crate::action::{Command, DetailTab, Effect};
use crate::ui;
use crate::wizard::Wizard;
use tether_core::engine::{EngineCommand, NoticeLevel};
use tether_core::vault::{Auth, Connection, RegistrationStatus};
use tui_input::Input;

impl App {
    pub(super) fn filter_command(&mut self, command: Command) -> Option<Effect> {
        match command {
            Command::Submit => self.filtering = false,
            Command::Back => {
                self.filtering = false;
                self.filter = Input::default();
                self.fix_selection();
            }
            Command::Up => self.move_selection(-1),
            Command::Down => self.move_selection(1),
            Command::Quit => return Some(Effect::Quit(Vec::new())),
            _ => {}
        }
        None
    }

    pub(super) fn main_command(&mut self, command: Command) -> Option<Effect> {
        let page = ui::layout(self.area, self).table_rows.max(1) as isize;
        match command {
            Command::Quit => return Some(Effect::Quit(Vec::new())),
            Command::Back => {
                if self.focus == Focus::Detail {
                    self.focus = Focus::Table;
                } else if !self.filter.value().is_empty() {
                    self.filter = Input::default();
                    self.fix_selection();
                }
            }
            Command::Up => self.move_or_scroll(-1),
            Command::Down => self.move_or_scroll(1),
            Command::PageUp => self.move_or_scroll(-page),
            Command::PageDown => self.move_or_scroll(page),
            Command::Top => self.move_selection(isize::MIN / 2),
            Command::Bottom => self.move_selection(isize::MAX / 2),
            Command::ToggleFocus if self.selected.is_some() => {
                self.focus = match self.focus {
                    Focus::Table => Focus::Detail,
                    Focus::Detail => Focus::Table,
                };
            }
            Command::NextTab => self.show_tab(self.tab.next()),
            Command::PrevTab => self.show_tab(self.tab.prev()),
            Command::ShowTab(tab) => self.show_tab(tab),
            Command::Add => self.overlay = Overlay::Wizard(Box::default()),
            Command::Filter => self.filtering = true,
            Command::NextTheme => {
                self.theme_index = (self.theme_index + 1) % self.themes.themes.len();
                let name = self.theme().name.clone();
                self.notify(NoticeLevel::Info, format!("theme: {name}"));
            }
            Command::Help => {
                self.overlay = Overlay::Help {
                    selected: 0,
                    scroll: None,
                }
            }
            Command::Events => self.overlay = Overlay::Events { scroll: 0 },
            Command::AllCalls => self.show_all_calls(),
            _ => return self.connection_command(command),
        }
        None
    }

    /// Commands that act on the selected connection.
    pub(super) fn connection_command(&mut self, command: Command) -> Option<Effect> {
        let connection = self.selected_connection()?;
        let name = connection.name.to_string();
        let oauth = matches!(connection.auth, Auth::OAuth { .. });
        let orphans = connection
            .clients
            .iter()
            .filter(|r| r.status == RegistrationStatus::Orphan)
            .count();
        let client_label = self.selected_client_label(connection);
        let chosen_client = self.tab == DetailTab::Clients && self.focus == Focus::Detail;
        match command {
            Command::Login | Command::Reauthorize if !oauth => {
                let kind = connection.auth.kind();
                self.notify(
                    NoticeLevel::Info,
                    format!("'{name}' uses {kind}: there is nothing to authorize"),
                );
                None
            }
            Command::Login | Command::Reauthorize => {
                self.overlay = Overlay::Wizard(Box::new(Wizard::following(&name)));
                Effect::one(if command == Command::Login {
                    EngineCommand::Login { name }
                } else {
                    EngineCommand::Reauthorize { name }
                })
            }
            Command::Refresh if !oauth || connection.token.is_none() => {
                self.notify(
                    NoticeLevel::Info,
                    format!("'{name}' has no OAuth token to refresh"),
                );
                None
            }
            Command::Refresh => {
                self.notify(NoticeLevel::Info, format!("refreshing '{name}'…"));
                Effect::one(EngineCommand::Refresh { name })
            }
            Command::Delete => {
                self.overlay = Overlay::Confirm(Confirm::Delete { name });
                None
            }
            Command::CleanOrphans if orphans == 0 => {
                self.notify(
                    NoticeLevel::Info,
                    format!("'{name}' has no orphaned client registrations"),
                );
                None
            }
            Command::CleanOrphans => {
                self.overlay = Overlay::Confirm(Confirm::CleanOrphans {
                    name,
                    count: orphans,
                });
                None
            }
            Command::CopyEndpoint => Effect::one(EngineCommand::ClientEndpoint {
                name,
                label: client_label.unwrap_or_else(|| "default".to_string()),
            }),
            Command::RevokeClient => match (chosen_client, client_label) {
                (true, Some(label)) => {
                    self.overlay = Overlay::Confirm(Confirm::Revoke { name, label });
                    None
                }
                _ => {
                    self.notify(
                        NoticeLevel::Info,
                        "select a local client in the Clients tab (4, Enter, ↑/↓) to revoke it",
                    );
                    None
                }
            },
            _ => None,
        }
    }

    /// The downstream client the Clients tab has selected, else the first one.
    pub(super) fn selected_client_label(&self, connection: &Connection) -> Option<String> {
        let row = if self.tab == DetailTab::Clients {
            self.client_row
        } else {
            0
        };
        connection
            .access
            .get(row.min(connection.access.len().saturating_sub(1)))
            .map(|a| a.label.clone())
    }
}
