//! Request plumbing shared by the OAuth endpoints: strict form and query parsing, the
//! RFC 6749 §5.2 error response, and client authentication at the token endpoint.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::server::Shared;
use super::state::{AuthMethod, Client};

/// `application/x-www-form-urlencoded` pairs, in order, duplicates kept so they can be
/// refused (RFC 6749 §3.1: parameters must not repeat).
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &str) -> Self {
        Params(
            url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// One parameter; empty values count as absent, as RFC 6749 §3.1 says.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter '{name}' must not be repeated"
            )));
        }
        Ok(first.map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()))
    }

    /// Every value of a parameter that may repeat (RFC 8707 `resource`).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter '{name}' is required")))
    }
}

/// An OAuth error answered as JSON (RFC 6749 §5.2).
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// The client authenticated with HTTP Basic: a 401 must carry a Basic challenge.
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new("invalid_client", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.basic_challenge && self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tether-sim\""),
            );
        }
        resp
    }
}

/// The client credentials a request carries, before they are checked.
#[derive(Debug, Default)]
pub(crate) struct Presented {
    pub client_id: Option<String>,
    pub secret: Option<String>,
    pub via_basic: bool,
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Reads HTTP Basic credentials (RFC 6749 §2.3.1: each part form-encoded, then
/// base64) and the body's `client_id` / `client_secret`.
pub(crate) fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let body_id = params.get("client_id")?.map(str::to_string);
    let body_secret = params.get("client_secret")?.map(str::to_string);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(auth) = auth else {
        return Ok(Presented {
            client_id: body_id,
            secret: body_secret,
            via_basic: false,
        });
    };
    let mut bad = OAuthError::invalid_client("malformed HTTP Basic credentials");
    bad.basic_challenge = true;
    let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(format!(
            "unsupported Authorization scheme '{scheme}' at the token endpoint"
        )));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| bad.clone())?;
    let (id, secret) = decoded.split_once(':').ok_or(bad)?;
    let (id, secret) = (form_decode(id), form_decode(secret));
    if body_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not HTTP Basic and client_secret together",
        ));
    }
    if body_id.as_deref().is_some_and(|b| b != id) {
        let mut e = OAuthError::invalid_client("client_id in the body differs from HTTP Basic");
        e.basic_challenge = true;
        return Err(e);
    }
    Ok(Presented {
        client_id: Some(id),
        secret: Some(secret),
        via_basic: true,
    })
}

/// Checks presented credentials against the client's registered method. Counts every
/// `invalid_client` answer.
pub(crate) fn authenticate(shared: &Shared, p: &Presented, now: u64) -> Result<Client, OAuthError> {
    let result = check_client(shared, p, now);
    if let Err(e) = &result
        && e.error == "invalid_client"
    {
        shared.count(|t| t.invalid_client_responses += 1);
    }
    result.map_err(|mut e| {
        e.basic_challenge = p.via_basic;
        e
    })
}

fn check_client(shared: &Shared, p: &Presented, now: u64) -> Result<Client, OAuthError> {
    let Some(id) = &p.client_id else {
        return Err(OAuthError::invalid_client(
            "no client authentication: send client_id (and the secret, if one was issued)",
        ));
    };
    let store = shared.store();
    let Some(client) = store.clients.get(id) else {
        return Err(OAuthError::invalid_client("unknown client_id"));
    };
    if client.deleted {
        return Err(OAuthError::invalid_client(
            "the client registration was deleted",
        ));
    }
    if client.expired(now) {
        return Err(OAuthError::invalid_client(
            "the client registration has expired; register a new client",
        ));
    }
    let method = client.auth_method;
    let wrong_method = || {
        OAuthError::invalid_client(format!(
            "this client is registered with token_endpoint_auth_method={}",
            method.as_str()
        ))
    };
    match method {
        AuthMethod::None if p.secret.is_some() || p.via_basic => return Err(wrong_method()),
        AuthMethod::SecretPost if p.via_basic || p.secret.is_none() => return Err(wrong_method()),
        AuthMethod::SecretBasic if !p.via_basic => return Err(wrong_method()),
        _ => {}
    }
    if method != AuthMethod::None && client.secret.as_deref() != p.secret.as_deref() {
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    Ok(client.clone())
}
