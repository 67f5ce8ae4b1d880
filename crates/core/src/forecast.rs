//! When a connection's login will die, from what servers said about lifetimes: the client
//! registration's `client_secret_expires_at`, the refresh token's own expiry
//! (`refresh_token_expires_in`), and how long this issuer's grants lasted before. The
//! earliest known limit wins; `list`, `status`, the TUI, `doctor` and the desktop
//! notifications all show this one answer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::vault::{Auth, Connection, ConnectionState, Store};

/// Under this long to a limit, a forecast warns.
pub const WARN_WITHIN_SECS: i64 = 7 * 86_400;
/// Under this long, it is an error.
pub const ERROR_WITHIN_SECS: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A limit is known but more than a week away.
    Ok,
    Warn,
    Error,
}

impl Level {
    fn of(within_secs: i64) -> Self {
        match within_secs {
            s if s < ERROR_WITHIN_SECS => Self::Error,
            s if s < WARN_WITHIN_SECS => Self::Warn,
            _ => Self::Ok,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Which limit a forecast comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The dynamic registration the token was issued to expires (`client_secret_expires_at`).
    Registration,
    /// The refresh token expires (`refresh_token_expires_in`).
    RefreshToken,
    /// This issuer ended grants after about this long before.
    Observed,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::RefreshToken => "refresh_token",
            Self::Observed => "observed",
        }
    }
}

/// The earliest known limit of a connection's login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forecast {
    pub level: Level,
    /// Seconds until the limit (0 once it has passed).
    pub within_secs: i64,
    pub until: DateTime<Utc>,
    /// Why, in words: "the client registration expires".
    pub reason: String,
    pub cause: Cause,
}

impl Forecast {
    /// Whether it is near enough to show: warn or error.
    pub fn is_near(&self) -> bool {
        self.level >= Level::Warn
    }

    /// "sign in again within 3d".
    pub fn advice(&self) -> String {
        if self.within_secs <= 0 {
            "sign in again now".to_string()
        } else {
            format!("sign in again within {}", coarse(self.within_secs))
        }
    }

    /// "sign in again within 3d (the refresh token expires)".
    pub fn sentence(&self) -> String {
        format!("{} ({})", self.advice(), self.reason)
    }
}

/// How long grants lasted at each issuer, in seconds, from every connection's ended grants.
pub type Observed = BTreeMap<String, Vec<u64>>;

/// The grant lifetimes observed across the store, by issuer.
pub fn observed(store: &Store) -> Observed {
    observed_in(store.connections())
}

/// The grant lifetimes observed in `connections`, by issuer.
pub fn observed_in(connections: &[Connection]) -> Observed {
    let mut by_issuer = Observed::new();
    for ended in connections.iter().flat_map(|c| &c.ended_grants) {
        by_issuer
            .entry(ended.issuer.clone())
            .or_default()
            .push(ended.lasted_secs);
    }
    by_issuer
}

/// The connection's forecast: its earliest known limit, or `None` when none is known (or
/// there is no login to lose: not signed in, already needing a new sign-in, not OAuth).
pub fn forecast(c: &Connection, observed: &Observed, now: DateTime<Utc>) -> Option<Forecast> {
    if !matches!(c.auth, Auth::OAuth { .. })
        || matches!(
            c.state,
            ConnectionState::NeedsLogin
                | ConnectionState::NeedsReauth { .. }
                | ConnectionState::Disabled
        )
    {
        return None;
    }
    let token = c.token.as_ref()?;
    let registration = c
        .clients
        .iter()
        .rev()
        .find(|r| r.client_id == token.client_id)
        .and_then(|r| r.secret_expires_at)
        .map(|at| {
            (
                at,
                Cause::Registration,
                "the client registration expires".to_string(),
            )
        });
    let refresh = token
        .refresh_token
        .as_ref()
        .and(token.refresh_expires_at)
        .map(|at| {
            (
                at,
                Cause::RefreshToken,
                "the refresh token expires".to_string(),
            )
        });
    let seen = token.granted_at.and_then(|granted| {
        let typical = typical(observed.get(&token.issuer)?)?;
        let at = granted + chrono::Duration::seconds(typical as i64);
        // A grant that already outlived what was seen says the server keeps grants longer
        // (or ended those for another reason): nothing to forecast from them.
        (at > now).then(|| {
            (
                at,
                Cause::Observed,
                format!("this server ended grants after ~{} before", approx(typical)),
            )
        })
    });
    let (until, cause, reason) = [registration, refresh, seen]
        .into_iter()
        .flatten()
        .min_by_key(|(at, ..)| *at)?;
    let within_secs = (until - now).num_seconds().max(0);
    Some(Forecast {
        level: Level::of(within_secs),
        within_secs,
        until,
        reason,
        cause,
    })
}

/// The middle of the lifetimes seen (the shorter middle of an even count): one revoked
/// grant among several long ones does not set the forecast.
fn typical(lifetimes: &[u64]) -> Option<u64> {
    let mut sorted = lifetimes.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

/// The largest whole unit: `3d`, `5h`, `12m`, `40s` — rounded down, so "within" holds.
fn coarse(secs: i64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// "30 days", "5 hours", "1 day": a lifetime as a person says it, rounded to the nearest.
fn approx(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 86_400 => ((s + 43_200) / 86_400, "day"),
        s if s >= 3_600 => ((s + 1_800) / 3_600, "hour"),
        s if s >= 60 => ((s + 30) / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests;
