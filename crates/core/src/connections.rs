//! Adding, renaming and removing connections: the one path the command line and the terminal UI
//! share, so both check the same things and say the same words.

use chrono::{DateTime, Utc};
use url::Url;

use crate::oauth::{DEFAULT_CALLBACK_PORT, callback_url};
use crate::secret::Secret;
use crate::vault::{
    ApiKeyHeader, Auth, ClientRegistration, Connection, ConnectionName, Event, EventKind,
    InvalidHeader, InvalidName, InvalidUpstream, Store, Vault, VaultError, is_loopback,
    parse_upstream,
};

/// How a new connection authenticates to its server.
#[derive(Debug, Clone)]
pub enum AddAuth {
    /// OAuth, with a client registered at the first sign-in.
    OAuth,
    /// OAuth with a client the user registered by hand at the authorization server.
    Preregistered {
        client_id: String,
        client_secret: Option<Secret>,
        /// Where that client redirects; `None`: the default loopback callback.
        redirect_uri: Option<String>,
    },
    /// An API key read from an environment variable, sent in a header (`NAME` or
    /// `NAME: PREFIX`; `None`: `Authorization: Bearer`).
    ApiKey {
        env_var: String,
        header: Option<String>,
    },
    /// No sign-in at all.
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Name(#[from] InvalidName),
    #[error(transparent)]
    Upstream(#[from] InvalidUpstream),
    #[error(transparent)]
    Header(#[from] InvalidHeader),
    #[error("--client-id is empty: give the client id the server issued")]
    EmptyClientId,
    #[error(
        "redirect URI '{0}' is not valid: use a loopback http URL with a port, such as {default}",
        default = callback_url(DEFAULT_CALLBACK_PORT)
    )]
    RedirectUri(String),
    #[error("environment variable '{var}' {problem}")]
    Env { var: String, problem: String },
    #[error(
        "a connection named '{0}' already exists: choose another name, or run `tether remove {0}` first"
    )]
    Exists(String),
    #[error("no connection named '{name}' ({known})")]
    NotFound { name: String, known: String },
    #[error("'{0}' is already the connection's name: nothing to rename")]
    SameName(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Lock(#[from] crate::oauth::refresh::LockError),
}

impl ConnectionError {
    /// Whether the user named something wrong (as opposed to the vault failing).
    pub fn is_user_input(&self) -> bool {
        !matches!(self, ConnectionError::Vault(_) | ConnectionError::Lock(_))
    }
}

/// The value of a secret the user exported, trimmed; `what` names it in the message.
pub fn env_secret(var: &str, what: &str) -> Result<Secret, ConnectionError> {
    let problem = match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => return Ok(Secret::new(v.trim())),
        Ok(_) => format!("is empty: export {var}=<your {what}> and run again"),
        Err(std::env::VarError::NotPresent) => {
            format!("is not set: export {var}=<your {what}> and run again")
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            format!("is not valid UTF-8: check the {what} you exported")
        }
    };
    Err(ConnectionError::Env {
        var: var.to_string(),
        problem,
    })
}

/// A new connection built from what the user typed, every part checked; nothing is
/// stored yet.
pub fn new_connection(
    name: &str,
    url: &str,
    auth: AddAuth,
    now: DateTime<Utc>,
) -> Result<Connection, ConnectionError> {
    let name: ConnectionName = name.parse()?;
    let upstream = parse_upstream(url)?;
    let mut clients = Vec::new();
    let auth = match auth {
        AddAuth::OAuth => oauth(),
        AddAuth::Preregistered {
            client_id,
            client_secret,
            redirect_uri,
        } => {
            clients.push(preregistered(client_id, client_secret, redirect_uri, now)?);
            oauth()
        }
        AddAuth::ApiKey { env_var, header } => Auth::ApiKey {
            header: match header {
                Some(spec) => spec.parse::<ApiKeyHeader>()?,
                None => ApiKeyHeader::default(),
            },
            value: env_secret(&env_var, "API key")?,
        },
        AddAuth::None => Auth::None,
    };
    let kind = auth.kind();
    let mut connection = Connection::new(name, upstream.clone(), auth, now);
    connection.clients = clients;
    connection.record(Event::new(
        now,
        EventKind::Added,
        format!("added ({kind}) for {upstream}"),
    ));
    Ok(connection)
}

fn oauth() -> Auth {
    Auth::OAuth {
        scopes: Vec::new(),
        discovery: None,
    }
}

/// A client registered by hand at the authorization server, bound to its issuer at the
/// first login.
fn preregistered(
    client_id: String,
    client_secret: Option<Secret>,
    redirect_uri: Option<String>,
    now: DateTime<Utc>,
) -> Result<ClientRegistration, ConnectionError> {
    let client_id = client_id.trim();
    if client_id.is_empty() {
        return Err(ConnectionError::EmptyClientId);
    }
    let redirect_uri = redirect_uri.unwrap_or_else(|| callback_url(DEFAULT_CALLBACK_PORT));
    let loopback = Url::parse(&redirect_uri)
        .ok()
        .filter(|u| u.scheme() == "http" && is_loopback(u) && u.port().is_some());
    if loopback.is_none() {
        return Err(ConnectionError::RedirectUri(redirect_uri));
    }
    Ok(ClientRegistration::preregistered(
        client_id.to_string(),
        client_secret,
        redirect_uri,
        now,
    ))
}

/// Checks and stores a new connection; returns it as stored.
pub async fn add(
    vault: &Vault,
    name: &str,
    url: &str,
    auth: AddAuth,
) -> Result<Connection, ConnectionError> {
    let connection = new_connection(name, url, auth, Utc::now())?;
    let stored = connection.clone();
    vault
        .transact_async(move |store: &mut Store| {
            let name = connection.name.as_str();
            if store.get(name).is_some() {
                return Err(ConnectionError::Exists(name.to_string()));
            }
            store.push(connection);
            Ok(())
        })
        .await?;
    Ok(stored)
}

/// Removes a connection and what tether kept beside the vault for it.
pub async fn remove(vault: &Vault, name: &str) -> Result<(), ConnectionError> {
    let n = name.to_string();
    vault
        .transact_async(move |store: &mut Store| {
            find(store, &n)?;
            store.remove(&n);
            Ok::<_, ConnectionError>(())
        })
        .await?;
    crate::oauth::watermark::forget(vault, name);
    Ok(())
}

/// Gives connection `from` the name `to`, keeping everything it holds: its grant, client
/// registrations, history and every client's endpoint secret (a secret is derived from the
/// name it was made under, which the rename records). Both names' refresh locks are held
/// meanwhile, so no tether process refreshes the connection halfway through, and the
/// refresh high-water mark moves with it. Clients that name the connection — the
/// `/c/<name>/mcp` endpoint, `tether stdio <name>` — must be pointed at the new name.
pub async fn rename(vault: &Vault, from: &str, to: &str) -> Result<Connection, ConnectionError> {
    let new = ConnectionName::try_from(to.to_string())?;
    if from == to {
        return Err(ConnectionError::SameName(to.to_string()));
    }
    let _from_lock = crate::oauth::refresh::lock_refresh(vault, from).await?;
    let _to_lock = crate::oauth::refresh::lock_refresh(vault, to).await?;
    let (old, renamed) = (from.to_string(), new.clone());
    let connection = vault
        .transact_async(move |store: &mut Store| {
            find(store, &old)?;
            if store.get(renamed.as_str()).is_some() {
                return Err(ConnectionError::Exists(renamed.as_str().to_string()));
            }
            let Some(c) = store.get_mut(&old) else {
                return Err(not_found(store, &old));
            };
            c.name = renamed.clone();
            for access in &mut c.access {
                access.derived_for.get_or_insert_with(|| old.clone());
            }
            c.record(Event::new(
                Utc::now(),
                EventKind::Renamed,
                format!("renamed from '{old}' to '{}'", renamed.as_str()),
            ));
            Ok(c.clone())
        })
        .await?;
    crate::oauth::watermark::carry(vault, from, to);
    Ok(connection)
}

/// The connection named `name`, or an error listing the ones there are.
pub fn find<'a>(store: &'a Store, name: &str) -> Result<&'a Connection, ConnectionError> {
    store.get(name).ok_or_else(|| not_found(store, name))
}

fn not_found(store: &Store, name: &str) -> ConnectionError {
    let known: Vec<&str> = store
        .connections()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let known = if known.is_empty() {
        "there are none yet; add one with `tether add NAME URL`".to_string()
    } else {
        format!("known: {}", known.join(", "))
    };
    ConnectionError::NotFound {
        name: name.to_string(),
        known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_is_checked_before_anything_is_stored() {
        let now = Utc::now();
        let bad = |name: &str, url: &str, auth| new_connection(name, url, auth, now).unwrap_err();
        assert!(matches!(
            bad("Bad Name", "https://m.example/mcp", AddAuth::OAuth),
            ConnectionError::Name(_)
        ));
        assert!(matches!(
            bad("ok", "not a url", AddAuth::OAuth),
            ConnectionError::Upstream(_)
        ));
        let hand = |redirect: &str| AddAuth::Preregistered {
            client_id: "abc".into(),
            client_secret: None,
            redirect_uri: Some(redirect.into()),
        };
        assert!(matches!(
            bad(
                "ok",
                "https://m.example/mcp",
                hand("https://evil.example/cb")
            ),
            ConnectionError::RedirectUri(_)
        ));
        let missing = AddAuth::ApiKey {
            env_var: "TETHER_TEST_SURELY_UNSET_VARIABLE".into(),
            header: None,
        };
        let e = bad("ok", "https://m.example/mcp", missing);
        assert!(e.to_string().contains("is not set: export"), "{e}");
        assert!(e.is_user_input());
    }

    #[test]
    fn a_hand_registered_client_gets_the_default_callback() {
        let auth = AddAuth::Preregistered {
            client_id: " abc ".into(),
            client_secret: None,
            redirect_uri: None,
        };
        let c = new_connection("ok", "https://m.example/mcp", auth, Utc::now()).unwrap();
        assert_eq!(c.clients.len(), 1);
        assert_eq!(c.clients[0].client_id, "abc");
        assert_eq!(
            c.clients[0].redirect_uri.as_deref(),
            Some("http://127.0.0.1:33418/callback")
        );
    }
}
