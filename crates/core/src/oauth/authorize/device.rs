//! The device authorization grant (RFC 8628), for a sign-in with no browser on this
//! machine: ask for a code, show it with the address to open elsewhere, and poll the token
//! endpoint until the user approves — honouring `interval`, `slow_down` and the code's
//! expiry. `resource` goes on both requests, as on every other token request.

use std::time::Duration;

use oauth2::{DeviceCodeErrorResponseType, StandardDeviceAuthorizationResponse};
use serde::Deserialize;
use serde::de::IntoDeserializer;
use tokio::time::Instant;
use url::Url;

use super::super::discovery::{AuthServerMetadata, Discovery};
use super::super::token::{self, ClientAuth, DEVICE_CODE_GRANT, TokenError, TokenResponse};
use super::{DeviceGrant, LoginError, LoginStep, StepOutcome, failed};
use crate::printable::printable;
use crate::vault::ClientRegistration;

/// RFC 8628 §3.5: what each `slow_down` adds to the interval.
const SLOW_DOWN: Duration = Duration::from_secs(5);
/// The longest wait between polls after network trouble.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Whether the server offers the grant: a device authorization endpoint, and the grant
/// among `grant_types_supported` where that list is given.
pub fn offered(meta: &AuthServerMetadata) -> bool {
    meta.device_authorization_endpoint.is_some()
        && meta
            .grant_types_supported
            .as_ref()
            .is_none_or(|g| g.iter().any(|g| g == DEVICE_CODE_GRANT))
}

/// Whether this login uses the device grant.
pub(super) fn wanted(choice: DeviceGrant, found: &Discovery) -> Result<bool, LoginError> {
    let offered = offered(&found.as_metadata);
    match choice {
        DeviceGrant::Off => Ok(false),
        DeviceGrant::Prefer => Ok(offered),
        DeviceGrant::Require if offered => Ok(true),
        DeviceGrant::Require => Err(LoginError::DeviceUnsupported {
            issuer: found.issuer.clone(),
        }),
    }
}

/// The whole device sign-in: the code, shown; the polls; the tokens. A refused device
/// authorization request is returned as [`LoginError::DeviceRefused`] without a step,
/// so the caller may fall back to the browser.
pub(super) async fn sign_in(
    http: &reqwest::Client,
    found: &Discovery,
    client: &ClientRegistration,
    scope: Option<&str>,
    timeout: Duration,
    step: &(dyn Fn(LoginStep, StepOutcome) + Send + Sync),
) -> Result<TokenResponse, LoginError> {
    let endpoint = found
        .as_metadata
        .device_authorization_endpoint
        .as_ref()
        .ok_or_else(|| LoginError::DeviceUnsupported {
            issuer: found.issuer.clone(),
        })?;
    step(LoginStep::DeviceAuthorization, StepOutcome::Running);
    let auth = ClientAuth::of(client);
    let started = request_code(http, endpoint, &auth, scope, &found.resource)
        .await
        .map_err(LoginError::DeviceRefused)?;
    show(&started, step);
    let poller = Poller::new(started.interval(), started.expires_in(), Instant::now());
    let polls = poll(http, found, &auth, started.device_code().secret(), poller);
    let result = tokio::time::timeout(timeout, polls)
        .await
        .unwrap_or(Err(LoginError::Timeout(timeout)));
    match &result {
        Ok(_) => step(
            LoginStep::WaitingForApproval,
            StepOutcome::Done("approved".into()),
        ),
        Err(e) => step(LoginStep::WaitingForApproval, failed(e.diagnosis(), e)),
    }
    result
}

/// RFC 8628 §3.1: the device authorization request, with the login's scope and resource.
async fn request_code(
    http: &reqwest::Client,
    endpoint: &Url,
    auth: &ClientAuth,
    scope: Option<&str>,
    resource: &str,
) -> Result<StandardDeviceAuthorizationResponse, TokenError> {
    let mut params = vec![("resource", resource)];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    let body = token::post(http, endpoint, auth, &params).await?;
    serde_json::from_slice(&body).map_err(|e| TokenError::BadResponse {
        url: endpoint.to_string(),
        reason: format!("not a device authorization response ({e})"),
    })
}

/// Tells the user where to go and what to type (server text made printable first).
fn show(
    started: &StandardDeviceAuthorizationResponse,
    step: &(dyn Fn(LoginStep, StepOutcome) + Send + Sync),
) {
    let expires_in = started.expires_in().as_secs();
    step(
        LoginStep::DeviceAuthorization,
        StepOutcome::Done(format!(
            "code issued, valid for {}",
            crate::summary::duration(expires_in as i64)
        )),
    );
    step(
        LoginStep::DeviceCode {
            verification_uri: printable(started.verification_uri().as_str(), 300),
            verification_uri_complete: started
                .verification_uri_complete()
                .map(|u| printable(u.secret(), 400)),
            user_code: printable(started.user_code().secret(), 64),
            expires_in,
        },
        StepOutcome::Done(String::new()),
    );
    step(LoginStep::WaitingForApproval, StepOutcome::Running);
}

/// RFC 8628 §3.4: polls the token endpoint until the poller stops.
async fn poll(
    http: &reqwest::Client,
    found: &Discovery,
    auth: &ClientAuth,
    device_code: &str,
    mut poller: Poller,
) -> Result<TokenResponse, LoginError> {
    let params = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", device_code),
        ("resource", found.resource.as_str()),
    ];
    let mut wait = poller.interval;
    loop {
        tokio::time::sleep(wait).await;
        let answer = token::request(http, &found.as_metadata.token_endpoint, auth, &params).await;
        match poller.next(answer, Instant::now()) {
            Next::Wait(d) => wait = d,
            Next::Token(t) => return Ok(t),
            Next::Stop(e) => return Err(e),
        }
    }
}

/// What to do after a poll.
#[derive(Debug)]
enum Next {
    Wait(Duration),
    Token(TokenResponse),
    Stop(LoginError),
}

/// The polling rules of RFC 8628 §3.5, apart from the network so they can be tested.
#[derive(Debug)]
struct Poller {
    /// The interval in force: the announced one (5 s if none), plus 5 s per `slow_down`.
    interval: Duration,
    /// When the device code expires.
    deadline: Instant,
    /// The wait after network trouble, doubled each time (§3.5's exponential backoff).
    backoff: Duration,
}

impl Poller {
    fn new(interval: Duration, lifetime: Duration, now: Instant) -> Self {
        Self {
            interval: interval.max(Duration::from_secs(1)),
            deadline: now + lifetime,
            backoff: Duration::ZERO,
        }
    }

    fn next(&mut self, answer: Result<TokenResponse, TokenError>, now: Instant) -> Next {
        let error = match answer {
            Ok(token) => return Next::Token(token),
            Err(e) => e,
        };
        let wait = match error_kind(&error) {
            Some(DeviceCodeErrorResponseType::AuthorizationPending) => self.interval,
            Some(DeviceCodeErrorResponseType::SlowDown) => {
                self.interval += SLOW_DOWN;
                self.interval
            }
            Some(DeviceCodeErrorResponseType::ExpiredToken) => {
                return Next::Stop(LoginError::DeviceExpired);
            }
            Some(DeviceCodeErrorResponseType::AccessDenied) => {
                return Next::Stop(denied(&error));
            }
            _ if error.is_transient() => {
                self.backoff = (self.backoff * 2).clamp(self.interval * 2, MAX_BACKOFF);
                return self.unless_expired(self.backoff, now);
            }
            _ => return Next::Stop(LoginError::Exchange(error)),
        };
        self.backoff = Duration::ZERO;
        self.unless_expired(wait, now)
    }

    /// Waiting past the code's expiry is pointless: the next answer could only be
    /// `expired_token`.
    fn unless_expired(&self, wait: Duration, now: Instant) -> Next {
        if now + wait >= self.deadline {
            Next::Stop(LoginError::DeviceExpired)
        } else {
            Next::Wait(wait)
        }
    }
}

/// The OAuth error of a poll, read as RFC 8628 names them.
fn error_kind(e: &TokenError) -> Option<DeviceCodeErrorResponseType> {
    let error = e.oauth_error()?;
    DeviceCodeErrorResponseType::deserialize(
        error.into_deserializer() as serde::de::value::StrDeserializer<serde::de::value::Error>
    )
    .ok()
}

/// `access_denied` told the same way as a denied browser sign-in.
fn denied(e: &TokenError) -> LoginError {
    let description = match e {
        TokenError::OAuth { body, .. } => body.error_description.clone(),
        _ => None,
    };
    LoginError::Denied {
        error: "access_denied".to_string(),
        description,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::token::OAuthErrorBody;
    use crate::secret::Secret;

    fn oauth(error: &str) -> Result<TokenResponse, TokenError> {
        Err(TokenError::OAuth {
            url: "http://127.0.0.1/token".into(),
            status: 400,
            body: OAuthErrorBody {
                error: error.into(),
                error_description: Some("why".into()),
            },
        })
    }

    fn server_error() -> Result<TokenResponse, TokenError> {
        Err(TokenError::Http {
            url: "http://127.0.0.1/token".into(),
            status: 503,
            retry_after: None,
        })
    }

    fn poller(now: Instant) -> Poller {
        Poller::new(Duration::from_secs(2), Duration::from_secs(600), now)
    }

    fn wait(next: Next) -> Duration {
        match next {
            Next::Wait(d) => d,
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    #[test]
    fn pending_keeps_the_interval_and_slow_down_adds_five_seconds_for_good() {
        let now = Instant::now();
        let mut p = poller(now);
        assert_eq!(wait(p.next(oauth("authorization_pending"), now)), secs(2));
        assert_eq!(wait(p.next(oauth("slow_down"), now)), secs(7));
        assert_eq!(wait(p.next(oauth("authorization_pending"), now)), secs(7));
        assert_eq!(wait(p.next(oauth("slow_down"), now)), secs(12));
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn expiry_denial_and_other_errors_stop_the_polling() {
        let now = Instant::now();
        let stop = |answer| match poller(now).next(answer, now) {
            Next::Stop(e) => e,
            other => panic!("expected a stop, got {other:?}"),
        };
        assert!(matches!(
            stop(oauth("expired_token")),
            LoginError::DeviceExpired
        ));
        assert!(matches!(
            stop(oauth("access_denied")),
            LoginError::Denied { error, description } if error == "access_denied" && description.as_deref() == Some("why")
        ));
        assert!(matches!(
            stop(oauth("invalid_grant")),
            LoginError::Exchange(_)
        ));
    }

    #[test]
    fn the_code_expiring_before_the_next_poll_stops_it() {
        let now = Instant::now();
        let mut p = Poller::new(secs(5), secs(12), now);
        assert_eq!(wait(p.next(oauth("authorization_pending"), now)), secs(5));
        let later = now + secs(8);
        assert!(matches!(
            p.next(oauth("authorization_pending"), later),
            Next::Stop(LoginError::DeviceExpired)
        ));
    }

    #[test]
    fn network_trouble_backs_off_exponentially_then_settles() {
        let now = Instant::now();
        let mut p = poller(now);
        assert_eq!(wait(p.next(server_error(), now)), secs(4));
        assert_eq!(wait(p.next(server_error(), now)), secs(8));
        assert_eq!(wait(p.next(server_error(), now)), secs(16));
        assert_eq!(wait(p.next(oauth("authorization_pending"), now)), secs(2));
        assert_eq!(wait(p.next(server_error(), now)), secs(4));
    }

    #[test]
    fn a_token_ends_the_polling_and_a_zero_interval_is_raised() {
        let now = Instant::now();
        let token = TokenResponse {
            access_token: Secret::new("at"),
            token_type: "Bearer".into(),
            expires_in: None,
            refresh_token: None,
            scope: None,
            refresh_token_expires_in: None,
        };
        assert!(matches!(poller(now).next(Ok(token), now), Next::Token(_)));
        assert_eq!(Poller::new(Duration::ZERO, secs(60), now).interval, secs(1));
    }
}
