//! Token endpoint requests (RFC 6749 §4.1.3, §6) and their answers: a decoded token
//! response, or an error sorted into what the refresh engine must know — is it definitive
//! (the grant or client is dead), transient (retry later), and might the server have
//! processed the request even though no answer arrived?

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use crate::secret::Secret;
use crate::vault::ClientRegistration;

/// The device authorization grant's `grant_type` (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Token responses and error bodies larger than this are refused unread.
const MAX_BODY: usize = 64 * 1024;

/// How a client proves itself at the token endpoint.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// `none`, `client_secret_post` or `client_secret_basic` (the RFC 7591 default when
    /// a secret exists and the server named no method).
    pub method: String,
}

impl ClientAuth {
    /// How a stored client authenticates: its secret and registered method.
    pub fn of(client: &ClientRegistration) -> Self {
        Self::new(
            &client.client_id,
            client.client_secret.as_ref(),
            client.token_endpoint_auth_method.as_deref(),
        )
    }

    pub fn new(client_id: &str, client_secret: Option<&Secret>, method: Option<&str>) -> Self {
        let method = match (method, client_secret) {
            (Some(m), _) => m.to_string(),
            (None, Some(_)) => "client_secret_basic".to_string(),
            (None, None) => "none".to_string(),
        };
        Self {
            client_id: client_id.to_string(),
            client_secret: client_secret.cloned(),
            method,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<Secret>,
    pub scope: Option<String>,
    /// How long the refresh token lives, where the server says (GitHub Apps'
    /// `refresh_token_expires_in`).
    pub refresh_token_expires_in: Option<u64>,
}

impl TokenResponse {
    /// When the access token expires, counted from `now`.
    pub fn expires_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expires_in.map(|s| after(now, s))
    }

    /// When the refresh token expires, where the server said so.
    pub fn refresh_expires_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.refresh_token
            .as_ref()
            .and(self.refresh_token_expires_in)
            .map(|s| after(now, s))
    }
}

/// `now` plus a server's count of seconds, capped so that no answer can overflow a date.
fn after(now: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    now + chrono::Duration::seconds(secs.min(i64::MAX as u64 / 2_000) as i64)
}

#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: Secret,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    refresh_token_expires_in: Option<u64>,
}

/// `expires_in` arrives as a number, a float, or (from some servers) a string.
fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// An RFC 6749 §5.2 error body.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// How a token request went unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// The connection was never made: the request never left.
    NotConnected,
    /// The connection was reset before any byte of an answer.
    Reset,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The server answered with an OAuth error (`invalid_grant`, `invalid_client`, …).
    #[error("{url} answered {status} {}{}", body.error, body.error_description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        url: String,
        status: u16,
        body: OAuthErrorBody,
    },
    /// An HTTP failure without an OAuth error body (5xx, 429, a proxy's error page).
    #[error("{url} answered HTTP {status}")]
    Http {
        url: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No usable answer. `maybe_processed`: the request may have reached the server
    /// (timeout, connection cut mid-response), so a rotation may have happened.
    /// `reset_unanswered`: the connection was reset before any byte of an answer.
    #[error("no answer from {url}: {reason}")]
    Network {
        url: String,
        reason: String,
        maybe_processed: bool,
        reset_unanswered: bool,
    },
    /// A 2xx answer that is not a token response.
    #[error("{url} sent a token response tether cannot read: {reason}")]
    BadResponse { url: String, reason: String },
    /// A redirect: not followed, since the request carries a grant and the client's
    /// proof. `target` is already fit to show.
    #[error("{url} {}", crate::http::refused(.target, "grants or client credentials"))]
    Redirect { url: String, target: String },
}

impl TokenError {
    /// The server's `invalid_grant`: the refresh token (or code) is dead.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, TokenError::OAuth { body, .. } if body.error == "invalid_grant")
    }

    /// Worth retrying later without the user: network trouble, 5xx, 429.
    pub fn is_transient(&self) -> bool {
        match self {
            TokenError::OAuth { body, status, .. } => {
                // `temporarily_unavailable` and `server_error` are OAuth's own 5xx.
                matches!(
                    body.error.as_str(),
                    "temporarily_unavailable" | "server_error" | "slow_down"
                ) || *status >= 500
            }
            TokenError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            TokenError::Network { .. } => true,
            // The server may have rotated and sent a body we could not read.
            TokenError::BadResponse { .. } => true,
            // Nothing was sent anywhere else and the grant is not known to be dead: the
            // refresh token is kept, the connection is degraded with the target named,
            // and a redirect for maintenance heals by itself.
            TokenError::Redirect { .. } => true,
        }
    }

    /// Whether the server may have acted on the request although no usable answer came.
    pub fn maybe_processed(&self) -> bool {
        match self {
            TokenError::Network {
                maybe_processed, ..
            } => *maybe_processed,
            TokenError::BadResponse { .. } => true,
            _ => false,
        }
    }

    /// The endpoint that was asked.
    pub fn url(&self) -> &str {
        match self {
            TokenError::OAuth { url, .. }
            | TokenError::Http { url, .. }
            | TokenError::Network { url, .. }
            | TokenError::BadResponse { url, .. }
            | TokenError::Redirect { url, .. } => url,
        }
    }

    /// No answer at all: the connection could not be made, or was reset before any byte
    /// of an answer arrived.
    pub fn unanswered(&self) -> Option<Unanswered> {
        match self {
            TokenError::Network {
                maybe_processed: false,
                ..
            } => Some(Unanswered::NotConnected),
            TokenError::Network {
                reset_unanswered: true,
                ..
            } => Some(Unanswered::Reset),
            _ => None,
        }
    }

    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            TokenError::OAuth { body, .. } => Some(&body.error),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TokenError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            TokenError::OAuth { status, .. } | TokenError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// POSTs a token request: `params` plus the client's authentication.
pub async fn request(
    http: &reqwest::Client,
    token_endpoint: &Url,
    auth: &ClientAuth,
    params: &[(&str, &str)],
) -> Result<TokenResponse, TokenError> {
    let body = post(http, token_endpoint, auth, params).await?;
    decode_success(&body).map_err(|reason| TokenError::BadResponse {
        url: token_endpoint.to_string(),
        reason,
    })
}

/// POSTs `params` plus the client's authentication to an endpoint that answers like the
/// token endpoint (the token endpoint itself, RFC 8628's device authorization endpoint):
/// the body of a 2xx answer, else the error sorted.
pub async fn post(
    http: &reqwest::Client,
    endpoint: &Url,
    auth: &ClientAuth,
    params: &[(&str, &str)],
) -> Result<Vec<u8>, TokenError> {
    let url = endpoint.to_string();
    let mut form: Vec<(&str, &str)> = params.to_vec();
    let mut req = http
        .post(endpoint.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    match (auth.method.as_str(), &auth.client_secret) {
        ("client_secret_basic", Some(secret)) => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            let user = form_encode(&auth.client_id);
            let pass = form_encode(secret.expose());
            let basic = STANDARD.encode(format!("{user}:{pass}"));
            req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
        }
        ("client_secret_post", Some(secret)) => {
            form.push(("client_id", &auth.client_id));
            form.push(("client_secret", secret.expose()));
        }
        _ => form.push(("client_id", &auth.client_id)),
    }
    let res = req
        .form(&form)
        .send()
        .await
        .map_err(|e| network(&url, &e))?;
    if let Some(target) = crate::http::redirect_target(&res) {
        return Err(TokenError::Redirect { url, target });
    }
    let status = res.status();
    let retry_after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = read_capped(res).await.map_err(|e| match e {
        ReadError::Network(e) => TokenError::Network {
            url: url.clone(),
            reason: e,
            maybe_processed: true,
            // The answer had begun: its head arrived.
            reset_unanswered: false,
        },
        ReadError::TooLarge => TokenError::BadResponse {
            url: url.clone(),
            reason: format!("the body exceeds {MAX_BODY} bytes"),
        },
    })?;
    if status.is_success() {
        return Ok(body);
    }
    match serde_json::from_slice::<OAuthErrorBody>(&body) {
        Ok(body) if !body.error.is_empty() => Err(TokenError::OAuth {
            url,
            status: status.as_u16(),
            body: OAuthErrorBody {
                error: printable(&body.error, 64),
                error_description: body.error_description.map(|d| printable(&d, 300)),
            },
        }),
        _ => Err(TokenError::Http {
            url,
            status: status.as_u16(),
            retry_after,
        }),
    }
}

/// Decodes a successful token response. Never panics, whatever the bytes.
pub fn decode_success(body: &[u8]) -> Result<TokenResponse, String> {
    let raw: RawTokenResponse =
        serde_json::from_slice(body).map_err(|e| format!("not a token response ({e})"))?;
    if raw.access_token.is_empty() {
        return Err("the access_token is empty".to_string());
    }
    let token_type = raw.token_type.unwrap_or_else(|| "Bearer".to_string());
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "token_type '{}' is not Bearer",
            printable(&token_type, 32)
        ));
    }
    Ok(TokenResponse {
        access_token: raw.access_token,
        token_type,
        expires_in: raw.expires_in,
        refresh_token: raw.refresh_token.filter(|t| !t.is_empty()),
        scope: raw.scope,
        refresh_token_expires_in: raw.refresh_token_expires_in,
    })
}

enum ReadError {
    Network(String),
    TooLarge,
}

async fn read_capped(mut res: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| ReadError::Network(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn network(url: &str, e: &reqwest::Error) -> TokenError {
    TokenError::Network {
        url: url.to_string(),
        reason: describe(e),
        // A refused connection never carried the request; anything later might have.
        maybe_processed: !e.is_connect(),
        // `send` failed, so no response head was read; a reset (not a timeout, not an
        // orderly close) is what a server dropping a connection it never served sends.
        reset_unanswered: !e.is_timeout() && caused_by_reset(e),
    }
}

fn caused_by_reset(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// A reqwest error with its causes, on one line and without the URL's query.
pub fn describe(e: &reqwest::Error) -> String {
    let mut parts = vec![if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "connection failed".to_string()
    }];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

/// Server-provided text, shortened and with its control characters escaped.
use crate::printable::printable;

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses_decode_leniently_but_safely() {
        let r =
            decode_success(br#"{"access_token":"a","token_type":"bearer","expires_in":"3600"}"#)
                .unwrap();
        assert_eq!(r.expires_in, Some(3600));
        assert!(r.refresh_token.is_none());
        let r = decode_success(br#"{"access_token":"a","expires_in":59.9,"refresh_token":""}"#)
            .unwrap();
        assert_eq!(r.expires_in, Some(59));
        assert!(
            r.refresh_token.is_none(),
            "an empty refresh token is no refresh token"
        );
        assert!(decode_success(br#"{"access_token":"a","token_type":"mac"}"#).is_err());
        assert!(decode_success(br#"{"access_token":""}"#).is_err());
        assert!(decode_success(b"<html>").is_err());
    }

    #[test]
    fn a_refresh_tokens_own_lifetime_is_read() {
        let now = Utc::now();
        let r = decode_success(
            br#"{"access_token":"a","expires_in":28800,"refresh_token":"r","refresh_token_expires_in":15897600}"#,
        )
        .unwrap();
        assert_eq!(
            r.refresh_expires_at(now),
            Some(now + chrono::Duration::seconds(15_897_600))
        );
        let r = decode_success(br#"{"access_token":"a","refresh_token_expires_in":60}"#).unwrap();
        assert_eq!(
            r.refresh_expires_at(now),
            None,
            "no refresh token, no expiry for one"
        );
    }

    proptest::proptest! {
        /// Whatever a server sends, decoding answers Ok or Err — never a panic.
        #[test]
        fn decoding_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_success(&body);
            let _ = serde_json::from_slice::<OAuthErrorBody>(&body);
        }

        #[test]
        fn json_shaped_token_responses_never_panic(
            token in ".{0,40}",
            expires in proptest::prelude::any::<f64>(),
            kind in ".{0,12}",
        ) {
            let body = serde_json::json!({
                "access_token": token, "token_type": kind, "expires_in": expires,
                "refresh_token": token, "scope": kind,
            });
            let _ = decode_success(body.to_string().as_bytes());
        }
    }

    #[test]
    fn error_text_is_made_printable() {
        assert_eq!(printable("bad\u{1b}[31m grant", 100), "bad\\x1b[31m grant");
        assert_eq!(printable("abcdef", 3), "abc…");
    }
}
