//! What one refresh needs — the refresh token, the token's own client, the token endpoint
//! and `resource` — read from the connection under the refresh lock, or the diagnosis that
//! forbids asking the server at all (no token, a client tether does not hold, a refresh
//! token known to be spent).

use url::Url;

use super::refresh_hash;
use crate::oauth::spent::known_spent;
use crate::oauth::token::ClientAuth;
use crate::oauth::watermark::Watermark;
use crate::secret::{Secret, mask};
use crate::vault::{Auth, Connection, DiagnosisCode, Evidence};

/// The inputs of one refresh, read under the refresh lock.
pub(super) struct Plan {
    pub generation: u64,
    pub refresh_token: Secret,
    pub auth: ClientAuth,
    pub token_endpoint: Url,
    pub resource: Option<String>,
    pub suspect: bool,
    /// The refresh token about to be sent was already spent once (an old copy).
    pub spent: bool,
}

/// What a refresh of this connection needs, or the diagnosis that forbids one.
pub(super) fn plan_for(
    c: &Connection,
    mark: Option<&Watermark>,
) -> Result<Plan, (DiagnosisCode, String, Vec<Evidence>)> {
    let plan = plan_unchecked(c, mark).map_err(|(code, detail)| (code, detail, Vec::new()))?;
    let hash = refresh_hash(&plan.refresh_token);
    // A token known to be spent is never sent (see `oauth::spent`).
    match c.token.as_ref().and_then(|t| known_spent(t, &hash, mark)) {
        Some(s) => Err((DiagnosisCode::InvalidGrantReused, s.detail, s.evidence)),
        None => Ok(plan),
    }
}

fn plan_unchecked(
    c: &Connection,
    mark: Option<&Watermark>,
) -> Result<Plan, (DiagnosisCode, String)> {
    let Auth::OAuth { discovery, .. } = &c.auth else {
        return Err((
            DiagnosisCode::InvalidGrantExpiredOrRevoked,
            "this connection does not use OAuth".to_string(),
        ));
    };
    let token = c.token.as_ref().ok_or((
        DiagnosisCode::InvalidGrantExpiredOrRevoked,
        "no token stored; log in first".to_string(),
    ))?;
    let refresh_token = token.refresh_token.clone().ok_or((
        DiagnosisCode::NoRefreshToken,
        "the token expired and the server issued no refresh token".to_string(),
    ))?;
    // Drift check before sending a doomed request: the token's own client must be held.
    let client = c
        .clients
        .iter()
        .find(|r| r.client_id == token.client_id)
        .ok_or((
            DiagnosisCode::ClientMismatch,
            format!(
                "the token was issued to client {}, which tether does not hold",
                mask(&token.client_id)
            ),
        ))?;
    let discovery = discovery.as_ref().ok_or((
        DiagnosisCode::DiscoveryFailed,
        "no authorization server metadata stored; log in again".to_string(),
    ))?;
    let token_endpoint = token_endpoint(&discovery.as_metadata).ok_or((
        DiagnosisCode::DiscoveryFailed,
        "the stored authorization server metadata has no token_endpoint".to_string(),
    ))?;
    let hash = refresh_hash(&refresh_token);
    let spent = token.used_refresh_hashes.contains(&hash)
        || mark.is_some_and(|m| m.shows_reuse(token.generation, &hash));
    Ok(Plan {
        spent,
        generation: token.generation,
        refresh_token,
        auth: ClientAuth::of(client),
        token_endpoint,
        resource: Some(discovery.resource.clone()),
        suspect: false,
    })
}

fn token_endpoint(as_metadata: &str) -> Option<Url> {
    let doc: serde_json::Value = serde_json::from_str(as_metadata).ok()?;
    Url::parse(doc.get("token_endpoint")?.as_str()?).ok()
}

pub(super) fn refresh_params(plan: &Plan) -> Vec<(&str, &str)> {
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", plan.refresh_token.expose()),
    ];
    if let Some(resource) = &plan.resource {
        params.push(("resource", resource));
    }
    params
}
