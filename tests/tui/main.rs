//! The terminal UI: behaviour, end to end in tmux, and snapshots of every view.

#[path = "../support/mod.rs"]
mod support;

mod tui_behaviour;
mod tui_calls;
mod tui_consent;
mod tui_e2e;
mod tui_e2e_calls;
mod tui_e2e_consent;
mod tui_snapshots;
