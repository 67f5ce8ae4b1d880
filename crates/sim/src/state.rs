//! The simulator's memory: registered clients, authorization codes, grant families,
//! tokens, MCP sessions and the counters the admin API reports. No network here.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::profile::{Policy, ReusePolicy, scaled, scaled_secs};

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    None,
    SecretPost,
    SecretBasic,
}

impl AuthMethod {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(AuthMethod::None),
            "client_secret_post" => Some(AuthMethod::SecretPost),
            "client_secret_basic" => Some(AuthMethod::SecretBasic),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::SecretPost => "client_secret_post",
            AuthMethod::SecretBasic => "client_secret_basic",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub id: String,
    pub secret: Option<String>,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// Other registered metadata, echoed back as sent (client_name, scope, …).
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
    pub registration_token: String,
    pub deleted: bool,
    pub token_calls: u64,
    pub refresh_calls: u64,
}

impl Client {
    pub fn expired(&self, now: u64) -> bool {
        self.expires_ms.is_some_and(|e| now >= e)
    }

    /// The RFC 7591 registration response for this client.
    pub fn registration_json(&self, registration_client_uri: &str) -> serde_json::Value {
        let mut doc = self.extra.clone();
        doc.insert("client_id".into(), self.id.clone().into());
        doc.insert(
            "client_id_issued_at".into(),
            (self.created_ms / 1000).into(),
        );
        if let Some(secret) = &self.secret {
            doc.insert("client_secret".into(), secret.clone().into());
            let expires_at = self.expires_ms.map_or(0, |ms| ms / 1000);
            doc.insert("client_secret_expires_at".into(), expires_at.into());
        }
        doc.insert("redirect_uris".into(), self.redirect_uris.clone().into());
        doc.insert("grant_types".into(), self.grant_types.clone().into());
        doc.insert("response_types".into(), vec!["code"].into());
        doc.insert(
            "token_endpoint_auth_method".into(),
            self.auth_method.as_str().into(),
        );
        doc.insert(
            "registration_access_token".into(),
            self.registration_token.clone().into(),
        );
        doc.insert(
            "registration_client_uri".into(),
            registration_client_uri.into(),
        );
        serde_json::Value::Object(doc)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub client_id: String,
    /// `Some` when the authorization request carried `redirect_uri`; the token request
    /// must then repeat it exactly (RFC 6749 §4.1.3).
    pub redirect_uri: Option<String>,
    pub challenge: String,
    pub scope: String,
    pub resource: Option<String>,
    pub expires_ms: u64,
    pub used: bool,
    /// The grant created when the code was exchanged, revoked if the code is replayed.
    pub family: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Access,
    Refresh,
}

/// Why a token stopped working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Death {
    /// A refresh token that has been exchanged for a new one.
    Rotated,
    Revoked,
    Evicted,
    /// The grant was revoked because a rotated refresh token was presented again.
    ReuseDetected,
    /// The authorization code that started the grant was replayed.
    CodeReplayed,
    ClientDeleted,
}

impl Death {
    pub fn description(&self) -> &'static str {
        match self {
            Death::Rotated => "refresh token was already used",
            Death::Revoked => "token was revoked",
            Death::Evicted => {
                "token was revoked because a newer one was issued beyond the per-user limit for this application"
            }
            Death::ReuseDetected => "grant was revoked because a refresh token was used twice",
            Death::CodeReplayed => {
                "grant was revoked because its authorization code was used twice"
            }
            Death::ClientDeleted => "client registration was deleted",
        }
    }

    /// Rotation is normal use; everything else counts as a revocation.
    fn counts_as_revoked(&self) -> bool {
        !matches!(self, Death::Rotated | Death::Evicted)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Kind,
    pub family: u64,
    pub client_id: String,
    pub scope: String,
    pub resource: Option<String>,
    /// Issue order, so "the oldest" is well defined.
    pub seq: u64,
    pub expires_ms: Option<u64>,
    pub dead: Option<Death>,
}

impl Token {
    fn live(&self, now: u64) -> bool {
        self.dead.is_none() && self.expires_ms.is_none_or(|e| now < e)
    }
}

/// The grant a code exchange starts; every token refreshed from it belongs to it.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    pub client_id: String,
    pub scope: String,
    pub resource: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Session {
    /// Cancelled when the session ends, closing its GET streams.
    pub ended: CancellationToken,
    /// Messages owed to the client on a stream the server closed early (SEP-1699 polling),
    /// keyed by the last event id it sent there; a GET with that `Last-Event-ID` gets them.
    pub owed: HashMap<String, Value>,
    /// The least severe log level the client asked for with `logging/setLevel` (an index
    /// into [`LOG_LEVELS`]); `None` until it asks, when every message is sent.
    pub log_level: Option<usize>,
}

/// The syslog severities MCP's logging uses (RFC 5424), least severe first.
pub(crate) const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Where a device authorization stands (RFC 8628 §3.3–3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    /// Exchanged for tokens: the device code is spent.
    Used,
}

/// One device authorization, from its code to its tokens.
#[derive(Debug, Clone)]
pub(crate) struct DeviceAuthorization {
    pub client_id: String,
    pub user_code: String,
    pub scope: String,
    pub resource: Option<String>,
    pub expires_ms: u64,
    /// The polling interval in force: the one announced, plus 5 s per `slow_down`.
    pub interval_ms: u64,
    /// The last poll, or the authorization itself before the first poll.
    pub last_poll_ms: u64,
    pub status: DeviceStatus,
}

/// Totals for `/__sim/stats`. Never holds a secret.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub registrations: u64,
    /// Clients first seen through their Client ID Metadata Document.
    pub metadata_document_clients: u64,
    pub authorizations: u64,
    pub token_calls: u64,
    pub refresh_calls: u64,
    pub authorization_code_grants: u64,
    pub refresh_grants: u64,
    pub live_access_tokens: u64,
    pub live_refresh_tokens: u64,
    /// Tokens killed by revocation (RFC 7009, reuse detection, code replay, client
    /// deletion, revoke-all); rotation and eviction are counted apart.
    pub revoked_tokens: u64,
    pub evictions: u64,
    pub family_revocations: u64,
    pub invalid_grant_responses: u64,
    pub invalid_client_responses: u64,
    pub mcp_requests: u64,
    pub mcp_401s: u64,
    pub mcp_403s: u64,
    pub faults_injected: u64,
    pub dropped_responses: u64,
    /// Device authorization requests answered with a code (RFC 8628 §3.2).
    pub device_authorizations: u64,
    pub device_approvals: u64,
    pub device_denials: u64,
    /// Token requests with the device-code grant, whatever their answer.
    pub device_polls: u64,
    /// Polls that came sooner than the interval then in force (each was told `slow_down`).
    pub device_polls_too_fast: u64,
    pub slow_down_responses: u64,
    pub expired_token_responses: u64,
    /// MCP sessions (2025 revisions) begun by `initialize`, and ended by a DELETE.
    pub sessions_begun: u64,
    pub sessions_ended: u64,
    pub device_code_grants: u64,
}

/// The tokens one successful grant hands out.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    /// The refresh token's lifetime in (scaled) seconds, where the profile announces it.
    pub refresh_token_expires_in: Option<u64>,
    pub scope: String,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub clients: HashMap<String, Client>,
    /// Client ids in registration order, for stable stats.
    pub client_order: Vec<String>,
    pub codes: HashMap<String, Code>,
    pub tokens: HashMap<String, Token>,
    pub families: HashMap<u64, Family>,
    pub sessions: HashMap<String, Session>,
    /// Pending and finished device authorizations, by device code.
    pub devices: HashMap<String, DeviceAuthorization>,
    pub totals: Totals,
    next_family: u64,
    next_seq: u64,
}

/// A random secret with the profile's prefix: `lin_at_` + 43 base64url characters.
pub(crate) fn secret(prefix: &str, kind: &str) -> String {
    format!("{prefix}_{kind}_{}", random_b64::<32>())
}

/// A client id: public, so shorter than a secret, but still unguessable.
pub(crate) fn client_id(prefix: &str) -> String {
    format!("{prefix}_client_{}", random_b64::<12>())
}

fn random_b64<const N: usize>() -> String {
    use base64::Engine;
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Store {
    pub fn new_family(&mut self, family: Family) -> u64 {
        self.next_family += 1;
        self.families.insert(self.next_family, family);
        self.next_family
    }

    fn add_token(&mut self, value: String, token: Token) {
        self.tokens.insert(value, token);
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Issues an access token (and a refresh token where the policy has them) in a
    /// family, then enforces the per-client cap on live access tokens. `None` if the
    /// family does not exist.
    pub fn issue(
        &mut self,
        family_id: u64,
        access_scope: &str,
        policy: &Policy,
        time_scale: f64,
        now: u64,
    ) -> Option<Issued> {
        let family = self.families.get(&family_id).cloned()?;
        let life = scaled(policy.draw_access_life(), time_scale);
        let access_token = secret(policy.prefix, "at");
        let seq = self.seq();
        self.add_token(
            access_token.clone(),
            Token {
                kind: Kind::Access,
                family: family_id,
                client_id: family.client_id.clone(),
                scope: access_scope.to_string(),
                resource: family.resource.clone(),
                seq,
                expires_ms: Some(now + life.as_millis() as u64),
                dead: None,
            },
        );
        let refresh_token = policy.refresh.as_ref().and_then(|rp| {
            let offline = family.scope.split(' ').any(|s| s == "offline_access");
            if rp.needs_offline_access && !offline {
                return None;
            }
            let value = secret(policy.prefix, "rt");
            let seq = self.seq();
            let expires_ms = rp
                .life
                .map(|secs| now + scaled(secs, time_scale).as_millis() as u64);
            self.add_token(
                value.clone(),
                Token {
                    kind: Kind::Refresh,
                    family: family_id,
                    client_id: family.client_id.clone(),
                    scope: family.scope.clone(),
                    resource: family.resource.clone(),
                    seq,
                    expires_ms,
                    dead: None,
                },
            );
            Some(value)
        });
        let refresh_token_expires_in = policy
            .refresh
            .as_ref()
            .filter(|rp| rp.announce_life && refresh_token.is_some())
            .and_then(|rp| rp.life)
            .map(|secs| scaled_secs(secs, time_scale));
        if let Some(cap) = policy.max_live_access {
            self.evict_beyond(&family.client_id, cap, now);
        }
        Some(Issued {
            access_token,
            // Whole seconds for the wire, never 0; the real expiry keeps its milliseconds.
            expires_in: (life.as_millis() as u64 / 1000).max(1),
            refresh_token,
            refresh_token_expires_in,
            scope: access_scope.to_string(),
        })
    }

    /// GitHub's rule: the (cap+1)-th live token for a user and app revokes the oldest.
    fn evict_beyond(&mut self, client_id: &str, cap: usize, now: u64) {
        let mut live: Vec<(u64, String)> = self
            .tokens
            .iter()
            .filter(|(_, t)| t.kind == Kind::Access && t.client_id == client_id && t.live(now))
            .map(|(v, t)| (t.seq, v.clone()))
            .collect();
        if live.len() <= cap {
            return;
        }
        live.sort();
        let excess = live.len() - cap;
        for (_, value) in live.into_iter().take(excess) {
            if let Some(t) = self.tokens.get_mut(&value) {
                t.dead = Some(Death::Evicted);
                self.totals.evictions += 1;
            }
        }
    }

    /// Kills one token; returns whether it was live.
    pub fn kill(&mut self, value: &str, death: Death) -> bool {
        let Some(t) = self.tokens.get_mut(value) else {
            return false;
        };
        if t.dead.is_some() {
            return false;
        }
        t.dead = Some(death);
        if death.counts_as_revoked() {
            self.totals.revoked_tokens += 1;
        }
        true
    }

    /// Kills every token of a grant family, newest included.
    pub fn kill_family(&mut self, family: u64, death: Death) {
        let values: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, t)| t.family == family && t.dead.is_none())
            .map(|(v, _)| v.clone())
            .collect();
        for v in values {
            self.kill(&v, death);
        }
        if death == Death::ReuseDetected || death == Death::CodeReplayed {
            self.totals.family_revocations += 1;
        }
    }

    pub fn kill_client_tokens(&mut self, client_id: &str, death: Death) {
        let values: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, t)| t.client_id == client_id && t.dead.is_none())
            .map(|(v, _)| v.clone())
            .collect();
        for v in values {
            self.kill(&v, death);
        }
    }

    /// The user revoked the app: every token of every client dies.
    pub fn kill_all(&mut self) {
        let values: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, t)| t.dead.is_none())
            .map(|(v, _)| v.clone())
            .collect();
        for v in values {
            self.kill(&v, Death::Revoked);
        }
    }

    /// Evicts every live access token, as a per-user token cap does when other clients
    /// sign in; refresh tokens stay good.
    pub fn evict_all_access(&mut self) {
        for t in self.tokens.values_mut() {
            if t.kind == Kind::Access && t.dead.is_none() {
                t.dead = Some(Death::Evicted);
                self.totals.evictions += 1;
            }
        }
    }

    /// What a refresh token presented again does under the profile's reuse policy.
    pub fn on_refresh_reuse(&mut self, family: u64, reuse: ReusePolicy) {
        if reuse == ReusePolicy::RevokeFamily {
            self.kill_family(family, Death::ReuseDetected);
        }
    }

    pub fn live_counts(&self, now: u64) -> (u64, u64) {
        let mut access = 0;
        let mut refresh = 0;
        for t in self.tokens.values().filter(|t| t.live(now)) {
            match t.kind {
                Kind::Access => access += 1,
                Kind::Refresh => refresh += 1,
            }
        }
        (access, refresh)
    }

    pub fn live_access_for(&self, client_id: &str, now: u64) -> u64 {
        self.tokens
            .values()
            .filter(|t| t.kind == Kind::Access && t.client_id == client_id && t.live(now))
            .count() as u64
    }

    /// Checks a bearer token presented to the MCP endpoint.
    pub fn check_access(&self, value: &str, resource: &str, now: u64) -> Result<&Token, String> {
        let Some(t) = self.tokens.get(value) else {
            return Err("the access token is not recognised".into());
        };
        if t.kind != Kind::Access {
            return Err("a refresh token is not an access token".into());
        }
        if let Some(death) = t.dead {
            return Err(format!(
                "the access token is no longer valid: {}",
                death.description()
            ));
        }
        if t.expires_ms.is_some_and(|e| now >= e) {
            return Err("the access token expired".into());
        }
        if t.resource.as_deref().is_some_and(|r| r != resource) {
            return Err("the access token was issued for another resource".into());
        }
        Ok(t)
    }
}
