//! The browser sign-in: the authorization request's URL (PKCE, `state`, `resource`), the
//! browser opened or the URL shown, and the code from the callback (or a pasted address)
//! exchanged for a token.

use oauth2::{CsrfToken, PkceCodeChallenge};
use url::Url;

use super::{Browser, LoginError, LoginOptions, LoginStep, StepOutcome, callback, opener};
use crate::oauth::discovery::Discovery;
use crate::oauth::token::{self, ClientAuth, TokenResponse};
use crate::vault::ClientRegistration;

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
pub(super) async fn browser_sign_in(
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
