//! The authorization response (RFC 6749 §4.1.2): the loopback callback or, when the
//! browser is on another machine, the redirect address the user pastes — and the checks
//! both must pass, through the same function: `state`, `iss` (RFC 9207), `error`, `code`.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use url::Url;

use super::super::discovery::Discovery;
use super::{LoginError, LoginStep, StepOutcome};
use crate::printable::printable;

/// What the authorization response must match.
pub(super) struct Expected<'a> {
    pub state: &'a str,
    pub redirect: &'a Url,
    pub found: &'a Discovery,
}

/// Why a pasted line is not this sign-in's response; the user may paste again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasteProblem {
    #[error("that is not a web address: copy the whole address of the page the sign-in ended on")]
    NotAUrl,
    #[error("that is not where this sign-in returns: the address starts with {0}")]
    Elsewhere(String),
    #[error(
        "that address is from another sign-in (its state does not match): paste the one from this sign-in"
    )]
    WrongState,
    #[error("that address carries no code: copy all of it, everything after '?' included")]
    NoCode,
}

/// Reads a pasted redirect: the redirect URI itself (scheme, host, port, path — `http://`
/// may be missing, as browsers hide it) with the response in its query.
pub fn parse_pasted(line: &str, redirect: &Url) -> Result<HashMap<String, String>, PasteProblem> {
    let line = line.trim();
    if !line.contains('/') || line.contains(char::is_whitespace) {
        return Err(PasteProblem::NotAUrl);
    }
    let full = if line.contains("://") {
        line.to_string()
    } else {
        format!("http://{line}")
    };
    let url = Url::parse(&full).map_err(|_| PasteProblem::NotAUrl)?;
    let same_place = url.scheme() == redirect.scheme()
        && url.host_str() == redirect.host_str()
        && url.port_or_known_default() == redirect.port_or_known_default()
        && url.path() == redirect.path();
    if !same_place {
        return Err(PasteProblem::Elsewhere(redirect.to_string()));
    }
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    if !params.contains_key("code") && !params.contains_key("error") {
        return Err(PasteProblem::NoCode);
    }
    Ok(params)
}

/// A pasted line checked like a callback: the code, a problem worth another paste, or
/// a failure that ends the login (an error from the server, a foreign issuer).
fn check_pasted(
    line: &str,
    expected: &Expected,
) -> Result<Result<String, PasteProblem>, LoginError> {
    let params = match parse_pasted(line, expected.redirect) {
        Ok(p) => p,
        Err(problem) => return Ok(Err(problem)),
    };
    match check_callback(&params, expected.state, expected.found) {
        Ok(code) => Ok(Ok(code)),
        Err(LoginError::StateMismatch) => Ok(Err(PasteProblem::WrongState)),
        Err(LoginError::NoCode) => Ok(Err(PasteProblem::NoCode)),
        Err(e) => Err(e),
    }
}

/// The next pasted line; `None` at the end of input; never, without a paste channel.
async fn next_line(pasted: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match pasted {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Waits for whichever comes first: the loopback callback, or a pasted redirect that
/// passes the checks. A bad paste is reported and another awaited; the end of the pasted
/// input leaves the callback alone.
pub(super) async fn wait(
    mut callbacks: mpsc::Receiver<HashMap<String, String>>,
    mut pasted: Option<mpsc::Receiver<String>>,
    expected: &Expected<'_>,
    step: &(dyn Fn(LoginStep, StepOutcome) + Send + Sync),
) -> Result<String, LoginError> {
    step(LoginStep::WaitingForCallback, StepOutcome::Running);
    if pasted.is_some() {
        let redirect_uri = expected.redirect.to_string();
        step(
            LoginStep::AwaitingPaste { redirect_uri },
            StepOutcome::Running,
        );
    }
    let done = |how: &str| step(LoginStep::WaitingForCallback, StepOutcome::Done(how.into()));
    loop {
        let line = tokio::select! {
            params = callbacks.recv() => {
                let params = params.ok_or(LoginError::Cancelled)?;
                let code = check_callback(&params, expected.state, expected.found)?;
                done("callback received");
                return Ok(code);
            }
            line = next_line(&mut pasted) => line,
        };
        let Some(line) = line else {
            pasted = None;
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        match check_pasted(&line, expected)? {
            Ok(code) => {
                done("pasted address accepted");
                return Ok(code);
            }
            Err(problem) => {
                let reason = problem.to_string();
                step(LoginStep::PasteRejected { reason }, StepOutcome::Running);
            }
        }
    }
}

/// Checks `state`, then `iss` (RFC 9207 §2.4, byte for byte), then errors, then the code.
pub(super) fn check_callback(
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

const SIGNED_IN: &str =
    "<!doctype html><title>tether</title><p>tether: signed in. You can close this tab.</p>";
const NOT_COMPLETED: &str = "<!doctype html><title>tether</title><p>tether: the sign-in did not complete. Return to tether for the reason.</p>";
const NOT_THIS: &str = "<!doctype html><title>tether</title><p>tether: this is not the sign-in tether is waiting for; it keeps waiting. You can close this tab.</p>";

/// The `Host` values the callback answers to: the redirect URI's own, and the two
/// loopback names for its port. Anything else is a page reaching 127.0.0.1 under a name
/// of its own (DNS rebinding) and is not this sign-in.
fn callback_hosts(redirect: &Url, port: u16) -> Vec<String> {
    let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    names.extend(redirect.host_str().map(str::to_ascii_lowercase));
    let mut hosts: Vec<String> = names.iter().map(|n| format!("{n}:{port}")).collect();
    if port == 80 {
        hosts.extend(names);
    }
    hosts
}

/// Compares a secret in time that does not depend on where the first difference is, so a
/// local process cannot learn `state` byte by byte from the callback's answers.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Serves the loopback callback until the returned guard is dropped. Only a request for
/// this sign-in — the redirect URI's `Host` and this login's `state` — reaches the login;
/// any other is answered 400 and the login keeps waiting, so a stray request (a web page's
/// `<img src=…/callback>`, another local process) cannot end it.
pub(super) async fn listen(
    redirect: &Url,
    state: String,
) -> Result<(mpsc::Receiver<HashMap<String, String>>, ServerGuard), LoginError> {
    use axum::http::{HeaderMap, StatusCode, header::HOST};
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
    let hosts = callback_hosts(redirect, port);
    let app = axum::Router::new().route(
        &path,
        axum::routing::get(
            move |headers: HeaderMap,
                  axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                let tx = tx.clone();
                let host_ok = headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .is_some_and(|h| hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)));
                let state_ok = q.get("state").is_some_and(|s| same_secret(s, &state));
                async move {
                    if !(host_ok && state_ok) {
                        return (StatusCode::BAD_REQUEST, axum::response::Html(NOT_THIS));
                    }
                    let ok = q.contains_key("code") && !q.contains_key("error");
                    let _ = tx.send(q).await;
                    let page = if ok { SIGNED_IN } else { NOT_COMPLETED };
                    (StatusCode::OK, axum::response::Html(page))
                }
            },
        ),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((rx, ServerGuard(task)))
}

pub(super) struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Plays a browser for a server that consents automatically: GET the authorization URL
/// without following redirects, then deliver the redirect to the loopback callback.
pub(super) async fn follow_without_browser(url: Url) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect() -> Url {
        Url::parse("http://127.0.0.1:33418/callback").unwrap()
    }

    #[test]
    fn the_callback_answers_to_its_own_loopback_host_only() {
        let hosts = callback_hosts(&redirect(), 33418);
        assert_eq!(
            hosts,
            ["127.0.0.1:33418", "localhost:33418", "127.0.0.1:33418"]
        );
        let local = Url::parse("http://LOCALHOST/callback").unwrap();
        assert!(callback_hosts(&local, 80).contains(&"localhost".to_string()));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "ab"));
    }

    #[test]
    fn a_pasted_redirect_gives_its_query() {
        let p = parse_pasted(
            "  http://127.0.0.1:33418/callback?code=abc&state=xyz&iss=http%3A%2F%2Fas \n",
            &redirect(),
        )
        .unwrap();
        assert_eq!(p["code"], "abc");
        assert_eq!(p["state"], "xyz");
        assert_eq!(p["iss"], "http://as");
        let bare = parse_pasted("127.0.0.1:33418/callback?code=abc&state=s", &redirect());
        assert_eq!(
            bare.unwrap()["code"],
            "abc",
            "browsers hide http://; the address still counts"
        );
        let error = parse_pasted(
            "http://127.0.0.1:33418/callback?error=access_denied&state=s",
            &redirect(),
        );
        assert_eq!(error.unwrap()["error"], "access_denied");
    }

    #[test]
    fn a_paste_that_is_not_this_sign_ins_redirect_names_the_problem() {
        let r = redirect();
        assert_eq!(parse_pasted("garbage", &r), Err(PasteProblem::NotAUrl));
        assert_eq!(
            parse_pasted("http://127.0.0.1:33418/callback?code=a b", &r),
            Err(PasteProblem::NotAUrl)
        );
        for elsewhere in [
            "https://as.example/authorize?state=s&client_id=c",
            "http://127.0.0.1:9999/callback?code=a&state=s",
            "http://localhost:33418/callback?code=a&state=s",
            "http://127.0.0.1:33418/other?code=a&state=s",
        ] {
            assert_eq!(
                parse_pasted(elsewhere, &r),
                Err(PasteProblem::Elsewhere(r.to_string())),
                "{elsewhere}"
            );
        }
        assert_eq!(
            parse_pasted("http://127.0.0.1:33418/callback?state=s", &r),
            Err(PasteProblem::NoCode)
        );
        assert_eq!(
            parse_pasted("http://127.0.0.1:33418/callback", &r),
            Err(PasteProblem::NoCode)
        );
    }
}
