//! Login (DESIGN §5, SPEC §A.6–A.9): PKCE S256, a random `state`, `resource` on the
//! authorization and token requests, scope from the challenge or the metadata, a loopback
//! callback on the port pinned in the client's registration, the browser opened (and the
//! URL shown for SSH users), `state` and `iss` verified, the code exchanged, and the
//! result stored in one vault transaction. Without a browser on this machine: the
//! redirect URL pasted by the user, or the device authorization grant (RFC 8628).

mod callback;
mod device;
mod opener;
mod store;

pub use store::want_scopes;

use std::sync::Arc;
use std::time::Duration;

use oauth2::{CsrfToken, PkceCodeChallenge};
use tokio::sync::mpsc;
use url::Url;

use super::discovery::{self, Discovery, DiscoveryError};
use super::registration::{self, RegistrationError};
use super::token::{self, ClientAuth, TokenError, TokenResponse};
use crate::secret::mask;
use crate::vault::{Auth, ClientRegistration, DiagnosisCode, Vault, VaultError};

pub use callback::{PasteProblem, parse_pasted};

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

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("no connection named '{0}'")]
    NotFound(String),
    #[error("'{0}' does not use OAuth: nothing to log in to")]
    NotOAuth(String),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    #[error(
        "the OAuth callback port {port} is busy ({reason}); the redirect URI {redirect_uri} is pinned in the client registration: free the port, or press R / run `tether login NAME --reregister` to register with a new one"
    )]
    PortBusy {
        port: u16,
        redirect_uri: String,
        reason: String,
    },
    #[error(
        "the registration's redirect URI '{0}' is not a loopback http URL tether can listen on: press R / run `tether login NAME --reregister`"
    )]
    BadRedirect(String),
    #[error("the authorization server answered the login with '{error}'{}: try again, or check the account's access", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error(
        "the login callback carried the wrong state: it did not come from this login; start the login again"
    )]
    StateMismatch,
    #[error(
        "the login callback's issuer {found:?} is not the authorization server {expected} (RFC 9207): refusing it"
    )]
    IssuerMismatch {
        expected: String,
        found: Option<String>,
    },
    #[error("the login callback carried no code: start the login again")]
    NoCode,
    #[error("no sign-in within {0:?} (browser or device): start the login again")]
    Timeout(Duration),
    #[error("the login was cancelled")]
    Cancelled,
    #[error("exchanging the authorization code failed: {0}")]
    Exchange(TokenError),
    #[error(
        "cannot open the browser ({0}): open the URL shown above by hand, or set BROWSER to your browser's command"
    )]
    Browser(String),
    #[error(
        "the authorization server {issuer} does not offer the device authorization grant (RFC 8628): sign in through a browser (`tether login NAME --no-browser --no-device` prints the URL and takes the pasted address)"
    )]
    DeviceUnsupported { issuer: String },
    #[error(
        "the authorization server refused to start a device sign-in: {0}; a client registered without the device grant needs `tether login NAME --reregister --device`"
    )]
    DeviceRefused(TokenError),
    #[error("the device code expired before the sign-in was approved: start the login again")]
    DeviceExpired,
    #[error("{0}")]
    Vault(String),
}

impl From<VaultError> for LoginError {
    fn from(e: VaultError) -> Self {
        LoginError::Vault(e.to_string())
    }
}

impl LoginError {
    /// Whether the failure is one of the diagnoses (else the message says it all).
    pub fn is_diagnosed(&self) -> bool {
        matches!(
            self,
            LoginError::Discovery(_)
                | LoginError::Registration(_)
                | LoginError::Exchange(_)
                | LoginError::DeviceRefused(_)
        )
    }

    pub fn diagnosis(&self) -> DiagnosisCode {
        match self {
            LoginError::Discovery(e) => e.code(),
            LoginError::Registration(RegistrationError::Failed { .. }) => {
                DiagnosisCode::ClientRejected
            }
            LoginError::Exchange(e) | LoginError::DeviceRefused(e) => token_diagnosis(e),
            _ => DiagnosisCode::DiscoveryFailed,
        }
    }
}

/// What a token-endpoint (or device-endpoint) failure during a login means.
fn token_diagnosis(e: &TokenError) -> DiagnosisCode {
    match e.oauth_error() {
        // Reachable, but not where its metadata says: a metadata problem.
        _ if matches!(e, TokenError::Redirect { .. }) => DiagnosisCode::DiscoveryFailed,
        _ if e.is_transient() => DiagnosisCode::UpstreamUnreachable,
        Some("invalid_client" | "unauthorized_client") => DiagnosisCode::ClientRejected,
        Some("invalid_scope") => DiagnosisCode::InsufficientScope,
        _ => DiagnosisCode::DiscoveryFailed,
    }
}

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

/// Scope for the authorization request (SPEC §A.9, the MCP spec's "Scope Selection
/// Strategy"): the challenge's, else every scope the *protected resource* metadata lists,
/// else none; plus `offline_access` only where the *authorization server* lists it
/// (SEP-2207: resources should not list it, so it is looked for where it belongs); plus
/// any step-up extras.
pub fn choose_scope(
    challenge: Option<&str>,
    resource_scopes: Option<&[String]>,
    server_scopes: Option<&[String]>,
    extra: &[String],
) -> Option<String> {
    let mut scopes: Vec<String> = match (challenge, resource_scopes) {
        (Some(c), _) if !c.trim().is_empty() => c.split_whitespace().map(String::from).collect(),
        (_, Some(s)) => s.to_vec(),
        _ => Vec::new(),
    };
    let offline = "offline_access".to_string();
    if server_scopes.is_some_and(|s| s.contains(&offline)) && !scopes.contains(&offline) {
        scopes.push(offline);
    }
    for s in extra {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

/// The scopes a resource lists: its protected resource metadata's, or for a 2025-03-26
/// server without that document, its authorization server's.
fn resource_scopes(found: &Discovery) -> Option<&[String]> {
    match &found.resource_metadata {
        Some(prm) => prm.scopes_supported.as_deref(),
        None => found.as_metadata.scopes_supported.as_deref(),
    }
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
                .map(|s| format!(", expires in {}", crate::view::duration(s as i64)))
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

/// The authorization request's URL (RFC 6749 §4.1.1 with PKCE, RFC 8707 `resource`).
fn authorization_url(
    found: &Discovery,
    client: &ClientRegistration,
    redirect_uri: &str,
    scope: Option<&str>,
    challenge: &PkceCodeChallenge,
    state: &CsrfToken,
) -> Url {
    let mut auth_url = found.as_metadata.authorization_endpoint.clone();
    {
        let mut q = auth_url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state.secret())
            .append_pair("resource", &found.resource);
        if let Some(scope) = scope {
            q.append_pair("scope", scope);
        }
    }
    auth_url
}

/// The browser part: listen, open, wait for the callback (or a pasted redirect), check
/// it, exchange the code.
async fn browser_sign_in(
    http: &reqwest::Client,
    found: &Discovery,
    client: &ClientRegistration,
    scope: Option<&str>,
    options: &mut LoginOptions,
    step: &(dyn Fn(LoginStep, StepOutcome) + Send + Sync),
) -> Result<TokenResponse, LoginError> {
    let redirect_uri = client
        .redirect_uri
        .clone()
        .ok_or_else(|| LoginError::BadRedirect("(none)".to_string()))?;
    let redirect = Url::parse(&redirect_uri)
        .ok()
        .filter(|u| u.scheme() == "http" && crate::vault::is_loopback(u))
        .ok_or_else(|| LoginError::BadRedirect(redirect_uri.clone()))?;
    let state = CsrfToken::new_random();
    let (callbacks, _server) = callback::listen(&redirect, state.secret().clone()).await?;

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let auth_url = authorization_url(found, client, &redirect_uri, scope, &challenge, &state);
    step(
        LoginStep::BrowserOpened {
            url: auth_url.to_string(),
        },
        StepOutcome::Done(String::new()),
    );
    match options.browser {
        // Where the user can paste the address the sign-in ends on (the terminal UI), a
        // machine without a browser (an SSH session) only means opening the URL elsewhere.
        Browser::System if options.pasted.is_some() => {
            if let Err(e) = opener::open(&auth_url) {
                step(
                    LoginStep::BrowserOpened {
                        url: auth_url.to_string(),
                    },
                    StepOutcome::Done(format!("no browser here ({e}): open the URL elsewhere")),
                );
            }
        }
        Browser::System => {
            opener::open(&auth_url).map_err(|e| LoginError::Browser(e.to_string()))?
        }
        Browser::Print => {}
        Browser::Fetch => {
            tokio::spawn(callback::follow_without_browser(auth_url.clone()));
        }
    }
    let expected = callback::Expected {
        state: state.secret(),
        redirect: &redirect,
        found,
    };
    let wait = callback::wait(callbacks, options.pasted.take(), &expected, step);
    let code = tokio::time::timeout(options.timeout, wait)
        .await
        .map_err(|_| LoginError::Timeout(options.timeout))??;
    token::request(
        http,
        &found.as_metadata.token_endpoint,
        &ClientAuth::of(client),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", verifier.secret()),
            ("resource", &found.resource),
        ],
    )
    .await
    .map_err(LoginError::Exchange)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scope_follows_the_spec_order() {
        let listed = v(&["read", "write"]);
        let server = v(&["read", "write", "offline_access"]);
        assert_eq!(
            choose_scope(Some("read"), Some(&listed), Some(&server), &[]).as_deref(),
            Some("read offline_access"),
            "the challenge wins; offline_access where the server lists it"
        );
        assert_eq!(
            choose_scope(None, Some(&listed), Some(&server), &[]).as_deref(),
            Some("read write offline_access"),
            "no challenge: every scope the resource lists"
        );
        assert_eq!(
            choose_scope(Some("read"), Some(&listed), Some(&v(&["read"])), &[]).as_deref(),
            Some("read")
        );
        assert_eq!(choose_scope(None, None, None, &[]), None);
        assert_eq!(
            choose_scope(None, None, Some(&v(&["read", "write"])), &[]),
            None,
            "the server's list is not the resource's: with neither challenge nor resource scopes, none"
        );
        assert_eq!(
            choose_scope(Some("read"), None, None, &v(&["admin"])).as_deref(),
            Some("read admin")
        );
    }
}
