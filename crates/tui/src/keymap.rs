//! The keymap, kept as data: which key does what in which context. Terminal events become
//! actions here; the help overlay and the footer are generated from [`BINDINGS`].

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};

use super::action::{Action, Command, DetailTab};
use tether_core::diagnosis::Fix;

/// Where the keyboard is: each context has its own bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    Main,
    Filter,
    Wizard,
    Help,
    Confirm,
    Endpoint,
    Events,
    /// A list of calls: the keys the Calls tab and all connections' calls share.
    Calls,
    /// The calls of all connections (`C`): the list's keys and its own.
    AllCalls,
    /// The Calls tab with the keyboard: the calls list's keys first, the main screen's
    /// for the rest.
    CallsTab,
    /// Typing a call view's text filter.
    CallFilter,
    Call,
    /// A client asking to sign in to tether: the dialog over every screen.
    Consent,
}

impl Context {
    pub const ALL: [Context; 13] = [
        Context::Main,
        Context::Filter,
        Context::Wizard,
        Context::Confirm,
        Context::Endpoint,
        Context::Events,
        Context::Calls,
        Context::AllCalls,
        Context::CallsTab,
        Context::CallFilter,
        Context::Call,
        Context::Consent,
        Context::Help,
    ];

    /// The contexts whose bindings apply here, first match wins.
    pub fn layers(self) -> &'static [Context] {
        match self {
            Context::CallsTab => &[Context::Calls, Context::Main],
            Context::AllCalls => &[Context::AllCalls, Context::Calls],
            Context::Main => &[Context::Main],
            Context::Filter => &[Context::Filter],
            Context::Wizard => &[Context::Wizard],
            Context::Help => &[Context::Help],
            Context::Confirm => &[Context::Confirm],
            Context::Endpoint => &[Context::Endpoint],
            Context::Events => &[Context::Events],
            Context::Calls => &[Context::Calls],
            Context::CallFilter => &[Context::CallFilter],
            Context::Call => &[Context::Call],
            Context::Consent => &[Context::Consent],
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Context::Main => "Connections",
            Context::Filter => "Filter",
            Context::Wizard => "Add / authorize",
            Context::Help => "Help",
            Context::Confirm => "Confirm",
            Context::Endpoint => "Endpoint",
            Context::Events => "Events log",
            Context::Calls => "Calls (the Calls tab with the keyboard, and all connections' calls)",
            Context::AllCalls => "All connections' calls",
            Context::CallsTab => "Calls tab",
            Context::CallFilter => "Calls filter",
            Context::Call => "One call",
            Context::Consent => "A client asking to sign in to tether",
        }
    }

    /// Whether unbound keys edit a text field here.
    pub fn takes_text(self) -> bool {
        matches!(
            self,
            Context::Filter | Context::Wizard | Context::CallFilter
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn k(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn c(ch: char) -> Key {
    Key {
        code: KeyCode::Char(ch),
        ctrl: false,
    }
}

const fn ctrl(ch: char) -> Key {
    Key {
        code: KeyCode::Char(ch),
        ctrl: true,
    }
}

impl Key {
    /// How the help overlay and footer write this key.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Up => "↑".to_string(),
            KeyCode::Down => "↓".to_string(),
            KeyCode::Left => "←".to_string(),
            KeyCode::Right => "→".to_string(),
            KeyCode::Enter => "Enter".to_string(),
            KeyCode::Esc => "Esc".to_string(),
            KeyCode::Tab => "Tab".to_string(),
            KeyCode::BackTab => "S-Tab".to_string(),
            KeyCode::PageUp => "PgUp".to_string(),
            KeyCode::PageDown => "PgDn".to_string(),
            KeyCode::Home => "Home".to_string(),
            KeyCode::End => "End".to_string(),
            KeyCode::Char(ch) => ch.to_string(),
            other => format!("{other:?}"),
        };
        if self.ctrl {
            format!("Ctrl-{base}")
        } else {
            base
        }
    }

    /// The key event a terminal sends for this key (for tests and synthetic input).
    pub fn event(&self) -> KeyEvent {
        let mut mods = if self.ctrl {
            KeyModifiers::CONTROL
        } else {
            KeyModifiers::NONE
        };
        if matches!(self.code, KeyCode::BackTab)
            || matches!(self.code, KeyCode::Char(ch) if ch.is_ascii_uppercase() || ch == '?')
        {
            mods |= KeyModifiers::SHIFT;
        }
        KeyEvent::new(self.code, mods)
    }

    fn matches(&self, event: &KeyEvent) -> bool {
        // Shift is part of the character ('R', '?') or of BackTab; only Ctrl tells keys apart.
        self.code == event.code && self.ctrl == event.modifiers.contains(KeyModifiers::CONTROL)
    }
}

pub struct Binding {
    pub context: Context,
    pub keys: &'static [Key],
    pub command: Command,
    /// One line for the help overlay.
    pub help: &'static str,
    /// A word or two for the footer; `None` keeps the binding out of the footer.
    pub footer: Option<&'static str>,
}

const fn b(
    context: Context,
    keys: &'static [Key],
    command: Command,
    help: &'static str,
    footer: Option<&'static str>,
) -> Binding {
    Binding {
        context,
        keys,
        command,
        help,
        footer,
    }
}

use Command as C;
use Context::{
    AllCalls, Call, CallFilter, Calls, Confirm, Consent, Endpoint, Events, Filter, Help, Main,
    Wizard,
};

/// The main-screen key that applies a diagnosis's fix.
pub fn key_for(fix: Fix) -> Option<Key> {
    let command = match fix {
        Fix::SignIn => Command::Login,
        Fix::Refresh => Command::Refresh,
        Fix::CleanOrphans => Command::CleanOrphans,
        Fix::ShowEndpoint => Command::CopyEndpoint,
    };
    BINDINGS
        .iter()
        .find(|b| b.context == Main && b.command == command)
        .and_then(|b| b.keys.first().copied())
}

/// Every binding, in the order the help overlay lists them.
#[rustfmt::skip]
pub static BINDINGS: &[Binding] = &[
    b(Main, &[k(KeyCode::Up), c('k')], C::Up, "previous connection (or scroll the detail pane)", None),
    b(Main, &[k(KeyCode::Down), c('j')], C::Down, "next connection (or scroll the detail pane)", Some("move")),
    b(Main, &[k(KeyCode::PageUp)], C::PageUp, "page up", None),
    b(Main, &[k(KeyCode::PageDown)], C::PageDown, "page down", None),
    b(Main, &[k(KeyCode::Home), c('g')], C::Top, "first connection", None),
    b(Main, &[k(KeyCode::End), c('G')], C::Bottom, "last connection", None),
    b(Main, &[k(KeyCode::Enter)], C::ToggleFocus, "move the keyboard between the table and the detail pane", Some("focus")),
    b(Main, &[k(KeyCode::Tab), k(KeyCode::Right)], C::NextTab, "next detail tab", Some("tabs")),
    b(Main, &[k(KeyCode::BackTab), k(KeyCode::Left)], C::PrevTab, "previous detail tab", None),
    b(Main, &[c('1')], C::ShowTab(DetailTab::Overview), "Overview tab: token, client, scopes", None),
    b(Main, &[c('2')], C::ShowTab(DetailTab::History), "History tab: refresh timeline and latency", None),
    b(Main, &[c('3')], C::ShowTab(DetailTab::Diagnosis), "Diagnosis tab: why it broke, evidence, the fix", None),
    b(Main, &[c('4')], C::ShowTab(DetailTab::Clients), "Clients tab: OAuth registrations, local clients", None),
    b(Main, &[c('5')], C::ShowTab(DetailTab::Traffic), "Traffic tab: requests and errors per client", None),
    b(Main, &[c('6')], C::ShowTab(DetailTab::Calls), "Calls tab: every call through the proxy, newest first, live", None),
    b(Main, &[c('C')], C::AllCalls, "the calls of all connections, newest first, live", Some("calls")),
    b(Main, &[c('a')], C::Add, "add a connection (wizard)", Some("add")),
    b(Main, &[c('l')], C::Login, "log in / authorize the selected connection", Some("login")),
    b(Main, &[c('r')], C::Refresh, "refresh the token now", Some("refresh")),
    b(Main, &[c('R')], C::Reauthorize, "register a new OAuth client and authorize again", Some("re-register")),
    b(Main, &[c('d')], C::Delete, "delete the connection (asks first)", Some("delete")),
    b(Main, &[c('c')], C::CopyEndpoint, "copy the local endpoint for a client (OSC 52) and show it", Some("copy URL")),
    b(Main, &[c('o')], C::CleanOrphans, "clean orphaned client registrations (asks first)", Some("orphans")),
    b(Main, &[c('x')], C::RevokeClient, "revoke the local client selected in the Clients tab (asks first)", None),
    b(Main, &[c('/')], C::Filter, "filter connections by name, host, state or diagnosis", Some("filter")),
    b(Main, &[c('e')], C::Events, "events log across all connections", Some("events")),
    b(Main, &[c('t')], C::NextTheme, "next colour theme", Some("theme")),
    b(Main, &[c('?')], C::Help, "this help", Some("help")),
    b(Main, &[k(KeyCode::Esc)], C::Back, "clear the filter, or give the keyboard back to the table", None),
    b(Main, &[c('q'), ctrl('c')], C::Quit, "quit (the proxy stops with it)", Some("quit")),
    b(Filter, &[k(KeyCode::Enter)], C::Submit, "keep the filter and go back to the table", Some("keep")),
    b(Filter, &[k(KeyCode::Esc)], C::Back, "clear the filter", Some("clear")),
    b(Filter, &[k(KeyCode::Up)], C::Up, "previous match", None),
    b(Filter, &[k(KeyCode::Down)], C::Down, "next match", None),
    b(Wizard, &[k(KeyCode::Enter)], C::Submit, "next field; on the last field add and authorize; send a pasted sign-in address; when done, close", Some("next / add")),
    b(Wizard, &[k(KeyCode::Tab), k(KeyCode::Down)], C::NextField, "next field", Some("field")),
    b(Wizard, &[k(KeyCode::BackTab), k(KeyCode::Up)], C::PrevField, "previous field", None),
    b(Wizard, &[k(KeyCode::Left)], C::Left, "previous auth kind (or move the cursor)", None),
    b(Wizard, &[k(KeyCode::Right)], C::Right, "next auth kind (or move the cursor)", Some("auth kind")),
    b(Wizard, &[ctrl('y')], C::CopyLoginUrl, "copy the sign-in URL (OSC 52), to open it in a browser on another machine", None),
    b(Wizard, &[k(KeyCode::Esc)], C::Back, "cancel: stop the login and remove a connection it left without a token", Some("cancel")),
    b(Confirm, &[c('y'), k(KeyCode::Enter)], C::Confirm, "yes, do it", Some("yes")),
    b(Confirm, &[c('n'), k(KeyCode::Esc)], C::Back, "no, keep everything", Some("no")),
    b(Endpoint, &[c('c')], C::CopyEndpoint, "copy the endpoint again", Some("copy")),
    b(Endpoint, &[k(KeyCode::Esc), k(KeyCode::Enter), c('q')], C::Back, "close", Some("close")),
    b(Events, &[k(KeyCode::Up), c('k')], C::Up, "scroll up", None),
    b(Events, &[k(KeyCode::Down), c('j')], C::Down, "scroll down", Some("scroll")),
    b(Events, &[k(KeyCode::PageUp)], C::PageUp, "page up", None),
    b(Events, &[k(KeyCode::PageDown)], C::PageDown, "page down", None),
    b(Events, &[k(KeyCode::Home), c('g')], C::Top, "newest", None),
    b(Events, &[k(KeyCode::End), c('G')], C::Bottom, "oldest", None),
    b(Events, &[k(KeyCode::Esc), c('e'), c('q')], C::Back, "close the events log", Some("close")),
    b(Calls, &[k(KeyCode::Up), c('k')], C::Up, "newer call", None),
    b(Calls, &[k(KeyCode::Down), c('j')], C::Down, "older call (the list holds still while new calls arrive)", Some("move")),
    b(Calls, &[k(KeyCode::PageUp)], C::PageUp, "page up", None),
    b(Calls, &[k(KeyCode::PageDown)], C::PageDown, "page down", None),
    b(Calls, &[k(KeyCode::Home), c('g')], C::Top, "newest call: follow new calls again", None),
    b(Calls, &[k(KeyCode::End), c('G')], C::Bottom, "oldest call", None),
    b(Calls, &[k(KeyCode::Enter)], C::Submit, "open the selected call", Some("open")),
    b(Calls, &[c('/')], C::FilterCalls, "only calls whose method or tool holds a text", Some("filter")),
    b(Calls, &[c('c')], C::NextClient, "only one client's calls: the next client each press, then all", Some("client")),
    b(Calls, &[c('e')], C::ErrorsOnly, "only the calls that failed, or all again", Some("errors")),
    b(Calls, &[c('C')], C::AllCalls, "switch between this connection's calls and all connections'", Some("all")),
    b(Calls, &[k(KeyCode::Esc)], C::Back, "clear the filters; without any, leave the list", Some("back")),
    b(AllCalls, &[c('q')], C::AllCalls, "close the calls of all connections", Some("close")),
    b(CallFilter, &[k(KeyCode::Enter)], C::Submit, "keep the text filter and go back to the calls", Some("keep")),
    b(CallFilter, &[k(KeyCode::Esc)], C::Back, "clear the text filter", Some("clear")),
    b(Call, &[k(KeyCode::Up), c('k')], C::Up, "scroll up", None),
    b(Call, &[k(KeyCode::Down), c('j')], C::Down, "scroll down", Some("scroll")),
    b(Call, &[k(KeyCode::PageUp)], C::PageUp, "page up", None),
    b(Call, &[k(KeyCode::PageDown)], C::PageDown, "page down", None),
    b(Call, &[c('3')], C::OpenDiagnosis, "the Diagnosis tab of the call's connection: what its failure means and the key that fixes it", Some("diagnosis")),
    b(Call, &[k(KeyCode::Esc), k(KeyCode::Enter), c('q')], C::Back, "close the call", Some("close")),
    // A chord no text field, and no other screen, uses: typing elsewhere when the request
    // pops up cannot answer it.
    b(Consent, &[ctrl('o')], C::Allow, "allow: the client may use the connection, with your account, until revoked", Some("allow")),
    b(Consent, &[ctrl('d')], C::Deny, "deny: the client is told no", Some("deny")),
    b(Consent, &[ctrl('c')], C::Quit, "quit tether (a request waiting in this tether's proxy goes with it)", None),
    b(Help, &[k(KeyCode::Up), c('k')], C::Up, "previous action", None),
    b(Help, &[k(KeyCode::Down), c('j')], C::Down, "next action", Some("choose")),
    b(Help, &[k(KeyCode::Enter)], C::Submit, "run the chosen action", Some("run")),
    b(Help, &[k(KeyCode::Home), c('g')], C::Top, "first action", None),
    b(Help, &[k(KeyCode::End), c('G')], C::Bottom, "last action", None),
    b(Help, &[k(KeyCode::PageUp)], C::PageUp, "scroll up a page", None),
    b(Help, &[k(KeyCode::PageDown)], C::PageDown, "scroll down a page (other keys, states)", Some("scroll")),
    b(Help, &[k(KeyCode::Esc), c('?'), c('q')], C::Back, "close the help", Some("close")),
];

/// The command a key asks for in a context; Ctrl-C quits everywhere.
pub fn lookup(context: Context, event: &KeyEvent) -> Option<Command> {
    if ctrl('c').matches(event) {
        return Some(Command::Quit);
    }
    context.layers().iter().find_map(|layer| {
        bindings(*layer)
            .find(|b| b.keys.iter().any(|key| key.matches(event)))
            .map(|b| b.command)
    })
}

/// The bindings of one context, in help order.
pub fn bindings(context: Context) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| b.context == context)
}

/// Turns a terminal event into an action, or `None` for events that change nothing
/// (mouse moves, key releases, focus changes) so they cost no redraw.
pub fn to_action(context: Context, event: &Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            if let Some(command) = lookup(context, key) {
                return Some(Action::Command(command));
            }
            if context.takes_text() {
                return tui_input::backend::crossterm::to_input_request(event).map(Action::Input);
            }
            None
        }
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click {
                column: mouse.column,
                row: mouse.row,
            }),
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => Some(Action::Scroll {
                column: mouse.column,
                row: mouse.row,
                down: mouse.kind == MouseEventKind::ScrollDown,
            }),
            _ => None,
        },
        Event::Resize(width, height) => Some(Action::Resize {
            width: *width,
            height: *height,
        }),
        Event::Paste(text) if context.takes_text() => Some(Action::Paste(text.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fix_a_diagnosis_offers_has_a_key() {
        for code in tether_core::diagnosis::ALL {
            if let Some(fix) = tether_core::diagnosis::explain(code).fix {
                assert!(key_for(fix).is_some(), "{code}: no key for {fix:?}");
            }
        }
        assert_eq!(key_for(Fix::SignIn), Some(c('l')));
    }

    #[test]
    fn no_key_is_bound_twice_in_one_context() {
        for context in Context::ALL {
            let keys: Vec<Key> = bindings(context)
                .flat_map(|b| b.keys.iter().copied())
                .collect();
            for (i, key) in keys.iter().enumerate() {
                assert!(
                    !keys[i + 1..].contains(key),
                    "{} bound twice in {context:?}",
                    key.label()
                );
            }
        }
    }

    #[test]
    fn every_context_can_be_left() {
        for context in Context::ALL {
            assert!(
                context
                    .layers()
                    .iter()
                    .flat_map(|layer| bindings(*layer))
                    .any(|b| matches!(b.command, Command::Back | Command::Quit)),
                "{context:?}"
            );
        }
    }

    #[test]
    fn the_calls_tab_takes_the_lists_keys_and_leaves_the_rest_to_the_main_screen() {
        let press = |ch: char| lookup(Context::CallsTab, &c(ch).event());
        assert_eq!(press('e'), Some(Command::ErrorsOnly));
        assert_eq!(press('l'), Some(Command::Login));
        assert_eq!(press('q'), Some(Command::Quit));
        assert_eq!(
            lookup(Context::AllCalls, &c('q').event()),
            Some(Command::AllCalls)
        );
        assert_eq!(
            lookup(Context::AllCalls, &c('e').event()),
            Some(Command::ErrorsOnly)
        );
    }
}
