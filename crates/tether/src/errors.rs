//! How a failed command ends: one line on stderr and an exit code — 2 when the user's
//! input was wrong (the message names the value and the fix), 1 for everything else.
//! Each error type says for itself whether it is about the user's input
//! ([`UserInput`]); the dispatcher (`commands`) asks every type a command can fail with.

use std::fmt;

/// Whether an error is about the user's input (exit 2) rather than the world (exit 1).
pub trait UserInput {
    fn is_user_input(&self) -> bool;
}

/// Input the user can fix, found by the command line itself.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(message.into()))
}

impl UserInput for tether_core::access::AccessError {
    fn is_user_input(&self) -> bool {
        self.is_user_input()
    }
}

impl UserInput for tether_core::connections::ConnectionError {
    fn is_user_input(&self) -> bool {
        self.is_user_input()
    }
}

impl UserInput for tether_sim::SimError {
    fn is_user_input(&self) -> bool {
        self.is_user_input()
    }
}
