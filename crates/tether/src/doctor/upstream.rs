//! The upstream check: the credential tried with a cheap MCP call (a 401 met as the proxy
//! meets it, with one forced refresh), what the answer means, and the clock skew its
//! `Date` reveals.

use std::sync::Arc;

use chrono::Utc;

use tether_core::oauth::refresh::{AuthError, TokenManager, Trigger};
use tether_core::vault::{Auth, Connection, DiagnosisCode, Vault};

use super::probe::probe;
use super::{Finding, Status};

/// Clock differences beyond this skew token lifetimes and are worth fixing…
const SKEW_WARN_SECS: i64 = 30;

/// …and beyond this, servers may refuse tokens as expired or not yet valid.
const SKEW_FAIL_SECS: i64 = 300;

/// The token against the upstream with a cheap MCP call, and the clock skew it reveals.
/// A 401 is met as the proxy meets it: one forced refresh, and the call once more.
pub(super) async fn upstream_findings(
    vault: &Vault,
    http: &reqwest::Client,
    c: &Connection,
) -> Vec<Finding> {
    let name = c.name.as_str();
    let manager = Arc::new(TokenManager::new(
        c,
        vault.clone(),
        tether_core::http::token_client(),
        Arc::new(tokio::sync::Notify::new()),
    ));
    let token_failed = |e: AuthError| {
        let mut f = Finding::new(name, "token", Status::Fail, e.to_string());
        if let Some(code) = e.diagnosis() {
            f = f.diagnosed(code, name);
        }
        vec![f]
    };
    let unreachable = |e: reqwest::Error| {
        vec![
            Finding::new(
                name,
                "upstream",
                Status::Fail,
                format!("no answer: {}", tether_core::oauth::token::describe(&e)),
            )
            .diagnosed(DiagnosisCode::UpstreamUnreachable, name),
        ]
    };
    let mut current = match manager.credential().await {
        Ok(current) => current,
        Err(e) => return token_failed(e),
    };
    let mut probed = match probe(http, c, &current).await {
        Ok(p) => p,
        Err(e) => return unreachable(e),
    };
    let oauth = matches!(c.auth, Auth::OAuth { .. });
    let mut evicted = None;
    if oauth && probed.status == reqwest::StatusCode::UNAUTHORIZED {
        let rejected = current.clone();
        current = match manager
            .refresh(Trigger::Rejected {
                seen: rejected.generation,
            })
            .await
        {
            Ok(fresh) => fresh,
            Err(e) => return token_failed(e),
        };
        let challenge = std::mem::take(&mut probed.challenge);
        probed = match probe(http, c, &current).await {
            Ok(p) => p,
            Err(e) => return unreachable(e),
        };
        if probed.status.is_success()
            && current.generation > rejected.generation
            && rejected.revoked_early()
        {
            let event = tether_core::oauth::refresh::eviction_event(
                &rejected,
                challenge.error_description.as_deref(),
            );
            tether_core::oauth::refresh::record(vault, name, event).await;
        }
        evicted = Some((rejected, challenge));
    }
    let status = probed.status;
    let mut f = match status.as_u16() {
        200..=299 => match &evicted {
            None => Finding::new(
                name,
                "upstream",
                Status::Ok,
                "the upstream accepts tether's credential",
            ),
            Some((rejected, _)) if !rejected.revoked_early() => Finding::new(
                name,
                "upstream",
                Status::Ok,
                "the token tether held had just run out (401); refreshed, the new one is accepted",
            ),
            Some((rejected, _)) => {
                let mut f = Finding::new(
                    name,
                    "upstream",
                    Status::Warn,
                    "the upstream revoked the token tether held early (401); refreshed, the new one is accepted",
                )
                .diagnosed(DiagnosisCode::TokenEvicted, name)
                .with("refused generation", rejected.generation.to_string());
                if let Some(exp) = rejected.expires_at {
                    f = f.with(
                        "refused token expires",
                        tether_core::summary::relative(exp, Utc::now()),
                    );
                }
                // Nothing to do: the refresh healed it.
                f.remedy = None;
                f
            }
        },
        401 if oauth => Finding::new(
            name,
            "upstream",
            Status::Fail,
            "the upstream refuses even a freshly refreshed token (401)",
        )
        .diagnosed(DiagnosisCode::InvalidGrantExpiredOrRevoked, name),
        401 if matches!(c.auth, Auth::ApiKey { .. }) => {
            let mut f = Finding::new(
                name,
                "upstream",
                Status::Fail,
                "the upstream rejects the API key (401)",
            )
            .diagnosed(DiagnosisCode::TokenEvicted, name);
            f.remedy = Some(format!(
                "replace the key: `tether remove {name}`, then `tether add {name} {} --api-key-env VAR`",
                c.upstream
            ));
            f
        }
        401 => {
            let mut f = Finding::new(
                name,
                "upstream",
                Status::Fail,
                "the upstream asks for authorization (401), and this connection was added without any",
            );
            f.remedy = Some(format!(
                "add it again with OAuth: `tether remove {name}`, then `tether add {name} {}` and `tether login {name}`",
                c.upstream
            ));
            f
        }
        403 if probed.challenge.error.as_deref() == Some("insufficient_scope") => Finding::new(
            name,
            "upstream",
            Status::Fail,
            "the upstream wants a scope tether's token lacks (403 insufficient_scope)",
        )
        .diagnosed(DiagnosisCode::InsufficientScope, name),
        403 => Finding::new(
            name,
            "upstream",
            Status::Fail,
            "the upstream refuses tether's credential (403)",
        ),
        _ if let Some(target) = &probed.redirect => {
            let mut f = Finding::new(
                name,
                "upstream",
                Status::Fail,
                format!(
                    "the upstream answered with a redirect to '{target}', and tether does not send its credential to a redirect target"
                ),
            );
            f.remedy = Some(format!(
                "if '{target}' is the MCP endpoint, add the connection with it: `tether remove {name}`, then `tether add {name} URL`"
            ));
            f
        }
        s => Finding::new(
            name,
            "upstream",
            Status::Warn,
            format!("the upstream answered HTTP {s}"),
        ),
    };
    f = f
        .with("status", status.as_u16().to_string())
        .with("url", c.upstream.to_string());
    let challenges = evicted
        .as_ref()
        .map(|(_, challenge)| challenge)
        .into_iter()
        .chain((!status.is_success()).then_some(&probed.challenge));
    for challenge in challenges {
        if let Some(error) = &challenge.error {
            f = f.with("error", tether_core::printable::printable(error, 100));
        }
        if let Some(description) = &challenge.error_description {
            f = f.with(
                "error_description",
                tether_core::printable::printable(description, 200),
            );
        }
        if let Some(scope) = &challenge.scope {
            f = f.with("scope", tether_core::printable::printable(scope, 200));
        }
    }
    if let Some(exp) = current.expires_at {
        f = f.with(
            "token expires",
            tether_core::summary::relative(exp, Utc::now()),
        );
    }
    let mut out = vec![f];
    if let Some(date) = probed.date {
        out.push(skew_finding(name, (date - Utc::now()).num_seconds()));
    }
    out
}

/// The clock against the upstream's: beyond [`SKEW_WARN_SECS`] worth fixing, beyond
/// [`SKEW_FAIL_SECS`] (the leeway servers commonly allow) tokens may be refused as
/// expired or not yet valid.
fn skew_finding(name: &str, skew: i64) -> Finding {
    let status = match skew.abs() {
        s if s > SKEW_FAIL_SECS => Status::Fail,
        s if s > SKEW_WARN_SECS => Status::Warn,
        _ => Status::Ok,
    };
    let mut f = Finding::new(
        name,
        "clock",
        status,
        format!("clock skew against the upstream: {skew:+} s"),
    );
    if status != Status::Ok {
        f.remedy = Some(
            "synchronise this machine's clock (NTP): token lifetimes depend on it".to_string(),
        );
    }
    f
}
