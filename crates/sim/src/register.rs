//! Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::profile::scaled;
use super::server::{Shared, now_ms};
use super::state::{AuthMethod, Client, Death, client_id, secret};

/// Registered metadata the server keeps and echoes without interpreting it.
const ECHOED: &[&str] = &[
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "contacts",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
    "application_type",
];

fn reg_error(error: &'static str, description: impl Into<String>) -> Response {
    let body = json!({ "error": error, "error_description": description.into() });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Loopback http (any port) or https; never a fragment (RFC 6749 §3.1.2).
fn redirect_uri_ok(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => matches!(
            url.host_str(),
            Some("127.0.0.1") | Some("localhost") | Some("[::1]")
        ),
        _ => false,
    }
}

fn string_list(doc: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, ()> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or(()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(()),
    }
}

pub(crate) async fn register(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(&body) else {
        return reg_error("invalid_client_metadata", "the body must be a JSON object");
    };
    let policy = &shared.cfg.policy;
    let redirect_uris = match string_list(&doc, "redirect_uris") {
        Ok(Some(uris)) if !uris.is_empty() => uris,
        _ => {
            return reg_error(
                "invalid_redirect_uri",
                "redirect_uris must be a non-empty array of strings",
            );
        }
    };
    if let Some(bad) = redirect_uris.iter().find(|u| !redirect_uri_ok(u)) {
        return reg_error(
            "invalid_redirect_uri",
            format!("redirect URI '{bad}' must be https or http on a loopback address"),
        );
    }
    let Ok(asked_grants) = string_list(&doc, "grant_types") else {
        return reg_error(
            "invalid_client_metadata",
            "grant_types must be an array of strings",
        );
    };
    let asked_grants = asked_grants.unwrap_or_else(|| vec!["authorization_code".into()]);
    let supported = shared.cfg.grant_types();
    let known =
        |g: &str| ["authorization_code", "refresh_token"].contains(&g) || supported.contains(&g);
    if let Some(bad) = asked_grants.iter().find(|g| !known(g)) {
        return reg_error(
            "invalid_client_metadata",
            format!("grant type '{bad}' is not supported"),
        );
    }
    if !asked_grants.iter().any(|g| g == "authorization_code") {
        return reg_error(
            "invalid_client_metadata",
            "grant_types must include authorization_code",
        );
    }
    // Like real servers, keep only what this server can honour and say so in the reply.
    let grant_types: Vec<String> = asked_grants
        .into_iter()
        .filter(|g| supported.contains(&g.as_str()))
        .collect();
    match string_list(&doc, "response_types") {
        Ok(None) => {}
        Ok(Some(rt)) if rt.iter().all(|r| r == "code") && !rt.is_empty() => {}
        _ => {
            return reg_error(
                "invalid_client_metadata",
                "response_types must be [\"code\"]",
            );
        }
    }
    let method = match doc.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => AuthMethod::SecretBasic,
        Some(Value::String(m)) => match AuthMethod::parse(m) {
            Some(m) => m,
            None => {
                return reg_error(
                    "invalid_client_metadata",
                    format!("token_endpoint_auth_method '{m}' is not supported"),
                );
            }
        },
        Some(_) => {
            return reg_error(
                "invalid_client_metadata",
                "token_endpoint_auth_method must be a string",
            );
        }
    };
    let method = if method == AuthMethod::None && policy.force_client_secret {
        AuthMethod::SecretPost
    } else {
        method
    };
    if let Some(scope) = doc.get("scope") {
        let ok = scope.as_str().is_some_and(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .all(|s| policy.scopes_supported.contains(&s))
        });
        if !ok {
            return reg_error(
                "invalid_client_metadata",
                "scope names an unsupported scope",
            );
        }
    }
    let extra: Map<String, Value> = doc
        .into_iter()
        .filter(|(k, _)| ECHOED.contains(&k.as_str()))
        .collect();
    let now = now_ms();
    let client = Client {
        id: client_id(policy.prefix),
        secret: (method != AuthMethod::None).then(|| secret(policy.prefix, "cs")),
        auth_method: method,
        redirect_uris,
        grant_types,
        extra,
        created_ms: now,
        expires_ms: policy
            .client_life
            .map(|secs| now + scaled(secs, shared.cfg.time_scale).as_millis() as u64),
        registration_token: secret(policy.prefix, "reg"),
        deleted: false,
        token_calls: 0,
        refresh_calls: 0,
    };
    let uri = shared.cfg.endpoint(&format!("register/{}", client.id));
    let doc = client.registration_json(&uri);
    {
        let mut store = shared.store();
        store.totals.registrations += 1;
        store.client_order.push(client.id.clone());
        store.clients.insert(client.id.clone(), client);
    }
    let mut resp = (StatusCode::CREATED, Json(doc)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A client named by its Client ID Metadata Document: fetched from `id` (https, or http on
/// a loopback host for tests), which must name itself and list its redirect URIs; the
/// client is public (no secret) and is kept like a registered one, so its tokens bind to
/// it. Counted apart from registrations.
pub(crate) async fn metadata_document_client(shared: &Shared, id: &str) -> Result<Client, String> {
    let url = url::Url::parse(id).map_err(|e| format!("the client_id is not a URL ({e})"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err("the client_id URL must be https".to_string());
    }
    let doc: Value = reqwest::Client::new()
        .get(url.clone())
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("cannot fetch it ({e})"))?
        .json()
        .await
        .map_err(|e| format!("not JSON ({e})"))?;
    if doc.get("client_id").and_then(Value::as_str) != Some(id) {
        return Err("its client_id is not its own URL".to_string());
    }
    let redirect_uris: Vec<String> = doc
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|uris| {
            uris.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err("it lists no redirect_uris".to_string());
    }
    let now = now_ms();
    let client = Client {
        id: id.to_string(),
        secret: None,
        auth_method: AuthMethod::None,
        redirect_uris,
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        extra: Map::new(),
        created_ms: now,
        expires_ms: None,
        registration_token: secret(shared.cfg.policy.prefix, "reg"),
        deleted: false,
        token_calls: 0,
        refresh_calls: 0,
    };
    let mut store = shared.store();
    store.totals.metadata_document_clients += 1;
    store.client_order.push(client.id.clone());
    store.clients.insert(client.id.clone(), client.clone());
    Ok(client)
}

fn unauthorized(description: &str) -> Response {
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": "invalid_token", "error_description": description })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// The client the registration access token manages, or the 401 RFC 7592 §2 asks for.
/// Unknown and deleted clients also get 401, so client ids cannot be probed.
fn managed(shared: &Shared, id: &str, headers: &HeaderMap) -> Result<Client, Box<Response>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let Some(token) = token else {
        return Err(Box::new(unauthorized(
            "a registration access token is required",
        )));
    };
    let store = shared.store();
    match store.clients.get(id) {
        Some(c) if !c.deleted && c.registration_token == token => Ok(c.clone()),
        _ => Err(Box::new(unauthorized(
            "the registration access token is not valid for this client",
        ))),
    }
}

pub(crate) async fn read(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match managed(&shared, &id, &headers) {
        Ok(client) => {
            let uri = shared.cfg.endpoint(&format!("register/{id}"));
            let mut resp = Json(client.registration_json(&uri)).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(resp) => *resp,
    }
}

/// Deletes the client and, as RFC 7592 §2.3 asks, every grant it holds.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = managed(&shared, &id, &headers) {
        return *resp;
    }
    let mut store = shared.store();
    if let Some(c) = store.clients.get_mut(&id) {
        c.deleted = true;
    }
    store.kill_client_tokens(&id, Death::ClientDeleted);
    StatusCode::NO_CONTENT.into_response()
}
