//! Downstream access: which local MCP client may use which connection. Each client gets
//! a labelled 256-bit secret, derived by HMAC from a per-connection key and a random nonce,
//! so `tether url` can show it again while the vault stores only its SHA-256. The proxy
//! compares hashes in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::Secret;
use crate::vault::{ClientAccess, Connection, Event, EventKind, Store, Vault, VaultError};

type HmacSha256 = hmac::Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("no connection named '{0}'")]
    NotFound(String),
    #[error(
        "client label '{0}' is not valid: use 1 to 32 characters from a-z, 0-9 and '-' (for example 'claude-code' or 'cursor')"
    )]
    BadLabel(String),
    #[error("'{name}' has no client labelled '{label}' (clients: {known})")]
    NoSuchClient {
        name: String,
        label: String,
        known: String,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl AccessError {
    /// Whether the user named something that does not exist or is not allowed (as
    /// opposed to the vault failing).
    pub fn is_user_input(&self) -> bool {
        !matches!(self, AccessError::Vault(_))
    }
}

pub fn check_label(label: &str) -> Result<(), AccessError> {
    let ok = (1..=32).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AccessError::BadLabel(label.to_string()))
    }
}

pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn derive(key: &Secret, name: &str, label: &str, nonce: &[u8]) -> Secret {
    derive_as(b"tether downstream secret v1\0", key, name, label, nonce)
}

/// A client's value of kind `domain` (its secret, its refresh token), derived from the
/// connection's access key.
fn derive_as(domain: &[u8], key: &Secret, name: &str, label: &str, nonce: &[u8]) -> Secret {
    // Any key length is valid for HMAC.
    let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(domain);
    mac.update(name.as_bytes());
    mac.update(b"\0");
    mac.update(label.as_bytes());
    mac.update(b"\0");
    mac.update(nonce);
    Secret::new(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The connection's key for its clients' secrets, made on first use.
fn access_key(c: &mut Connection) -> Secret {
    c.access_key
        .get_or_insert_with(|| Secret::new(random_b64(32)))
        .clone()
}

fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The secret for `label` on connection `name`: created (with an event) if the label is
/// new, else derived again. Returns the secret and whether it was created.
pub async fn endpoint_secret(
    vault: &Vault,
    name: &str,
    label: &str,
) -> Result<(Secret, bool), AccessError> {
    check_label(label)?;
    let (name, label) = (name.to_string(), label.to_string());
    vault
        .transact_async(move |store: &mut Store| {
            let c = store
                .get_mut(&name)
                .ok_or_else(|| AccessError::NotFound(name.clone()))?;
            let key = access_key(c);
            if let Some(existing) = c.access.iter().find(|a| a.label == label) {
                let made_for = existing.derived_for.as_deref().unwrap_or(&name);
                return Ok((derive(&key, made_for, &label, &existing.nonce), false));
            }
            let mut nonce = vec![0u8; 16];
            rand::fill(&mut nonce[..]);
            let secret = derive(&key, &name, &label, &nonce);
            let now = Utc::now();
            c.access.push(ClientAccess {
                label: label.clone(),
                secret_hash: hash(secret.expose()),
                created_at: now,
                last_seen: None,
                nonce,
                derived_for: None,
                signed_in: None,
            });
            c.record(Event::new(
                now,
                EventKind::ClientAdded,
                format!("client '{label}' given an endpoint"),
            ));
            Ok((secret, true))
        })
        .await
}

/// What a client that signed in to tether itself receives.
pub struct SignedIn {
    /// The label of its entry (shown by `tether clients`, revoked with `tether revoke`).
    pub label: String,
    /// Its secret, sent as the access token.
    pub access: Secret,
    /// Its refresh token: the same one every time, so a client that sends it twice (two
    /// windows of one app) is never stranded.
    pub refresh: Secret,
}

fn derive_refresh(key: &Secret, name: &str, label: &str, nonce: &[u8]) -> Secret {
    derive_as(b"tether local refresh token v1\0", key, name, label, nonce)
}

fn secrets_of(c: &Connection, a: &ClientAccess) -> Option<(Secret, Secret)> {
    let key = c.access_key.as_ref()?;
    let made_for = a.derived_for.as_deref().unwrap_or(c.name.as_str());
    Some((
        derive(key, made_for, &a.label, &a.nonce),
        derive_refresh(key, made_for, &a.label, &a.nonce),
    ))
}

/// Gives a client that signed in to tether (`client_id`, calling itself `client_name`) its
/// own entry on connection `name`, labelled after its name. It replaces an entry an
/// earlier sign-in of a client of that name left (its old secret stops working), never
/// one `tether url` made: that label gets a number instead.
pub async fn grant_signed_in(
    vault: &Vault,
    name: &str,
    client_id: &str,
    client_name: &str,
) -> Result<SignedIn, AccessError> {
    let base = crate::local_auth::label_from_name(client_name);
    let (name, client_id, client_name) = (
        name.to_string(),
        client_id.to_string(),
        client_name.to_string(),
    );
    vault
        .transact_async(move |store: &mut Store| {
            let c = store
                .get_mut(&name)
                .ok_or_else(|| AccessError::NotFound(name.clone()))?;
            let key = access_key(c);
            let replaces = |a: &ClientAccess, label: &str| {
                a.label == label
                    && a.signed_in
                        .as_ref()
                        .is_some_and(|g| g.client_name == client_name)
            };
            let label = (1..100)
                .map(|n| {
                    if n == 1 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    }
                })
                .find(|l| c.access.iter().all(|a| a.label != *l || replaces(a, l)))
                .ok_or_else(|| AccessError::BadLabel(base.clone()))?;
            c.access.retain(|a| a.label != label);
            let mut nonce = vec![0u8; 16];
            rand::fill(&mut nonce[..]);
            let access = derive(&key, &name, &label, &nonce);
            let refresh = derive_refresh(&key, &name, &label, &nonce);
            let now = Utc::now();
            c.access.push(ClientAccess {
                label: label.clone(),
                secret_hash: hash(access.expose()),
                created_at: now,
                last_seen: None,
                nonce,
                derived_for: None,
                signed_in: Some(crate::vault::LocalGrant {
                    client_id: client_id.clone(),
                    client_name: client_name.clone(),
                    refresh_hash: hash(refresh.expose()),
                }),
            });
            c.record(Event::new(
                now,
                EventKind::ClientAdded,
                format!(
                    "client '{label}' signed in to tether as '{}', with the user's consent",
                    crate::printable::printable(&client_name, 80)
                ),
            ));
            Ok(SignedIn {
                label,
                access,
                refresh,
            })
        })
        .await
}

/// The secret and refresh token again for a client presenting `refresh` (the same pair:
/// nothing rotates), if that refresh token is one tether gave `client_id` and its entry
/// has not been revoked.
pub fn refreshed(store: &Store, refresh: &str, client_id: &str) -> Option<SignedIn> {
    let h = hash(refresh);
    let mut found = None;
    for c in store.connections() {
        for a in &c.access {
            if let Some(g) = &a.signed_in
                && bool::from(g.refresh_hash.ct_eq(&h))
                && g.client_id == client_id
            {
                found = Some((c, a));
            }
        }
    }
    let (c, a) = found?;
    let (access, refresh) = secrets_of(c, a)?;
    Some(SignedIn {
        label: a.label.clone(),
        access,
        refresh,
    })
}

/// The endpoint a client reaches a connection at, with its secret in the path:
/// `<base>/s/<secret>/mcp`.
pub fn path_endpoint(base: &str, secret: &Secret) -> String {
    format!("{base}/s/{}/mcp", secret.expose())
}

/// The endpoint for clients that send their secret as `Authorization: Bearer`:
/// `<base>/c/<name>/mcp`.
pub fn bearer_endpoint(base: &str, name: &str) -> String {
    format!("{base}/c/{name}/mcp")
}

/// Cuts one client off; the others keep working.
pub async fn revoke(vault: &Vault, name: &str, label: &str) -> Result<(), AccessError> {
    let (name, label) = (name.to_string(), label.to_string());
    vault
        .transact_async(move |store: &mut Store| {
            let c = store
                .get_mut(&name)
                .ok_or_else(|| AccessError::NotFound(name.clone()))?;
            let before = c.access.len();
            c.access.retain(|a| a.label != label);
            if c.access.len() == before {
                let known: Vec<&str> = c.access.iter().map(|a| a.label.as_str()).collect();
                return Err(AccessError::NoSuchClient {
                    name: name.clone(),
                    label: label.clone(),
                    known: if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                });
            }
            c.record(Event::new(
                Utc::now(),
                EventKind::ClientRevoked,
                format!("client '{label}' cut off"),
            ));
            Ok(())
        })
        .await
}

/// Which client of `connection` (its position in `connection.access`) has the secret
/// `presented`, compared in constant time against every stored hash.
pub fn client_of(connection: &Connection, presented: &str) -> Option<usize> {
    client_of_hash(connection, &hash(presented))
}

fn client_of_hash(connection: &Connection, h: &[u8; 32]) -> Option<usize> {
    let mut found = None;
    for (i, a) in connection.access.iter().enumerate() {
        if bool::from(a.secret_hash.ct_eq(h)) {
            found = Some(i);
        }
    }
    found
}

/// The connection and client a path secret (`/s/<secret>/mcp`) belongs to, as positions
/// in `store.connections()` and that connection's `access`.
pub fn find_secret(store: &Store, presented: &str) -> Option<(usize, usize)> {
    let h = hash(presented);
    let mut found = None;
    for (i, c) in store.connections().iter().enumerate() {
        if let Some(client) = client_of_hash(c, &h) {
            found = Some((i, client));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_stable_and_separated() {
        let key = Secret::new("k");
        let a = derive(&key, "linear", "cursor", b"n1");
        assert_eq!(a, derive(&key, "linear", "cursor", b"n1"));
        assert_ne!(a, derive(&key, "linear", "cursor", b"n2"));
        assert_ne!(a, derive(&key, "linear", "claude", b"n1"));
        assert_ne!(a, derive(&key, "github", "cursor", b"n1"));
        assert_eq!(a.expose().len(), 43, "256 bits, base64url");
    }

    #[test]
    fn labels_follow_the_name_rule() {
        assert!(check_label("claude-code").is_ok());
        assert!(check_label("Cursor").is_err());
        assert!(check_label("").is_err());
    }
}
