//! The sign-in requests waiting for the user's answer, and the authorization codes given
//! for the ones allowed. In memory only: a request lives 10 minutes, a code one, and each
//! code is redeemed once, by the client that asked, with the PKCE verifier (S256) that
//! matches its challenge.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::OAuthError;
use crate::secret::Secret;

/// How long a request waits for the user.
pub const REQUEST_LIFE: Duration = Duration::from_secs(600);
/// How long an authorization code may wait to be redeemed.
const CODE_LIFE: Duration = Duration::from_secs(60);
/// Requests kept at once; the oldest waiting one goes first.
const MAX_REQUESTS: usize = 16;
const MAX_CODES: usize = 32;

/// What a client asked for at the authorization endpoint, checked.
#[derive(Debug, Clone)]
pub struct Ask {
    pub client_id: String,
    pub client_name: String,
    pub connection: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    /// The PKCE S256 challenge.
    pub challenge: String,
    pub resource: String,
    /// This tether's issuer identifier, returned as `iss` (RFC 9207).
    pub issuer: String,
}

/// The user's answer so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Waiting,
    Allowed,
    Denied,
}

/// A request as front ends show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub client_name: String,
    pub connection: String,
    pub redirect_uri: String,
    pub decision: Decision,
}

/// Where the browser goes next for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Still waiting for the user.
    Wait,
    /// Back to the client, with a code or `access_denied` (masked when printed: it may
    /// carry a code).
    Redirect(Secret),
    /// The code was already handed out: the client has it.
    Done,
}

/// A redeemed code: whom to give a secret, for which connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub client_id: String,
    pub client_name: String,
    pub connection: String,
}

struct Pending {
    ask: Ask,
    id: String,
    csrf: String,
    at: Instant,
    decision: Decision,
    redirected: bool,
}

struct Code {
    hash: [u8; 32],
    ask: Ask,
    at: Instant,
}

#[derive(Default)]
pub struct Consents {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: Vec<Pending>,
    codes: Vec<Code>,
}

fn random(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl Inner {
    fn forget_old(&mut self) {
        self.pending.retain(|p| p.at.elapsed() < REQUEST_LIFE);
        self.codes.retain(|c| c.at.elapsed() < CODE_LIFE);
    }

    fn find(&mut self, id: &str) -> Option<&mut Pending> {
        self.pending
            .iter_mut()
            .find(|p| bool::from(p.id.as_bytes().ct_eq(id.as_bytes())))
    }
}

impl Consents {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.forget_old();
        inner
    }

    /// Files a request; its id (unguessable: the consent page's address) and the token
    /// the page's form must send back.
    pub fn ask(&self, ask: Ask) -> (String, String) {
        let mut inner = self.lock();
        if inner.pending.len() >= MAX_REQUESTS {
            inner.pending.remove(0);
        }
        let (id, csrf) = (random(24), random(24));
        inner.pending.push(Pending {
            ask,
            id: id.clone(),
            csrf: csrf.clone(),
            at: Instant::now(),
            decision: Decision::Waiting,
            redirected: false,
        });
        (id, csrf)
    }

    /// The request `id` and its form token, while it lives.
    pub fn get(&self, id: &str) -> Option<(Request, String)> {
        let mut inner = self.lock();
        let p = inner.find(id)?;
        Some((view(p), p.csrf.clone()))
    }

    /// Every request still waiting for the user, oldest first.
    pub fn waiting(&self) -> Vec<Request> {
        self.lock()
            .pending
            .iter()
            .filter(|p| p.decision == Decision::Waiting)
            .map(view)
            .collect()
    }

    /// The user's answer to request `id` (from the terminal UI, or the page with its form
    /// token already checked). False when no such request waits.
    pub fn decide(&self, id: &str, allow: bool) -> bool {
        let mut inner = self.lock();
        match inner.find(id) {
            Some(p) if p.decision == Decision::Waiting => {
                p.decision = if allow {
                    Decision::Allowed
                } else {
                    Decision::Denied
                };
                true
            }
            _ => false,
        }
    }

    /// Whether `csrf` is request `id`'s form token.
    pub fn form_token_matches(&self, id: &str, csrf: &str) -> bool {
        let mut inner = self.lock();
        inner
            .find(id)
            .is_some_and(|p| bool::from(p.csrf.as_bytes().ct_eq(csrf.as_bytes())))
    }

    /// Where the browser showing request `id` goes now. An allowed request mints its
    /// code here, once.
    pub fn next(&self, id: &str) -> Option<Next> {
        let mut inner = self.lock();
        let p = inner.find(id)?;
        if p.decision == Decision::Waiting {
            return Some(Next::Wait);
        }
        if p.redirected {
            return Some(Next::Done);
        }
        p.redirected = true;
        let ask = p.ask.clone();
        let code = (p.decision == Decision::Allowed).then(|| random(32));
        let mut url = url::Url::parse(&ask.redirect_uri).ok()?;
        {
            let mut q = url.query_pairs_mut();
            match &code {
                Some(code) => {
                    q.append_pair("code", code);
                }
                None => {
                    q.append_pair("error", "access_denied");
                    q.append_pair(
                        "error_description",
                        "the user did not allow this client to use the connection",
                    );
                }
            }
            if let Some(state) = &ask.state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &ask.issuer);
        }
        if let Some(code) = code {
            if inner.codes.len() >= MAX_CODES {
                inner.codes.remove(0);
            }
            inner.codes.push(Code {
                hash: hash(&code),
                ask,
                at: Instant::now(),
            });
        }
        Some(Next::Redirect(Secret::new(url.to_string())))
    }

    /// Redeems an authorization code (RFC 6749 §4.1.3 with PKCE, RFC 7636 §4.6): once,
    /// by the client it was given to, with the same redirect URI and the verifier.
    pub fn redeem(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        verifier: &str,
    ) -> Result<Granted, OAuthError> {
        let mut inner = self.lock();
        let h = hash(code);
        let Some(at) = inner
            .codes
            .iter()
            .position(|c| bool::from(c.hash.ct_eq(&h)))
        else {
            return Err(OAuthError::invalid_grant(
                "the authorization code is unknown, used already or expired: sign in again",
            ));
        };
        let c = inner.codes.remove(at);
        if c.ask.client_id != client_id {
            return Err(OAuthError::invalid_grant(
                "the authorization code was given to another client",
            ));
        }
        if redirect_uri.is_some_and(|r| r != c.ask.redirect_uri) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the one the code was asked with",
            ));
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if !(43..=128).contains(&verifier.len())
            || !bool::from(computed.as_bytes().ct_eq(c.ask.challenge.as_bytes()))
        {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge (PKCE S256)",
            ));
        }
        Ok(Granted {
            client_id: c.ask.client_id,
            client_name: c.ask.client_name,
            connection: c.ask.connection,
        })
    }
}

fn view(p: &Pending) -> Request {
    Request {
        id: p.id.clone(),
        client_name: p.ask.client_name.clone(),
        connection: p.ask.connection.clone(),
        redirect_uri: p.ask.redirect_uri.clone(),
        decision: p.decision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn ask() -> Ask {
        Ask {
            client_id: "c1".into(),
            client_name: "Codex".into(),
            connection: "linear".into(),
            redirect_uri: "http://127.0.0.1:4444/callback".into(),
            state: Some("s t".into()),
            challenge: CHALLENGE.into(),
            resource: "http://127.0.0.1:7878/c/linear/mcp".into(),
            issuer: "http://127.0.0.1:7878".into(),
        }
    }

    fn code_of(next: Next) -> String {
        let Next::Redirect(url) = next else {
            panic!("{next:?}")
        };
        let url = url::Url::parse(url.expose()).unwrap();
        let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1;
        assert!(url.query_pairs().any(|(k, v)| k == "state" && v == "s t"));
        assert!(
            url.query_pairs()
                .any(|(k, v)| k == "iss" && v == "http://127.0.0.1:7878")
        );
        code.to_string()
    }

    #[test]
    fn an_allowed_request_gives_one_code_redeemed_once_with_the_verifier() {
        let consents = Consents::default();
        let (id, csrf) = consents.ask(ask());
        assert!(consents.form_token_matches(&id, &csrf));
        assert!(!consents.form_token_matches(&id, "forged"));
        assert_eq!(consents.next(&id), Some(Next::Wait));
        assert_eq!(consents.waiting().len(), 1);
        assert!(consents.decide(&id, true));
        assert!(!consents.decide(&id, false), "an answer is final");
        assert!(consents.waiting().is_empty());
        let code = code_of(consents.next(&id).unwrap());
        assert_eq!(consents.next(&id), Some(Next::Done));
        let wrong = consents.redeem(&code, "c1", None, &"x".repeat(43));
        assert_eq!(wrong.unwrap_err().code, "invalid_grant");
        let (id, _) = consents.ask(ask());
        consents.decide(&id, true);
        let code = code_of(consents.next(&id).unwrap());
        assert_eq!(
            consents
                .redeem(&code, "c2", None, VERIFIER)
                .unwrap_err()
                .description,
            "the authorization code was given to another client"
        );
        let (id, _) = consents.ask(ask());
        consents.decide(&id, true);
        let code = code_of(consents.next(&id).unwrap());
        let granted = consents
            .redeem(
                &code,
                "c1",
                Some("http://127.0.0.1:4444/callback"),
                VERIFIER,
            )
            .unwrap();
        assert_eq!(granted.connection, "linear");
        assert!(
            consents.redeem(&code, "c1", None, VERIFIER).is_err(),
            "a code is redeemed once"
        );
    }

    #[test]
    fn a_denied_request_sends_access_denied() {
        let consents = Consents::default();
        let (id, _) = consents.ask(ask());
        consents.decide(&id, false);
        let Some(Next::Redirect(url)) = consents.next(&id) else {
            panic!()
        };
        assert!(
            url.expose().contains("error=access_denied"),
            "{}",
            url.expose()
        );
        assert!(!url.expose().contains("code="));
        assert_eq!(consents.get("unknown"), None);
    }
}
