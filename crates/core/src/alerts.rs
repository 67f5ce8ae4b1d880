//! What deserves a desktop notification: from the vault, a connection that needs a new
//! sign-in and a forecast that has come within a week; from the proxy, a client that keeps
//! sending a refused endpoint secret. Each alert carries a
//! key naming its cause, so the front end that sends them says each cause once, however
//! often the state is looked at. No alert holds a secret or a server's words: only the
//! connection's name and tether's own sentences.

use chrono::{DateTime, Utc};

use crate::diagnosis::explain;
use crate::forecast::{self, Observed};
use crate::vault::{Connection, ConnectionState, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The cause: connection, kind and what identifies this occurrence of it (the token
    /// generation that died, the grant a forecast is about).
    pub key: String,
    pub connection: String,
    /// The notification's title.
    pub summary: String,
    pub body: String,
}

/// Every alert the store calls for now.
pub fn due(store: &Store, now: DateTime<Utc>) -> Vec<Alert> {
    let observed = forecast::observed(store);
    store
        .connections()
        .iter()
        .filter_map(|c| alert(c, &observed, now))
        .collect()
}

fn alert(c: &Connection, observed: &Observed, now: DateTime<Utc>) -> Option<Alert> {
    let name = c.name.as_str();
    if let ConnectionState::NeedsReauth { diagnosis, .. } = &c.state {
        let e = explain(*diagnosis);
        let generation = c.token.as_ref().map_or(0, |t| t.generation);
        let fix = e
            .command_for(name)
            .unwrap_or_else(|| format!("tether login {name}"));
        return Some(Alert {
            key: format!("{name}:reauth:{generation}:{diagnosis}"),
            connection: name.to_string(),
            summary: format!("tether: '{name}' needs a new sign-in"),
            body: format!("{} ({diagnosis}). Run: {fix}", e.summary),
        });
    }
    let f = forecast::forecast(c, observed, now).filter(|f| f.is_near())?;
    // The grant (or, for a registration, the client) the forecast is about: a refresh
    // that rotates the token moves `until` but is not a new cause.
    let about = match f.cause {
        forecast::Cause::Registration => c.token.as_ref().map(|t| t.client_id.clone()),
        _ => c
            .token
            .as_ref()
            .and_then(|t| t.granted_at)
            .map(|at| at.timestamp().to_string()),
    }
    .unwrap_or_default();
    Some(Alert {
        key: format!("{name}:forecast:{}:{about}", f.cause.as_str()),
        connection: name.to_string(),
        summary: format!("tether: '{name}': {}", f.advice()),
        body: format!("{}. Run: tether login {name}", capitalised(&f.reason)),
    })
}

/// A local client keeps sending an endpoint secret the proxy refuses (`connection`: the
/// one named in its path, when it exists).
pub fn refused_secret(connection: Option<&str>, count: u64) -> Alert {
    let (about, fix) = match connection {
        Some(name) => (
            format!("a secret refused for '{name}'"),
            format!("tether url {name} --client LABEL"),
        ),
        None => (
            "an endpoint secret tether does not know".to_string(),
            "tether url NAME --client LABEL".to_string(),
        ),
    };
    Alert {
        key: format!("{}:refused-secret", connection.unwrap_or("")),
        connection: connection.unwrap_or_default().to_string(),
        summary: "tether: a client's endpoint is refused".to_string(),
        body: format!("A local client sent {about} {count} times. Give it a new URL: {fix}"),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
