//! Dynamic client registration (RFC 7591) with nothing stored: the client id is the
//! registration itself — the client's name and redirect URIs — with a MAC under a key
//! derived from the vault key. Any tether holding the vault recognises it, across
//! restarts; no one else can make one up.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use url::Url;

use super::OAuthError;
use crate::printable::printable;
use crate::vault::Key;

const PREFIX: &str = "tether-client.";
const MAX_NAME: usize = 80;
const MAX_REDIRECTS: usize = 8;
const MAX_REDIRECT_LEN: usize = 512;

/// A registered client, as its id says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalClient {
    #[serde(rename = "n")]
    pub name: String,
    #[serde(rename = "r")]
    pub redirect_uris: Vec<String>,
}

/// What a client sends to register (the fields tether uses; the rest is ignored).
#[derive(Debug, Default, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
}

/// Registers a client: checks what it asked for and returns its id.
pub fn register(
    key: &Key,
    request: &RegistrationRequest,
) -> Result<(String, LocalClient), OAuthError> {
    let invalid_redirect = |why: String| OAuthError::new("invalid_redirect_uri", why);
    if request.redirect_uris.is_empty() {
        return Err(invalid_redirect(
            "redirect_uris is required: tether sends the authorization code there".into(),
        ));
    }
    if request.redirect_uris.len() > MAX_REDIRECTS {
        return Err(invalid_redirect(format!(
            "at most {MAX_REDIRECTS} redirect_uris"
        )));
    }
    for uri in &request.redirect_uris {
        check_redirect(uri).map_err(invalid_redirect)?;
    }
    let unsupported = |list: &Option<Vec<String>>, allowed: &[&str]| {
        list.iter()
            .flatten()
            .find(|g| !allowed.contains(&g.as_str()))
            .cloned()
    };
    if let Some(g) = unsupported(
        &request.grant_types,
        &["authorization_code", "refresh_token"],
    ) {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            format!(
                "grant type '{}' is not offered: tether signs clients in with authorization_code and refresh_token",
                printable(&g, 60)
            ),
        ));
    }
    if let Some(r) = unsupported(&request.response_types, &["code"]) {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            format!(
                "response type '{}' is not offered: only 'code'",
                printable(&r, 60)
            ),
        ));
    }
    let name = request
        .client_name
        .as_deref()
        .map(|n| printable(n.trim(), MAX_NAME))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "an unnamed client".to_string());
    let client = LocalClient {
        name,
        redirect_uris: request.redirect_uris.clone(),
    };
    let payload = serde_json::to_vec(&client).expect("a client serializes");
    let id = format!(
        "{PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(mac(key, &payload))
    );
    Ok((id, client))
}

/// The client a client id names, if this vault's tether made it.
pub fn open(key: &Key, client_id: &str) -> Option<LocalClient> {
    let (payload, tag) = client_id.strip_prefix(PREFIX)?.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if !bool::from(mac(key, &payload).as_slice().ct_eq(&tag)) {
        return None;
    }
    serde_json::from_slice(&payload).ok()
}

fn mac(key: &Key, payload: &[u8]) -> [u8; 16] {
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC accepts any key length");
    mac.update(b"tether local client v1\0");
    mac.update(payload);
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&full[..16]);
    tag
}

/// Whether a redirect URI may be registered: a loopback `http` address (RFC 8252 §7.3),
/// an `https` address, or an app's own scheme (RFC 8252 §7.1, e.g. `cursor://…`); never a
/// fragment, nor a scheme a browser would run or read locally.
pub fn check_redirect(uri: &str) -> Result<(), String> {
    let shown = || printable(uri, 100);
    if uri.len() > MAX_REDIRECT_LEN {
        return Err(format!(
            "a redirect URI is longer than {MAX_REDIRECT_LEN} bytes"
        ));
    }
    let url = Url::parse(uri).map_err(|e| format!("'{}' is not a URL ({e})", shown()))?;
    if url.fragment().is_some() {
        return Err(format!("'{}' has a fragment (RFC 6749 §3.1.2)", shown()));
    }
    match url.scheme() {
        "http" if crate::vault::is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "'{}' is plain http to another host: use a loopback address or https",
            shown()
        )),
        "https" => Ok(()),
        "javascript" | "data" | "file" | "blob" | "about" | "vbscript" | "ftp" | "ws" | "wss" => {
            Err(format!("'{}' cannot receive a sign-in", shown()))
        }
        _ => Ok(()),
    }
}

/// Whether `uri` is one of the client's redirect URIs: exactly, or for a loopback one, on
/// any port (RFC 8252 §7.3: the port is chosen when the client listens).
pub fn redirect_allowed(client: &LocalClient, uri: &str) -> bool {
    if client.redirect_uris.iter().any(|r| r == uri) {
        return true;
    }
    let Ok(asked) = Url::parse(uri) else {
        return false;
    };
    if asked.scheme() != "http" || !crate::vault::is_loopback(&asked) {
        return false;
    }
    client.redirect_uris.iter().any(|r| {
        Url::parse(r).is_ok_and(|mut known| {
            crate::vault::is_loopback(&known)
                && known.scheme() == "http"
                && known.host() == asked.host()
                && known.set_port(asked.port()).is_ok()
                && known == asked
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::from_bytes([7; 32])
    }

    fn request(uris: &[&str]) -> RegistrationRequest {
        RegistrationRequest {
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            client_name: Some("Claude Code".into()),
            ..RegistrationRequest::default()
        }
    }

    #[test]
    fn a_client_id_is_the_registration_and_cannot_be_forged() {
        let (id, client) = register(&key(), &request(&["http://localhost:5555/callback"])).unwrap();
        assert_eq!(open(&key(), &id), Some(client.clone()));
        assert_eq!(client.name, "Claude Code");
        assert_eq!(open(&Key::from_bytes([8; 32]), &id), None, "another vault");
        let mut forged = id.clone();
        forged.replace_range(PREFIX.len()..PREFIX.len() + 2, "xx");
        assert_eq!(open(&key(), &forged), None);
        assert_eq!(open(&key(), "someone-else"), None);
    }

    #[test]
    fn redirect_uris_are_checked_at_registration() {
        for ok in [
            "http://127.0.0.1:33418/",
            "http://localhost:5555/callback",
            "http://[::1]/cb",
            "https://vscode.dev/redirect",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
        ] {
            assert!(check_redirect(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "http://localhost/cb#frag",
            "not a url",
        ] {
            assert!(check_redirect(bad).is_err(), "{bad}");
        }
        assert_eq!(
            register(&key(), &request(&[])).unwrap_err().code,
            "invalid_redirect_uri"
        );
        let mut implicit = request(&["http://localhost/cb"]);
        implicit.response_types = Some(vec!["token".into()]);
        assert_eq!(
            register(&key(), &implicit).unwrap_err().code,
            "invalid_client_metadata"
        );
    }

    #[test]
    fn loopback_redirects_match_on_any_port_others_exactly() {
        let (_, c) = register(
            &key(),
            &request(&["http://127.0.0.1/callback", "https://vscode.dev/redirect"]),
        )
        .unwrap();
        assert!(redirect_allowed(&c, "http://127.0.0.1:49152/callback"));
        assert!(redirect_allowed(&c, "https://vscode.dev/redirect"));
        assert!(!redirect_allowed(&c, "http://127.0.0.1:49152/other"));
        assert!(!redirect_allowed(&c, "http://localhost:49152/callback"));
        assert!(!redirect_allowed(&c, "https://vscode.dev:444/redirect"));
        assert!(!redirect_allowed(&c, "https://evil.example/redirect"));
    }
}
