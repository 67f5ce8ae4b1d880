//! Login (docs/architecture.md, "Signing in"): PKCE S256, a random `state`, `resource` on the
//! authorization and token requests, scope from the challenge or the metadata, a loopback
//! callback on the port pinned in the client's registration, the browser opened (and the
//! URL shown for SSH users), `state` and `iss` verified, the code exchanged, and the
//! result stored in one vault transaction. Without a browser on this machine: the
//! redirect URL pasted by the user, or the device authorization grant (RFC 8628).

mod browser;
mod callback;
mod device;
mod error;
mod opener;
mod scope;
mod store;
#[cfg(test)]
mod tests;

pub use store::want_scopes;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use url::Url;

use super::discovery::{self, Discovery};
use super::registration;
use super::token::TokenResponse;
use crate::secret::mask;
use crate::vault::{Auth, ClientRegistration, DiagnosisCode, Vault};

use browser::browser_sign_in;
pub use callback::{PasteProblem, parse_pasted};
pub use error::LoginError;
pub use scope::choose_scope;
use scope::resource_scopes;

/// One step of a login, as a front end shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    ResourceMetadata,
    AuthServerMetadata,
    ClientRegistration,
    /// The authorization URL, shown for users whose browser is on another machine.
    BrowserOpened {
        url: String,
    },
    WaitingForCallback,
    /// The user may paste the address the sign-in ended on (the browser is elsewhere).
    AwaitingPaste {
        redirect_uri: String,
    },
    /// A pasted address was refused; the user may paste again.
    PasteRejected {
        reason: String,
    },
    /// The device authorization request (RFC 8628 §3.1).
    DeviceAuthorization,
    /// What the user opens and types on another device (RFC 8628 §3.3).
    DeviceCode {
        verification_uri: String,
        verification_uri_complete: Option<String>,
        user_code: String,
        expires_in: u64,
    },
    /// Polling the token endpoint until the user approves (RFC 8628 §3.4).
    WaitingForApproval,
    TokenReceived,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Running,
    Done(String),
    Failed {
        diagnosis: DiagnosisCode,
        detail: String,
    },
}

/// How the authorization URL reaches the user's browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    /// The system browser (`$BROWSER` honoured); the URL is also shown.
    System,
    /// Only show the URL (SSH sessions, `--no-browser`).
    Print,
    /// Follow the authorization URL in-process, without a browser: for servers that
    /// consent automatically (the simulator in `tether demo`, test harnesses).
    Fetch,
}

/// When the device authorization grant (RFC 8628) replaces the browser sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceGrant {
    /// Never.
    #[default]
    Off,
    /// Where the authorization server offers it; where it refuses to start one, the
    /// browser sign-in instead.
    Prefer,
    /// Always; a server that does not offer it is an error.
    Require,
}

pub struct LoginOptions {
    pub browser: Browser,
    /// Register a new client first (the old one is kept as legacy).
    pub reregister: bool,
    /// Scopes to add to what the server asks for (step-up after `insufficient_scope`).
    pub extra_scopes: Vec<String>,
    pub client_metadata_url: Option<Url>,
    /// How long to wait for the browser to come back (or the device to be approved).
    pub timeout: Duration,
    pub device: DeviceGrant,
    /// Redirect URLs the user pastes, one per message, while the loopback callback is
    /// awaited too (a browser on another machine); `None`: the callback only.
    pub pasted: Option<mpsc::Receiver<String>>,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            browser: Browser::System,
            reregister: false,
            extra_scopes: Vec::new(),
            client_metadata_url: None,
            timeout: Duration::from_secs(300),
            device: DeviceGrant::Off,
            pasted: None,
        }
    }
}

pub type Progress = Arc<dyn Fn(LoginStep, StepOutcome) + Send + Sync>;

/// What a successful login stored.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub issuer: String,
    pub client_id: String,
    pub scope: Option<String>,
    pub expires_in: Option<u64>,
    pub has_refresh_token: bool,
    pub generation: u64,
}

pub async fn login(
    http: &reqwest::Client,
    vault: &Vault,
    name: &str,
    options: LoginOptions,
    progress: Progress,
) -> Result<LoginOutcome, LoginError> {
    let store = vault.load_async().await?;
    let connection = store
        .get(name)
        .ok_or_else(|| LoginError::NotFound(name.to_string()))?
        .clone();
    let Auth::OAuth { scopes, .. } = &connection.auth else {
        return Err(LoginError::NotOAuth(name.to_string()));
    };
    let step = |s: LoginStep, o: StepOutcome| progress(s, o);

    step(LoginStep::ResourceMetadata, StepOutcome::Running);
    let found = discovery::discover(http, &connection.upstream).await;
    let found = match found {
        Ok(d) => d,
        Err(e) => {
            step(LoginStep::ResourceMetadata, failed(e.code(), &e));
            return Err(e.into());
        }
    };
    step(
        LoginStep::ResourceMetadata,
        StepOutcome::Done(
            found
                .resource_metadata_url
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_else(|| "none (legacy server)".to_string()),
        ),
    );
    step(
        LoginStep::AuthServerMetadata,
        StepOutcome::Done(found.issuer.clone()),
    );

    let device = match device::wanted(options.device, &found) {
        Ok(d) => d,
        Err(e) => {
            step(LoginStep::DeviceAuthorization, failed(e.diagnosis(), &e));
            return Err(e);
        }
    };
    step(LoginStep::ClientRegistration, StepOutcome::Running);
    let chosen = match registration::choose(
        http,
        &connection,
        &found,
        options.reregister,
        options.client_metadata_url.as_ref(),
        device,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            step(
                LoginStep::ClientRegistration,
                failed(DiagnosisCode::ClientRejected, &e),
            );
            return Err(e.into());
        }
    };
    let client = chosen.registration;
    if chosen.created {
        // Stored at once, so a later login reuses it even if this one is abandoned.
        store::store_registration(vault, name, client.clone()).await?;
    }
    step(
        LoginStep::ClientRegistration,
        StepOutcome::Done(format!(
            "{} client {}{}",
            if chosen.created {
                "registered"
            } else {
                "reusing"
            },
            mask(&client.client_id),
            chosen
                .note
                .as_deref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default()
        )),
    );

    let mut requested = scopes.clone();
    requested.extend(options.extra_scopes.iter().cloned());
    // A step-up the upstream asked for (403 insufficient_scope): the union.
    if let Some(step) = &connection.step_up {
        requested.extend(step.to_ask().iter().cloned());
    }
    let scope = choose_scope(
        found.challenge.as_ref().and_then(|c| c.scope.as_deref()),
        resource_scopes(&found),
        found.as_metadata.scopes_supported.as_deref(),
        &requested,
    );
    let response = obtain_token(
        http,
        &found,
        &client,
        scope.as_deref(),
        options,
        device,
        &step,
    );
    let response = response.await?;
    let outcome = store::store_login(vault, name, &found, &client, scope, response).await?;
    step(
        LoginStep::TokenReceived,
        StepOutcome::Done(format!(
            "generation {}{}",
            outcome.generation,
            outcome
                .expires_in
                .map(|s| format!(", expires in {}", crate::summary::duration(s as i64)))
                .unwrap_or_default()
        )),
    );
    Ok(outcome)
}

fn failed(diagnosis: DiagnosisCode, e: &dyn std::fmt::Display) -> StepOutcome {
    StepOutcome::Failed {
        diagnosis,
        detail: e.to_string(),
    }
}

/// The user's part of the login: the device grant when chosen (falling back to the
/// browser where the server refuses to start one and the user did not insist), else the
/// browser sign-in.
async fn obtain_token(
    http: &reqwest::Client,
    found: &Discovery,
    client: &ClientRegistration,
    scope: Option<&str>,
    mut options: LoginOptions,
    device: bool,
    step: &(dyn Fn(LoginStep, StepOutcome) + Send + Sync),
) -> Result<TokenResponse, LoginError> {
    if device {
        match device::sign_in(http, found, client, scope, options.timeout, step).await {
            Err(LoginError::DeviceRefused(e)) if options.device == DeviceGrant::Prefer => step(
                LoginStep::DeviceAuthorization,
                StepOutcome::Done(format!(
                    "refused ({e}); signing in through the browser instead"
                )),
            ),
            Err(e @ LoginError::DeviceRefused(_)) => {
                step(LoginStep::DeviceAuthorization, failed(e.diagnosis(), &e));
                return Err(e);
            }
            other => return other,
        }
    }
    let result = browser_sign_in(http, found, client, scope, &mut options, step).await;
    if let Err(e) = &result {
        step(LoginStep::WaitingForCallback, failed(e.diagnosis(), e));
    }
    result
}
