//! Clients asking to sign in to tether: which request the dialog shows (the oldest still
//! waiting, over whatever screen is open), and what Allow and Deny send. Nothing is ever
//! answered without the user's key.

use std::collections::BTreeSet;

use super::App;
use crate::action::{Command, Effect};
use crate::consents::Asking;
use tether_core::engine::{EngineCommand, NoticeLevel};
use tether_core::printable::printable;

/// The request the dialog shows, and where it stands among those waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub asking: Asking,
    /// 1 for the oldest.
    pub position: usize,
    pub of: usize,
}

impl App {
    /// Every request waiting for the user's answer, oldest first: this process's proxy's
    /// and another tether's, less the ones answered here and the expired.
    pub fn consents(&self) -> Vec<Asking> {
        let own = self.state.consents.iter().map(|request| Asking {
            request: request.clone(),
            asked_at: self
                .consents_seen
                .get(&request.id)
                .copied()
                .unwrap_or(self.now),
        });
        let mut all: Vec<Asking> = own
            .chain(self.consents_elsewhere.iter().cloned())
            .filter(|a| !self.answered.contains(&a.request.id) && a.alive(self.now))
            .collect();
        all.sort_by_key(|a| a.asked_at);
        all
    }

    /// The request the dialog shows now, if one waits.
    pub fn consent(&self) -> Option<Shown> {
        let all = self.consents();
        let of = all.len();
        all.into_iter().next().map(|asking| Shown {
            asking,
            position: 1,
            of,
        })
    }

    /// Keeps when each request of this process's proxy was first seen (its age on screen)
    /// and forgets the answers given here once their requests are gone.
    pub(super) fn see_consents(&mut self) {
        let own: BTreeSet<&str> = self.state.consents.iter().map(|r| r.id.as_str()).collect();
        let now = self.now;
        self.consents_seen.retain(|id, _| own.contains(id.as_str()));
        for id in own {
            self.consents_seen.entry(id.to_string()).or_insert(now);
        }
        let present: BTreeSet<String> = self
            .state
            .consents
            .iter()
            .map(|r| r.id.clone())
            .chain(self.consents_elsewhere.iter().map(|a| a.request.id.clone()))
            .collect();
        self.answered.retain(|id| present.contains(id));
    }

    /// Allow or Deny on the request shown; `None` when the key is not the dialog's.
    pub(super) fn consent_command(&mut self, command: Command) -> Option<Option<Effect>> {
        let allow = match command {
            Command::Allow => true,
            Command::Deny => false,
            _ => return None,
        };
        let Some(shown) = self.consent() else {
            return Some(None);
        };
        let request = shown.asking.request;
        self.answered.insert(request.id.clone());
        let who = printable(&request.client_name, 40);
        let name = printable(&request.connection, 40);
        let text = if allow {
            format!("allowed {who} to use '{name}': its sign-in finishes in the browser")
        } else {
            format!("denied {who} the use of '{name}'")
        };
        self.notify(NoticeLevel::Info, text);
        Some(Effect::one(EngineCommand::Consent {
            id: request.id,
            allow,
        }))
    }
}
