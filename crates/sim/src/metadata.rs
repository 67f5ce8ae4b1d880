//! Discovery documents: RFC 9728 protected-resource metadata and RFC 8414 / OIDC
//! authorization-server metadata.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::server::{Config, Shared};

pub(crate) async fn protected_resource(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let cfg = &shared.cfg;
    Json(json!({
        "resource": cfg.resource,
        "authorization_servers": [cfg.issuer],
        "scopes_supported": cfg.policy.scopes_supported,
        "bearer_methods_supported": ["header"],
        "resource_name": format!("tether-sim ({})", cfg.profile),
    }))
}

pub(crate) async fn authorization_server(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(as_metadata(&shared.cfg))
}

fn as_metadata(cfg: &Config) -> Value {
    let mut doc = json!({
        "issuer": cfg.issuer,
        "authorization_endpoint": cfg.endpoint("authorize"),
        "token_endpoint": cfg.endpoint("token"),
        "registration_endpoint": cfg.endpoint("register"),
        "revocation_endpoint": cfg.endpoint("revoke"),
        "revocation_endpoint_auth_methods_supported":
            ["none", "client_secret_post", "client_secret_basic"],
        "scopes_supported": cfg.policy.scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": cfg.grant_types(),
        "token_endpoint_auth_methods_supported":
            ["none", "client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": cfg.cimd,
    });
    if cfg.device_flow {
        doc["device_authorization_endpoint"] = cfg.endpoint("device_authorization").into();
    }
    doc
}
