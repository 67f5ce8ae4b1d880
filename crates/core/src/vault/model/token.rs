//! A connection's tokens and the journal a refresh writes before its request goes out, so a
//! lost answer can be told apart from a refused one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenSet {
    /// The client this token was issued to; a refresh uses exactly this client.
    pub client_id: String,
    pub issuer: String,
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, with = "crate::vault::time::ts_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::vault::time::ts")]
    pub obtained_at: DateTime<Utc>,
    /// Grows by one per successful token change; never reused.
    pub generation: u64,
    /// Short hashes of refresh tokens tether has already spent, to tell reuse apart from
    /// rotation elsewhere when a server answers `invalid_grant`.
    #[serde(default)]
    pub used_refresh_hashes: Vec<[u8; 8]>,
    /// When the grant this token belongs to began: the sign-in it descends from, kept
    /// through every refresh. `None` in a vault written before it was kept (schema 4), or
    /// for a grant imported from another tool. Ends in a lifetime when the grant dies.
    #[serde(default, with = "crate::vault::time::ts_opt")]
    pub granted_at: Option<DateTime<Utc>>,
    /// When the refresh token itself expires, where the server said so
    /// (`refresh_token_expires_in`, as GitHub Apps do). (Schema 4.)
    #[serde(default, with = "crate::vault::time::ts_opt")]
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefreshJournal {
    /// The token generation the refresh started from.
    pub generation: u64,
    pub client_id: String,
    #[serde(with = "crate::vault::time::ts")]
    pub started_at: DateTime<Utc>,
    pub pid: u32,
    /// An earlier refresh from this same generation never reported back (the process
    /// died, or the connection broke after the request went out): the server may have
    /// rotated the token already, so an `invalid_grant` now means the response was lost.
    #[serde(default)]
    pub suspect: bool,
}
