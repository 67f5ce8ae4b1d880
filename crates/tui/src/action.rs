//! The messages that change the TUI's state (`Action`), what a key asks for (`Command`),
//! and what an update asks the outside world to do (`Effect`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tui_input::InputRequest;

use tether_core::calls::CallRecord;
use tether_core::engine::{EngineCommand, EngineEvent, EngineState};
use tether_core::secret::Secret;

/// Everything that can change the TUI's state; only `App::update` consumes them.
#[derive(Debug, Clone)]
pub enum Action {
    /// A key bound in the keymap.
    Command(Command),
    /// Editing keys for the focused text field (wizard or filter).
    Input(InputRequest),
    /// Bracketed paste into the focused text field.
    Paste(String),
    Click {
        column: u16,
        row: u16,
    },
    Scroll {
        column: u16,
        row: u16,
        down: bool,
    },
    Resize {
        width: u16,
        height: u16,
    },
    /// The 1 s clock: countdowns and relative times move on.
    Tick(DateTime<Utc>),
    /// The engine published a new state.
    State(Arc<EngineState>),
    /// A transient event from the engine.
    Engine(EngineEvent),
    /// Calls read from the audit log, oldest first: another tether serves the proxy, so
    /// this process's engine records none.
    Calls(Vec<Arc<CallRecord>>),
    /// The sign-in requests waiting in the proxy another tether serves, read from its
    /// `consents.json`, oldest first.
    Consents(Vec<crate::consents::Asking>),
}

/// What a key asks for. The keymap maps keys to these per context; the help overlay and
/// the footer are generated from that map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Quit,
    /// Esc: close the dialog, leave the filter, or give focus back to the table.
    Back,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Left,
    Right,
    /// Enter on the main screen: move the keyboard between the table and the detail pane.
    ToggleFocus,
    NextTab,
    PrevTab,
    ShowTab(DetailTab),
    Add,
    Login,
    Refresh,
    Reauthorize,
    Delete,
    CopyEndpoint,
    CleanOrphans,
    RevokeClient,
    Filter,
    NextTheme,
    Help,
    Events,
    /// Enter in a form or dialog: next field, submit, confirm, retry, close when done.
    Submit,
    /// Put a login's authorization URL on the clipboard, for a browser elsewhere.
    CopyLoginUrl,
    NextField,
    PrevField,
    Confirm,
    /// The calls of all connections, live; again, back from them.
    AllCalls,
    /// Type a text the calls' method or tool must hold.
    FilterCalls,
    /// Only the next client's calls (then all clients again).
    NextClient,
    /// Only the calls that failed, or all again.
    ErrorsOnly,
    /// From an opened call: the Diagnosis tab of its connection.
    OpenDiagnosis,
    /// Let the client asking to sign in use the connection.
    Allow,
    /// Refuse the client asking to sign in.
    Deny,
}

/// The tabs of the detail pane, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DetailTab {
    #[default]
    Overview,
    History,
    Diagnosis,
    Clients,
    Traffic,
    Calls,
}

impl DetailTab {
    pub const ALL: [DetailTab; 6] = [
        DetailTab::Overview,
        DetailTab::History,
        DetailTab::Diagnosis,
        DetailTab::Clients,
        DetailTab::Traffic,
        DetailTab::Calls,
    ];

    pub fn title(self) -> &'static str {
        match self {
            DetailTab::Overview => "Overview",
            DetailTab::History => "History",
            DetailTab::Diagnosis => "Diagnosis",
            DetailTab::Clients => "Clients",
            DetailTab::Traffic => "Traffic",
            DetailTab::Calls => "Calls",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    pub fn next(self) -> Self {
        Self::ALL[(self.index() + 1) % Self::ALL.len()]
    }

    pub fn prev(self) -> Self {
        Self::ALL[(self.index() + Self::ALL.len() - 1) % Self::ALL.len()]
    }
}

/// What an update asks the run loop to do; the only way the TUI reaches outside itself.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send these commands to the engine, in order.
    Engine(Vec<EngineCommand>),
    /// Put this text on the clipboard (OSC 52). It is the user's own endpoint URL: shown,
    /// copied, never logged.
    Clipboard(Secret),
    /// Send these commands (cleanup, e.g. cancelling a login), then leave the TUI.
    Quit(Vec<EngineCommand>),
}

impl Effect {
    pub fn one(command: EngineCommand) -> Option<Self> {
        Some(Self::Engine(vec![command]))
    }
}
