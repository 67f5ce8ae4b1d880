//! tether as the authorization server of its own `/c/<name>/mcp` endpoints (the rules are
//! in `tether_core::local_auth`): a client that gets a 401 there is told where the
//! endpoint's metadata is (RFC 9728), finds tether's authorization server (RFC 8414),
//! registers (RFC 7591), and sends the user's browser to a consent page; once the user
//! allows it (on the page, or in the terminal UI), it redeems its code with its PKCE
//! verifier for a labelled client secret of its own. A terminal UI in another process
//! sees the waiting requests in `consents.json` and answers them here with a proof made
//! with the vault's key (`tether_core::local_auth::shared`).
//!
//! Offered only on loopback (no `[proxy] public_names`): the consent must come from the
//! user at this machine, and the page checks that the browser's socket is theirs.

mod page;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;

use tether_core::local_auth::consent::{Ask, Next};
use tether_core::local_auth::peer::{self, Owner};
use tether_core::local_auth::{OAuthError, client, connection_of_resource, paths, shared};
use tether_core::printable::printable;

use super::Proxy;

/// Both ends of the connection a request came on, for the requests answered by the router
/// (see `server`): whose browser is asking.
#[derive(Debug, Clone, Copy)]
pub struct Ends {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

impl Ends {
    pub fn of(tcp: &tokio::net::TcpStream) -> Option<Self> {
        Some(Self {
            peer: tcp.peer_addr().ok()?,
            local: tcp.local_addr().ok()?,
        })
    }
}

/// The authorization server's routes, on a proxy that offers them.
pub fn routes(
    router: Router<Arc<Proxy>>,
    config: &tether_core::config::ProxyConfig,
) -> Router<Arc<Proxy>> {
    if !offered(config) {
        return router;
    }
    router
        .route(
            &format!("{}/c/{{name}}/mcp", paths::PROTECTED_RESOURCE),
            get(resource_metadata),
        )
        .route(paths::AUTHORIZATION_SERVER, get(server_metadata))
        .route(paths::OPENID_CONFIGURATION, get(server_metadata))
        .route(paths::REGISTER, post(register))
        .route(paths::AUTHORIZE, get(authorize))
        .route(
            &format!("{}/{{id}}", paths::CONSENT),
            get(consent_page).post(consent_answer),
        )
        .route(paths::TOKEN, post(token))
}

/// Only on loopback: a consent from another machine would not be the user's.
pub fn offered(config: &tether_core::config::ProxyConfig) -> bool {
    config.public_names.is_empty()
}

/// `http://<host>` as the client addressed this proxy: its Host, or an HTTP/2 request's
/// authority (both passed the guard).
fn base(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let host = match headers.get(header::HOST) {
        Some(h) => h.to_str().ok()?,
        None => uri.authority()?.as_str(),
    };
    Some(format!("http://{host}"))
}

/// The `WWW-Authenticate` challenge of a 401 from `/c/<name>/mcp`: where to find how to
/// sign in (RFC 9728 §5.1), and whether the token sent was refused (RFC 6750 §3.1).
pub fn challenge(
    headers: &HeaderMap,
    uri: &Uri,
    name: &str,
    presented: bool,
) -> Option<HeaderValue> {
    let base = base(headers, uri)?;
    let mut value = format!(
        "Bearer resource_metadata=\"{base}{}/c/{name}/mcp\"",
        paths::PROTECTED_RESOURCE
    );
    if presented {
        value.push_str(", error=\"invalid_token\"");
    }
    HeaderValue::from_str(&value).ok()
}

/// Tells a client refused on `/c/<name>/mcp` how to sign in to tether itself (RFC 9728
/// §5.1), where tether offers that.
pub fn challenge_refused(
    config: &tether_core::config::ProxyConfig,
    parts: &axum::http::request::Parts,
    name: &str,
    presented: Option<&str>,
    refused: &mut super::Answer,
) {
    if refused.status() == StatusCode::UNAUTHORIZED
        && offered(config)
        && let Some(value) = challenge(&parts.headers, &parts.uri, name, presented.is_some())
    {
        refused
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
}

fn valid_name(name: &str) -> bool {
    name.parse::<tether_core::vault::ConnectionName>().is_ok()
}

async fn resource_metadata(Path(name): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(base) = base(&headers, &uri).filter(|_| valid_name(&name)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    axum::Json(json!({
        "resource": format!("{base}/c/{name}/mcp"),
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "resource_name": format!("tether: {name}"),
    }))
    .into_response()
}

async fn server_metadata(uri: Uri, headers: HeaderMap) -> Response {
    let Some(base) = base(&headers, &uri) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}{}", paths::AUTHORIZE),
        "token_endpoint": format!("{base}{}", paths::TOKEN),
        "registration_endpoint": format!("{base}{}", paths::REGISTER),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, e: &OAuthError) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(
            json!({"error": e.code, "error_description": format!("tether: {}", e.description)}),
        ),
    )
        .into_response()
}

async fn register(State(proxy): State<Arc<Proxy>>, body: Bytes) -> Response {
    let request: client::RegistrationRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                &OAuthError::new(
                    "invalid_client_metadata",
                    format!("the registration is not the JSON of RFC 7591 §2 ({e})"),
                ),
            );
        }
    };
    match client::register(proxy.engine.vault().presence_key(), &request) {
        Ok((client_id, c)) => (
            StatusCode::CREATED,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(json!({
                "client_id": client_id,
                "client_id_issued_at": chrono::Utc::now().timestamp(),
                "client_name": c.name,
                "redirect_uris": c.redirect_uris,
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            })),
        )
            .into_response(),
        Err(e) => oauth_error(StatusCode::BAD_REQUEST, &e),
    }
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An error sent back to the client's redirect URI (RFC 6749 §4.1.2.1), once that URI
/// is known to be the client's.
fn to_client(redirect_uri: &str, state: Option<&str>, issuer: &str, e: &OAuthError) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return page::error(StatusCode::BAD_REQUEST, &e.description);
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", e.code);
        q.append_pair("error_description", &format!("tether: {}", e.description));
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        q.append_pair("iss", issuer);
    }
    Redirect::to(url.as_str()).into_response()
}

async fn authorize(
    State(proxy): State<Arc<Proxy>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(base) = base(&headers, &uri) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let q = pairs(query.unwrap_or_default().as_bytes());
    let key = proxy.engine.vault().presence_key();
    // Until the client and its redirect URI are known, errors are shown, not sent on
    // (RFC 6749 §4.1.2.1): an unchecked redirect would be an open redirector.
    let Some(c) = param(&q, "client_id").and_then(|id| client::open(key, id)) else {
        return page::error(
            StatusCode::BAD_REQUEST,
            "This app's registration is not one this tether made (another vault, or a mistyped address). Start the sign-in again from the app: it registers anew.",
        );
    };
    let redirect_uri = match param(&q, "redirect_uri") {
        Some(r) => r.to_string(),
        None if c.redirect_uris.len() == 1 => c.redirect_uris[0].clone(),
        None => {
            return page::error(
                StatusCode::BAD_REQUEST,
                "The app sent no redirect_uri and registered several: it must say which.",
            );
        }
    };
    if !client::redirect_allowed(&c, &redirect_uri) {
        return page::error(
            StatusCode::BAD_REQUEST,
            "The app asked to return to an address it did not register.",
        );
    }
    let state = param(&q, "state");
    let fail = |e: OAuthError| to_client(&redirect_uri, state, &base, &e);
    if param(&q, "response_type") != Some("code") {
        return fail(OAuthError::new(
            "unsupported_response_type",
            "only response_type=code is offered",
        ));
    }
    let challenge = match (
        param(&q, "code_challenge"),
        param(&q, "code_challenge_method"),
    ) {
        (Some(ch), Some("S256")) if (43..=128).contains(&ch.len()) => ch.to_string(),
        _ => {
            return fail(OAuthError::invalid_request(
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
    };
    let Some(resource) = param(&q, "resource") else {
        return fail(OAuthError::new(
            "invalid_target",
            "send resource (RFC 8707): the address of the endpoint, <tether>/c/<name>/mcp",
        ));
    };
    let store = proxy.engine.store();
    let Some(connection) =
        connection_of_resource(resource, &base).filter(|n| store.get(n).is_some())
    else {
        return fail(OAuthError::new(
            "invalid_target",
            format!(
                "'{}' is not an endpoint of this tether: run `tether list` for the connections",
                printable(resource, 120)
            ),
        ));
    };
    let ask = Ask {
        client_id: param(&q, "client_id").unwrap_or_default().to_string(),
        client_name: c.name,
        connection: connection.to_string(),
        redirect_uri,
        state: state.map(str::to_string),
        challenge,
        resource: resource.to_string(),
        issuer: base.clone(),
    };
    let (id, _) = proxy.engine.consents().ask(ask);
    proxy.engine.consents_changed();
    Redirect::to(&format!("{base}{}/{id}", paths::CONSENT)).into_response()
}

fn owner(ends: Option<&Ends>) -> Owner {
    ends.map_or(Owner::Unknown, |e| peer::owner(e.peer, e.local))
}

async fn consent_page(
    State(proxy): State<Arc<Proxy>>,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let owner = owner(request.extensions().get::<Ends>());
    if owner == Owner::Other {
        return page::error(
            StatusCode::FORBIDDEN,
            "This sign-in belongs to the user running tether; your browser runs as another user.",
        );
    }
    let consents = proxy.engine.consents();
    let Some((asked, csrf)) = consents.get(&id) else {
        return page::error(
            StatusCode::NOT_FOUND,
            "This sign-in request is unknown or has expired (10 minutes). Start the sign-in again from the app.",
        );
    };
    match consents.next(&id) {
        Some(Next::Redirect(url)) => Redirect::to(url.expose()).into_response(),
        Some(Next::Done) | None => page::done(),
        Some(Next::Wait) => page::consent(&asked, &csrf, owner == Owner::Us),
    }
}

async fn consent_answer(
    State(proxy): State<Arc<Proxy>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    let owner = owner(request.extensions().get::<Ends>());
    // The form is this page's own: same origin, and the token it was given.
    let same_origin = headers
        .get(header::ORIGIN)
        .is_none_or(|o| base(&headers, &uri).is_some_and(|b| o.as_bytes() == b.as_bytes()));
    let same_site = headers
        .get("sec-fetch-site")
        .is_none_or(|s| s.as_bytes() == b"same-origin");
    let Ok(body) = axum::body::to_bytes(request.into_body(), 4096).await else {
        return page::error(StatusCode::BAD_REQUEST, "The answer could not be read.");
    };
    let form = pairs(&body);
    let allow = match param(&form, "decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return page::error(StatusCode::BAD_REQUEST, "Answer Allow or Deny."),
    };
    let consents = proxy.engine.consents();
    let token_ok = param(&form, "csrf").is_some_and(|t| consents.form_token_matches(&id, t));
    if !token_ok && consents.get(&id).is_none() {
        return page::error(
            StatusCode::NOT_FOUND,
            "This sign-in request is unknown or has expired (10 minutes). Start the sign-in again from the app.",
        );
    }
    // A terminal UI of another tether process answers with a proof made with the vault's
    // key, which only the user's own processes hold; a page, from the user's own socket.
    let terminal = param(&form, shared::PROOF_FIELD)
        .map(|given| shared::proof_matches(proxy.engine.vault().presence_key(), &id, allow, given));
    let by_user = match terminal {
        Some(proved) => proved && owner != Owner::Other,
        None => owner == Owner::Us,
    };
    if !by_user {
        return page::error(
            StatusCode::FORBIDDEN,
            "Only the user running tether can answer, from their own browser or in tether's terminal UI.",
        );
    }
    if !(same_origin && same_site && token_ok) {
        return page::error(
            StatusCode::FORBIDDEN,
            "This answer did not come from tether's own page. Reload the page and answer there.",
        );
    }
    let decided = consents.decide(&id, allow);
    proxy.engine.consents_changed();
    if terminal.is_some() && !decided {
        return page::error(
            StatusCode::NOT_FOUND,
            "This sign-in request has been answered already.",
        );
    }
    if terminal.is_some() {
        // The browser waiting on the page takes the code back to the client: minting it
        // here would hand it to the terminal, and the page would only say "answered".
        return StatusCode::NO_CONTENT.into_response();
    }
    match consents.next(&id) {
        Some(Next::Redirect(url)) => Redirect::to(url.expose()).into_response(),
        _ => page::done(),
    }
}

async fn token(State(proxy): State<Arc<Proxy>>, body: Bytes) -> Response {
    let form = pairs(&body);
    let key = proxy.engine.vault().presence_key();
    let Some(client_id) = param(&form, "client_id").filter(|id| client::open(key, id).is_some())
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            &OAuthError::new(
                "invalid_client",
                "send the client_id tether gave this app at registration (register again if it was another tether's)",
            ),
        );
    };
    let granted = match param(&form, "grant_type") {
        Some("authorization_code") => {
            let (Some(code), Some(verifier)) =
                (param(&form, "code"), param(&form, "code_verifier"))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    &OAuthError::invalid_request("send code and code_verifier"),
                );
            };
            let redeemed = proxy.engine.consents().redeem(
                code,
                client_id,
                param(&form, "redirect_uri"),
                verifier,
            );
            let g = match redeemed {
                Ok(g) => g,
                Err(e) => return oauth_error(StatusCode::BAD_REQUEST, &e),
            };
            match tether_core::access::grant_signed_in(
                proxy.engine.vault(),
                &g.connection,
                &g.client_id,
                &g.client_name,
            )
            .await
            {
                Ok(signed_in) => {
                    proxy.engine.reload_if_changed().await;
                    signed_in
                }
                Err(e) => {
                    tracing::warn!("a client signed in but its access could not be saved: {e}");
                    return oauth_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &OAuthError::new(
                            "server_error",
                            format!("the vault could not be written ({e})"),
                        ),
                    );
                }
            }
        }
        Some("refresh_token") => {
            let Some(refresh) = param(&form, "refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    &OAuthError::invalid_request("send refresh_token"),
                );
            };
            proxy.engine.reload_if_changed().await;
            match tether_core::access::refreshed(&proxy.engine.store(), refresh, client_id) {
                Some(signed_in) => signed_in,
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        &OAuthError::invalid_grant(
                            "this app's access was revoked (or never given): sign in again, and allow it",
                        ),
                    );
                }
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                &OAuthError::new(
                    "unsupported_grant_type",
                    "tether offers authorization_code and refresh_token",
                ),
            );
        }
    };
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(json!({
            "access_token": granted.access.expose(),
            "token_type": "Bearer",
            "refresh_token": granted.refresh.expose(),
        })),
    )
        .into_response()
}
