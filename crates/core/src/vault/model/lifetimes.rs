//! How long grants lasted: the time from a sign-in to the `invalid_grant` that ended its
//! grant, kept per connection with the issuer it was at, so a forecast can say "this server
//! ended grants after ~30 days before".

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Connection;

/// Ended grants kept per connection, newest last.
pub const ENDED_GRANTS_CAP: usize = 8;

/// A grant shorter than this ended for some other reason (a revocation, a test), not
/// because the server keeps grants only so long: it is not kept.
const SHORTEST_KEPT_SECS: i64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndedGrant {
    pub issuer: String,
    /// From the sign-in to the refusal, in seconds.
    pub lasted_secs: u64,
    #[serde(with = "crate::vault::time::ts")]
    pub ended_at: DateTime<Utc>,
}

impl Connection {
    /// The server ended this connection's grant (`invalid_grant`, expired or revoked) at
    /// `now`: keeps how long it had lasted, when its start is known.
    pub fn note_grant_ended(&mut self, now: DateTime<Utc>) {
        let Some(token) = &self.token else { return };
        let Some(granted_at) = token.granted_at else {
            return;
        };
        let lasted = (now - granted_at).num_seconds();
        if lasted < SHORTEST_KEPT_SECS {
            return;
        }
        let ended = EndedGrant {
            issuer: token.issuer.clone(),
            lasted_secs: lasted as u64,
            ended_at: now,
        };
        // One grant ends once, however many refreshes are refused afterwards: an end
        // recorded since this grant began was this grant's.
        if self
            .ended_grants
            .last()
            .is_some_and(|last| last.ended_at >= granted_at)
        {
            return;
        }
        self.ended_grants.push(ended);
        if self.ended_grants.len() > ENDED_GRANTS_CAP {
            let excess = self.ended_grants.len() - ENDED_GRANTS_CAP;
            self.ended_grants.drain(..excess);
        }
    }
}
