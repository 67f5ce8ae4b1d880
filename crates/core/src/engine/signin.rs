//! A sign-in a local MCP client asked for (the proxy's `sign_in_<name>` tool): the same
//! login a front end starts, and what the user has to do, told as soon as it is known —
//! the caller answers its client at once instead of waiting for the login to end.

use std::time::Duration;

use tokio::sync::broadcast;

use super::{Engine, EngineEvent};
use crate::oauth::authorize::{LoginStep, StepOutcome};

/// What a started sign-in asks of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInStart {
    /// The authorization page opened in a browser on this machine.
    BrowserOpened,
    /// No browser could be opened here: the address to open in one.
    OpenAddress(String),
    /// The device grant: the page to open on any device and the code to type there.
    DeviceCode {
        verification_uri: String,
        user_code: String,
        expires_in: u64,
    },
    /// It ended before the user had anything to do: signed in already (a server that
    /// consents without asking), or failed, with the reason.
    Finished,
    Failed(String),
    /// Nothing was heard within the time allowed; the sign-in goes on.
    Pending,
}

impl Engine {
    /// Starts `name`'s login as the terminal UI does (`EngineCommand::Login`: the system
    /// browser, or the address shown when none opens) and returns what the user must do,
    /// waiting at most `patience` for discovery and registration to get there.
    pub async fn start_sign_in(&self, name: &str, patience: Duration) -> SignInStart {
        let events = self.inner.events.subscribe();
        self.start_login(name.to_string(), false);
        tokio::time::timeout(patience, first_user_step(events, name))
            .await
            .unwrap_or(SignInStart::Pending)
    }
}

impl Engine {
    /// Whether a login of `name` is in progress in this process.
    pub fn signing_in(&self, name: &str) -> bool {
        self.inner
            .logins
            .lock()
            .is_ok_and(|logins| logins.contains_key(name))
    }
}

async fn first_user_step(mut events: broadcast::Receiver<EngineEvent>, name: &str) -> SignInStart {
    let mut address: Option<String> = None;
    let mut opened = false;
    loop {
        let (step, outcome) = match events.recv().await {
            Ok(EngineEvent::LoginStep {
                connection,
                step,
                outcome,
            }) if connection == name => (step, outcome),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return SignInStart::Pending,
        };
        if let StepOutcome::Failed { detail, .. } = &outcome {
            return SignInStart::Failed(detail.clone());
        }
        match (step, outcome) {
            // Said first as the address is made; said again, with why, when no browser
            // could be started for it.
            (LoginStep::BrowserOpened { url }, StepOutcome::Done(note)) => {
                opened = note.is_empty();
                address = Some(url);
            }
            (LoginStep::WaitingForCallback, _) => {
                return match address {
                    Some(url) if !opened => SignInStart::OpenAddress(url),
                    _ => SignInStart::BrowserOpened,
                };
            }
            (
                LoginStep::DeviceCode {
                    verification_uri,
                    verification_uri_complete,
                    user_code,
                    expires_in,
                },
                _,
            ) => {
                return SignInStart::DeviceCode {
                    verification_uri: verification_uri_complete.unwrap_or(verification_uri),
                    user_code,
                    expires_in,
                };
            }
            (LoginStep::TokenReceived, StepOutcome::Done(_)) => return SignInStart::Finished,
            _ => {}
        }
    }
}
