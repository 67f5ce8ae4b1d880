//! The terminal UI: the run loop that merges terminal input, engine state, engine events
//! and a 1 s tick in one `select!`, applies each as an action, and redraws only when
//! something changed. Nothing here talks to the network: commands go to the engine.
//!
//! Map: [`app`] state and `update` · [`action`] messages · [`keymap`] keys as data ·
//! [`wizard`] the add/authorize flow · [`calls`] what a call view shows · `audit` the
//! calls of another tether's proxy, read from the audit log · [`consents`] clients asking
//! to sign in, and those waiting in another tether's proxy · [`theme`] colour slots ·
//! [`ui`] layout and draw · [`widgets`] one region each · `fixture` (feature `fixtures`) a
//! realistic state and a screen buffer for snapshot tests, the render bench and the
//! screenshot tool.
//!
//! Logs must not reach the terminal this draws on: the caller routes `tracing` to a file
//! before calling [`run`]. A panic in a background task while the TUI runs is logged, not
//! printed over the screen; a panic in the TUI itself restores the terminal first.

pub mod action;
pub mod app;
mod audit;
pub mod calls;
pub mod consents;
#[cfg(test)]
mod diagnoses_doc;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixture;
pub mod keymap;
pub mod theme;
pub mod ui;
pub mod widgets;
pub mod wizard;

use std::cell::Cell;
use std::future::Future;
use std::io::{Write, stdout};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    EventStream,
};
use crossterm::execute;
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::MissedTickBehavior;

use tether_core::config::Config;
use tether_core::engine::{EngineEvent, EngineHandle, NoticeLevel, ProxyStatus};
use tether_core::paths::Paths;
use tether_core::secret::Secret;

pub use action::{Action, Command, DetailTab, Effect};
pub use app::App;
pub use theme::{Theme, ThemeSet};

/// How the TUI starts.
#[derive(Debug, Clone, Default)]
pub struct TuiOptions {
    /// The theme by name: `--theme`, else `[tui] theme` in config.toml, else the default.
    pub theme: Option<String>,
    /// The config folder whose `themes/` holds the user's themes.
    pub config_dir: Option<PathBuf>,
    /// The folder of the audit log, read for the Calls views when another tether serves
    /// the proxy.
    pub log_dir: Option<PathBuf>,
    /// The file where the proxy another tether serves lists the sign-ins waiting there.
    pub consents_file: Option<PathBuf>,
}

impl TuiOptions {
    /// `--theme` (if given) wins over config.toml.
    pub fn new(config: &Config, paths: &Paths, theme_flag: Option<String>) -> Self {
        Self {
            theme: theme_flag.or_else(|| config.tui.theme.clone()),
            config_dir: Some(paths.config_dir.clone()),
            log_dir: Some(paths.log_dir()),
            consents_file: Some(tether_core::local_auth::shared::path_beside(
                &paths.vault_file(),
            )),
        }
    }
}

/// Runs the TUI until the user quits. The terminal is restored on return, on error and on
/// a panic in the TUI.
pub async fn run(handle: EngineHandle, options: TuiOptions) -> anyhow::Result<()> {
    let themes = ThemeSet::load(options.config_dir.as_deref());
    let initial = handle.state.borrow().clone();
    let mut app = App::new(initial, themes, options.theme.as_deref(), Utc::now());
    let mut screen = Screen::enter()?;
    let size = screen.terminal.size()?;
    app.update(Action::Resize {
        width: size.width,
        height: size.height,
    });
    let elsewhere = Elsewhere {
        log: LogCalls {
            dir: options.log_dir,
            rx: None,
        },
        consents: Consents {
            file: options.consents_file,
            rx: None,
        },
    };
    MarkedTui(Box::pin(event_loop(
        &mut app,
        &handle,
        &mut screen,
        elsewhere,
    )))
    .await
}

/// What is read from files when another tether serves the proxy: its calls, and the
/// sign-ins waiting in it.
struct Elsewhere {
    log: LogCalls,
    consents: Consents,
}

impl Elsewhere {
    fn start_if_served_elsewhere(&mut self, state: &tether_core::engine::EngineState) {
        self.log.start_if_served_elsewhere(state);
        self.consents.start_if_served_elsewhere(state);
    }
}

/// The sign-ins waiting in the proxy another tether serves, read from its file.
struct Consents {
    file: Option<PathBuf>,
    rx: Option<tokio::sync::mpsc::Receiver<Vec<consents::Asking>>>,
}

impl Consents {
    fn start_if_served_elsewhere(&mut self, state: &tether_core::engine::EngineState) {
        if let ProxyStatus::ServedElsewhere { addr, .. } = state.proxy
            && let Some(file) = self.file.take()
        {
            self.rx = Some(consents::spawn(file, addr));
        }
    }

    async fn next(&mut self) -> Option<Vec<consents::Asking>> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }
}

/// The calls read from the audit log, once another tether serves the proxy.
struct LogCalls {
    dir: Option<PathBuf>,
    rx: Option<tokio::sync::mpsc::Receiver<Vec<Arc<tether_core::calls::CallRecord>>>>,
}

impl LogCalls {
    /// Starts reading the log the first time the proxy is seen served elsewhere.
    fn start_if_served_elsewhere(&mut self, state: &tether_core::engine::EngineState) {
        if matches!(state.proxy, ProxyStatus::ServedElsewhere { .. })
            && let Some(dir) = self.dir.take()
        {
            self.rx = Some(audit::spawn(dir));
        }
    }

    async fn next(&mut self) -> Option<Vec<Arc<tether_core::calls::CallRecord>>> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }
}

async fn event_loop(
    app: &mut App,
    handle: &EngineHandle,
    screen: &mut Screen,
    mut elsewhere: Elsewhere,
) -> anyhow::Result<()> {
    let mut input = EventStream::new();
    let mut state = handle.state.clone();
    let mut events = handle.events.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut state_open, mut events_open) = (true, true);
    let mut dirty = true;
    loop {
        if dirty {
            screen.terminal.draw(|frame| ui::draw(frame, app))?;
            dirty = false;
        }
        elsewhere.start_if_served_elsewhere(app.state());
        let action = tokio::select! {
            event = input.next() => match event {
                Some(Ok(event)) => keymap::to_action(app.context(), &event),
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            changed = state.changed(), if state_open => match changed {
                Ok(()) => Some(Action::State(state.borrow_and_update().clone())),
                Err(_) => {
                    state_open = false;
                    Some(stopped_notice())
                }
            },
            event = events.recv(), if events_open => match event {
                Ok(event) => Some(Action::Engine(event)),
                Err(RecvError::Lagged(_)) => None,
                Err(RecvError::Closed) => {
                    events_open = false;
                    None
                }
            },
            batch = elsewhere.log.next() => match batch {
                Some(batch) => Some(Action::Calls(batch)),
                None => {
                    elsewhere.log.rx = None;
                    None
                }
            },
            waiting = elsewhere.consents.next() => match waiting {
                Some(waiting) => Some(Action::Consents(waiting)),
                None => {
                    elsewhere.consents.rx = None;
                    None
                }
            },
            _ = tick.tick() => Some(Action::Tick(Utc::now())),
        };
        if let Some(action) = action {
            dirty = true;
            if apply(app, handle, screen, action)? {
                return Ok(());
            }
        }
        // Keys already waiting (a paste, key repeat) are applied before the next redraw.
        loop {
            let event = tokio::select! {
                biased;
                event = input.next() => event,
                _ = std::future::ready(()) => break,
            };
            let Some(Ok(event)) = event else { break };
            if let Some(action) = keymap::to_action(app.context(), &event) {
                dirty = true;
                if apply(app, handle, screen, action)? {
                    return Ok(());
                }
            }
        }
    }
}

fn stopped_notice() -> Action {
    Action::Engine(EngineEvent::Notice {
        level: NoticeLevel::Error,
        text: "the engine stopped: tokens are no longer refreshed; quit and start tether again"
            .to_string(),
    })
}

/// Applies one action and carries out its effect; `true` means quit.
fn apply(
    app: &mut App,
    handle: &EngineHandle,
    screen: &mut Screen,
    action: Action,
) -> anyhow::Result<bool> {
    match app.update(action) {
        None => Ok(false),
        Some(Effect::Engine(commands)) => {
            commands.into_iter().for_each(|c| handle.send(c));
            Ok(false)
        }
        Some(Effect::Clipboard(text)) => {
            screen.copy(&text)?;
            Ok(false)
        }
        Some(Effect::Quit(commands)) => {
            commands.into_iter().for_each(|c| handle.send(c));
            Ok(true)
        }
    }
}

/// The OSC 52 sequence that asks the terminal to put `text` on the clipboard.
pub fn osc52(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    format!("\x1b]52;c;{encoded}\x07")
}

static TUI_ACTIVE: AtomicBool = AtomicBool::new(false);

thread_local! {
    static IN_TUI: Cell<bool> = const { Cell::new(false) };
}

/// The terminal in raw mode on the alternate screen, with mouse and paste reporting;
/// restored on drop.
struct Screen {
    terminal: DefaultTerminal,
}

impl Screen {
    fn enter() -> anyhow::Result<Self> {
        let original = Arc::new(std::panic::take_hook());
        let terminal = ratatui::try_init()?;
        // ratatui's hook restores the terminal on any panic; ours does so only for panics
        // in the TUI, and logs the others (a proxy task's panic must not wreck the screen).
        let _ratatui_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !TUI_ACTIVE.load(Ordering::SeqCst) {
                original(info);
            } else if IN_TUI.with(Cell::get) {
                restore_terminal();
                original(info);
            } else {
                tracing::error!("a background task panicked: {info}");
            }
        }));
        TUI_ACTIVE.store(true, Ordering::SeqCst);
        let screen = Self { terminal };
        execute!(stdout(), EnableMouseCapture, EnableBracketedPaste)?;
        Ok(screen)
    }

    fn copy(&mut self, text: &Secret) -> std::io::Result<()> {
        let backend = self.terminal.backend_mut();
        backend.write_all(osc52(text.expose()).as_bytes())?;
        backend.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        TUI_ACTIVE.store(false, Ordering::SeqCst);
        restore_terminal();
    }
}

fn restore_terminal() {
    let _ = execute!(stdout(), DisableMouseCapture, DisableBracketedPaste);
    ratatui::restore();
}

/// Marks the thread that polls the TUI, so the panic hook can tell a TUI panic from a
/// background task's.
struct MarkedTui<F>(Pin<Box<F>>);

impl<F: Future> Future for MarkedTui<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        IN_TUI.with(|flag| flag.set(true));
        let result = self.0.as_mut().poll(cx);
        IN_TUI.with(|flag| flag.set(false));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_theme_flag_wins_over_config_toml() {
        let config: Config = toml::from_str("[tui]\ntheme = \"tether-light\"").unwrap();
        let paths = Paths::under(PathBuf::from("/nonexistent"));
        assert_eq!(
            TuiOptions::new(&config, &paths, None).theme.as_deref(),
            Some("tether-light")
        );
        let flagged = TuiOptions::new(&config, &paths, Some("high-contrast".into()));
        assert_eq!(flagged.theme.as_deref(), Some("high-contrast"));
        assert!(
            toml::from_str::<Config>("[tui]\nthem = \"x\"").is_err(),
            "typos are refused"
        );
    }
}
