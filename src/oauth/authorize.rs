//! Login (DESIGN §5, SPEC §A.6–A.9): PKCE S256, a random `state`, `resource` on the
//! authorization and token requests, scope from the challenge or the metadata, a loopback
//! callback on the port pinned in the client's registration, the browser opened (and the
//! URL shown for SSH users), `state` and `iss` verified, the code exchanged, and the
//! result stored in one vault transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use oauth2::{CsrfToken, PkceCodeChallenge};
use tokio::sync::mpsc;
use url::Url;

use super::discovery::{self, Discovery, DiscoveryError};
use super::refresh::{lock_dir, lock_refresh};
use super::registration::{self, RegistrationError};
use super::token::{self, ClientAuth, TokenError, TokenResponse, printable};
use crate::secret::mask;
use crate::vault::{
    Auth, ClientRegistration, Connection, ConnectionState, DiagnosisCode, Discovered, Event,
    EventKind, Evidence, Store, TokenSet, Vault, VaultError,
};

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

pub struct LoginOptions {
    pub browser: Browser,
    /// Register a new client first (the old one is kept as legacy).
    pub reregister: bool,
    /// Scopes to add to what the server asks for (step-up after `insufficient_scope`).
    pub extra_scopes: Vec<String>,
    pub client_metadata_url: Option<Url>,
    /// How long to wait for the browser to come back.
    pub timeout: Duration,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            browser: Browser::System,
            reregister: false,
            extra_scopes: Vec::new(),
            client_metadata_url: None,
            timeout: Duration::from_secs(300),
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
    #[error("no answer from the browser within {0:?}: start the login again")]
    Timeout(Duration),
    #[error("the login was cancelled")]
    Cancelled,
    #[error("exchanging the authorization code failed: {0}")]
    Exchange(TokenError),
    #[error("cannot open the browser ({0}); open the URL shown above by hand")]
    Browser(String),
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
            LoginError::Discovery(_) | LoginError::Registration(_) | LoginError::Exchange(_)
        )
    }

    pub fn diagnosis(&self) -> DiagnosisCode {
        match self {
            LoginError::Discovery(e) => e.code(),
            LoginError::Registration(RegistrationError::Failed { .. }) => {
                DiagnosisCode::ClientRejected
            }
            LoginError::Exchange(e) if e.is_transient() => DiagnosisCode::UpstreamUnreachable,
            LoginError::Exchange(TokenError::OAuth { body, .. })
                if matches!(
                    body.error.as_str(),
                    "invalid_client" | "unauthorized_client"
                ) =>
            {
                DiagnosisCode::ClientRejected
            }
            LoginError::Exchange(TokenError::OAuth { body, .. })
                if body.error == "invalid_scope" =>
            {
                DiagnosisCode::InsufficientScope
            }
            _ => DiagnosisCode::DiscoveryFailed,
        }
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

    step(LoginStep::ClientRegistration, StepOutcome::Running);
    let chosen = match registration::choose(
        http,
        &connection,
        &found,
        options.reregister,
        options.client_metadata_url.as_ref(),
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
        store_registration(vault, name, client.clone()).await?;
    }
    step(
        LoginStep::ClientRegistration,
        StepOutcome::Done(format!(
            "{} client {}",
            if chosen.created {
                "registered"
            } else {
                "reusing"
            },
            mask(&client.client_id)
        )),
    );

    let mut requested = scopes.clone();
    requested.extend(options.extra_scopes.iter().cloned());
    let scope = choose_scope(
        found.challenge.as_ref().and_then(|c| c.scope.as_deref()),
        resource_scopes(&found),
        found.as_metadata.scopes_supported.as_deref(),
        &requested,
    );
    let response = authorize(http, &found, &client, scope.as_deref(), &options, &step).await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            step(LoginStep::WaitingForCallback, failed(e.diagnosis(), &e));
            return Err(e);
        }
    };
    let outcome = store_login(vault, name, &found, &client, scope, response).await?;
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

/// The browser part: listen, open, wait for the callback, check it, exchange the code.
async fn authorize(
    http: &reqwest::Client,
    found: &Discovery,
    client: &ClientRegistration,
    scope: Option<&str>,
    options: &LoginOptions,
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
    let (mut callbacks, _server) = listen(&redirect).await?;

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = CsrfToken::new_random();
    let mut auth_url = found.as_metadata.authorization_endpoint.clone();
    {
        let mut q = auth_url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state.secret())
            .append_pair("resource", &found.resource);
        if let Some(scope) = scope {
            q.append_pair("scope", scope);
        }
    }
    step(
        LoginStep::BrowserOpened {
            url: auth_url.to_string(),
        },
        StepOutcome::Done(String::new()),
    );
    match options.browser {
        Browser::System => {
            webbrowser::open(auth_url.as_str()).map_err(|e| LoginError::Browser(e.to_string()))?
        }
        Browser::Print => {}
        Browser::Fetch => {
            tokio::spawn(follow_without_browser(auth_url.clone()));
        }
    }
    step(LoginStep::WaitingForCallback, StepOutcome::Running);
    let params = tokio::time::timeout(options.timeout, callbacks.recv())
        .await
        .map_err(|_| LoginError::Timeout(options.timeout))?
        .ok_or(LoginError::Cancelled)?;
    let code = check_callback(&params, state.secret(), found)?;
    step(
        LoginStep::WaitingForCallback,
        StepOutcome::Done("callback received".to_string()),
    );
    let auth = ClientAuth::new(
        &client.client_id,
        client.client_secret.as_ref(),
        client.token_endpoint_auth_method.as_deref(),
    );
    let response = token::request(
        http,
        &found.as_metadata.token_endpoint,
        &auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", verifier.secret()),
            ("resource", &found.resource),
        ],
    )
    .await
    .map_err(LoginError::Exchange)?;
    Ok(response)
}

/// Checks `state`, then `iss` (RFC 9207 §2.4, byte for byte), then errors, then the code.
fn check_callback(
    params: &HashMap<String, String>,
    state: &str,
    found: &Discovery,
) -> Result<String, LoginError> {
    if params.get("state").map(String::as_str) != Some(state) {
        return Err(LoginError::StateMismatch);
    }
    let iss = params.get("iss");
    let advertised = found
        .as_metadata
        .authorization_response_iss_parameter_supported;
    match iss {
        Some(iss) if iss != &found.issuer => {
            // On a mismatch nothing else in the response is trusted or shown.
            return Err(LoginError::IssuerMismatch {
                expected: found.issuer.clone(),
                found: Some(printable(iss, 200)),
            });
        }
        None if advertised => {
            return Err(LoginError::IssuerMismatch {
                expected: found.issuer.clone(),
                found: None,
            });
        }
        _ => {}
    }
    if let Some(error) = params.get("error") {
        return Err(LoginError::Denied {
            error: printable(error, 64),
            description: params.get("error_description").map(|d| printable(d, 300)),
        });
    }
    params
        .get("code")
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or(LoginError::NoCode)
}

/// Serves the loopback callback until the returned guard is dropped.
async fn listen(
    redirect: &Url,
) -> Result<(mpsc::Receiver<HashMap<String, String>>, ServerGuard), LoginError> {
    let port = redirect.port_or_known_default().unwrap_or(80);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| LoginError::PortBusy {
            port,
            redirect_uri: redirect.to_string(),
            reason: e.to_string(),
        })?;
    let (tx, rx) = mpsc::channel(4);
    let path = redirect.path().to_string();
    let app = axum::Router::new().route(
        &path,
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    let ok = q.contains_key("code") && !q.contains_key("error");
                    let _ = tx.send(q).await;
                    axum::response::Html(if ok {
                        "<!doctype html><title>tether</title><p>tether: signed in. You can close this tab.</p>"
                    } else {
                        "<!doctype html><title>tether</title><p>tether: the sign-in did not complete. Return to tether for the reason.</p>"
                    })
                }
            },
        ),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((rx, ServerGuard(task)))
}

struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Plays a browser for a server that consents automatically: GET the authorization URL
/// without following redirects, then deliver the redirect to the loopback callback.
async fn follow_without_browser(url: Url) {
    let Ok(client) = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
    else {
        return;
    };
    let Ok(res) = client.get(url).send().await else {
        return;
    };
    let location = res
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| Url::parse(l).ok());
    if let Some(target) = location.filter(crate::vault::is_loopback) {
        let _ = client.get(target).send().await;
    }
}

async fn store_registration(
    vault: &Vault,
    name: &str,
    registration: ClientRegistration,
) -> Result<(), LoginError> {
    let name = name.to_string();
    let now = Utc::now();
    vault
        .transact_async(move |store: &mut Store| {
            let c = store
                .get_mut(&name)
                .ok_or_else(|| LoginError::NotFound(name.clone()))?;
            let mut event = Event::new(
                now,
                EventKind::Registered,
                format!(
                    "registered client {} at {}",
                    mask(&registration.client_id),
                    registration.issuer
                ),
            );
            event.evidence = vec![
                Evidence::new("client", mask(&registration.client_id)),
                Evidence::new("issuer", registration.issuer.clone()),
                Evidence::new(
                    "redirect_uri",
                    registration.redirect_uri.clone().unwrap_or_default(),
                ),
            ];
            c.record(event);
            registration::adopt(c, registration);
            Ok(())
        })
        .await
}

async fn store_login(
    vault: &Vault,
    name: &str,
    found: &Discovery,
    client: &ClientRegistration,
    scope: Option<String>,
    response: TokenResponse,
) -> Result<LoginOutcome, LoginError> {
    // The token may only change under the connection's refresh lock, so a refresh in
    // another process never interleaves with a login.
    let lock_file = lock_dir(vault).join(format!("{name}.lock"));
    let _lock = lock_refresh(lock_file.clone())
        .await
        .map_err(LoginError::Vault)?;
    let name = name.to_string();
    let now = Utc::now();
    let discovered = found.to_discovered(now);
    let client = client.clone();
    let requested: Vec<String> = scope
        .as_deref()
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let outcome = vault
        .transact_async(move |store: &mut Store| {
            let c = store
                .get_mut(&name)
                .ok_or_else(|| LoginError::NotFound(name.clone()))?;
            Ok::<_, LoginError>(apply_login(c, discovered, client, requested, response, now))
        })
        .await?;
    // Still under the refresh lock: the mark never lags the vault.
    super::watermark::raise(super::watermark::path(&lock_file), outcome.generation, None).await;
    Ok(outcome)
}

fn apply_login(
    c: &mut Connection,
    discovered: Discovered,
    client: ClientRegistration,
    requested: Vec<String>,
    response: TokenResponse,
    now: chrono::DateTime<Utc>,
) -> LoginOutcome {
    let previous = c.token.as_ref();
    let generation = previous.map(|t| t.generation + 1).unwrap_or(1);
    let used = previous
        .map(|t| t.used_refresh_hashes.clone())
        .unwrap_or_default();
    let issuer = discovered.issuer.clone();
    let outcome = LoginOutcome {
        issuer: issuer.clone(),
        client_id: client.client_id.clone(),
        scope: response
            .scope
            .clone()
            .or_else(|| Some(requested.join(" ")).filter(|s| !s.is_empty())),
        expires_in: response.expires_in,
        has_refresh_token: response.refresh_token.is_some(),
        generation,
    };
    c.auth = Auth::OAuth {
        scopes: requested,
        discovery: Some(discovered),
    };
    c.token = Some(TokenSet {
        client_id: client.client_id.clone(),
        issuer: issuer.clone(),
        access_token: response.access_token,
        refresh_token: response.refresh_token,
        scope: outcome.scope.clone(),
        expires_at: response
            .expires_in
            .map(|s| now + chrono::Duration::seconds(s.min(i64::MAX as u64 / 2_000) as i64)),
        obtained_at: now,
        generation,
        used_refresh_hashes: used,
    });
    c.journal = None;
    c.state = ConnectionState::Healthy;
    registration::adopt(c, client);
    let mut event = Event::new(
        now,
        EventKind::Authorized,
        format!("authorized at {issuer} (generation {generation})"),
    );
    event.evidence = vec![
        Evidence::new("issuer", issuer),
        Evidence::new("client", mask(&outcome.client_id)),
        Evidence::new(
            "scope",
            outcome.scope.clone().unwrap_or_else(|| "(none)".into()),
        ),
        Evidence::new(
            "lifetime",
            outcome
                .expires_in
                .map(|s| crate::view::duration(s as i64))
                .unwrap_or_else(|| "no expiry".into()),
        ),
    ];
    // Worth knowing, not worth alarming: how this server's tokens behave.
    if !outcome.has_refresh_token {
        event.diagnosis = Some(DiagnosisCode::NoRefreshToken);
    } else if outcome.expires_in.is_some_and(|s| s < 3600) {
        event.diagnosis = Some(DiagnosisCode::ShortLived);
    }
    c.record(event);
    outcome
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
