//! One immediate retry of a refresh request that went unanswered in a way that says the
//! server's application never saw it. A frozen authorization server that resumes may reset
//! the connections that waited on it; the next attempt, a moment later, succeeds — so the
//! call that triggered the refresh should not fail.
//!
//! The rule, and why it is safe enough: a request is sent again at once, once, when
//! - the connection could not be made (it never left), or
//! - the connection was reset (RST) before any byte of an answer arrived, on a connection
//!   opened for this request alone ([`crate::http::TokenClient`] never reuses one). A reset
//!   on a reused connection is the classic ambiguous case (the server closed it while the
//!   request was on its way, or after reading it); on a fresh one, a reset before any
//!   answer is what a server or its load balancer does to a connection it drops unserved.
//!
//! Everything else — a timeout, an orderly close before the answer, an answer cut short —
//! is ambiguous and goes through the journal as before, never resent blindly: a server that
//! rotates refresh tokens and detects reuse would take the resent one for theft and revoke
//! the grant. Even a reset cannot be proven harmless from this side, so the resent request
//! is journaled as suspect: should it meet `invalid_grant`, the diagnosis is the honest
//! `invalid_grant.lost_response`, not a claim that someone else used the token.

use super::Plan;
use super::plan::refresh_params;
use crate::http::TokenClient;
use crate::oauth::token::{self, TokenError, TokenResponse, Unanswered};

/// Sends the refresh request of `plan`, and once more when the first went unanswered as
/// described above (marking the plan suspect after a reset).
pub(super) async fn request(
    http: &TokenClient,
    plan: &mut Plan,
) -> Result<TokenResponse, TokenError> {
    let first = send(http, plan).await;
    let how = match &first {
        Err(error) => error.unanswered(),
        Ok(_) => None,
    };
    let Some(how) = how else {
        return first;
    };
    if let Err(error) = &first {
        tracing::info!("the refresh request went unanswered ({error}); sending it once more");
    }
    plan.suspect |= how == Unanswered::Reset;
    send(http, plan).await
}

async fn send(http: &TokenClient, plan: &Plan) -> Result<TokenResponse, TokenError> {
    token::request(
        http.get(),
        &plan.token_endpoint,
        &plan.auth,
        &refresh_params(plan),
    )
    .await
}
