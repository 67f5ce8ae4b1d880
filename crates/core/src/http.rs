//! The one shared HTTP client toward upstream servers: timeouts set, redirects never
//! followed by the client, a product user agent. Built once per process and cloned
//! (clones share the pool).
//!
//! Nearly every request tether sends upstream carries a credential or a grant (a token,
//! an API key, a code with its PKCE verifier, a client secret, a registration access
//! token), and a redirect would send it again to wherever the server points — another
//! origin, or plain http. So the client follows none: a request that carries a
//! credential treats a 3xx as an error naming the target ([`redirect_target`],
//! [`refused`]), and discovery, which sends none, follows same-origin redirects itself
//! (`oauth::discovery::fetch`).

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

/// Connect timeout: an unreachable server is reported quickly.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout for OAuth calls (metadata, registration, token), unless
/// `TETHER_HTTP_TIMEOUT_SECS` says otherwise.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const TIMEOUT_ENV: &str = "TETHER_HTTP_TIMEOUT_SECS";

pub fn request_timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(REQUEST_TIMEOUT)
}

pub fn client() -> reqwest::Client {
    builder()
        .build()
        // Building fails only when the TLS backend cannot initialise, which leaves no
        // way to talk to any server; say so plainly.
        .expect("the HTTP client (TLS backend) could not be initialised")
}

/// Whether `status` asks the client to go elsewhere (304 Not Modified does not).
pub fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 300..=303 | 305 | 307 | 308)
}

/// Where a redirect answer points, resolved against the request URL; `None` when the
/// answer is no redirect or names no usable `Location`.
pub fn location(res: &reqwest::Response) -> Option<Url> {
    if !is_redirect(res.status()) {
        return None;
    }
    let raw = res
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?;
    res.url().join(raw).ok()
}

/// A redirect target as it may be shown: without user info, query or fragment (a
/// hostile server could echo a secret there), and printable.
pub fn shown(target: &Url) -> String {
    let mut u = target.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    crate::printable::printable(u.as_str(), 200)
}

/// The target of a redirect answer as it may be shown; `None` when `res` is no redirect.
pub fn redirect_target(res: &reqwest::Response) -> Option<String> {
    if !is_redirect(res.status()) {
        return None;
    }
    Some(match location(res) {
        Some(target) => shown(&target),
        None => "(no usable Location header)".to_string(),
    })
}

/// The rest of the sentence, after its subject, for a redirect answered to a request that
/// carried `what`: the target, why it was not followed, and what to check.
pub fn refused(target: &str, what: &str) -> String {
    format!(
        "answered with a redirect to '{target}', and tether does not send {what} to a redirect target: check the server's metadata, or ask its operator to publish the final URL"
    )
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(request_timeout())
        .redirect(reqwest::redirect::Policy::none())
}

/// The client that carries refresh requests: configured like [`client`], but it keeps no
/// connection for reuse, so every token request opens its own. A reset before any answer
/// is then known to be on a fresh connection — not the classic race of a pooled connection
/// the server closed while the request was on its way — which is what lets a refresh send
/// such a request once more (`oauth::refresh::retry`). A refresh happens once per token
/// lifetime, so the extra handshake costs nothing. Its own type, so a pooled client cannot
/// be handed over by mistake.
#[derive(Debug, Clone)]
pub struct TokenClient(reqwest::Client);

impl TokenClient {
    pub fn get(&self) -> &reqwest::Client {
        &self.0
    }
}

/// The process's token client, built on first use and shared by every connection.
pub fn token_client() -> TokenClient {
    static SHARED: std::sync::OnceLock<TokenClient> = std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| {
            TokenClient(
                builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .expect("the HTTP client (TLS backend) could not be initialised"),
            )
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_target_carries_no_query_or_user_info() {
        let u = Url::parse("https://user:pw@evil.example:8443/t?code=abc#frag").expect("URL");
        assert_eq!(shown(&u), "https://evil.example:8443/t");
    }

    #[test]
    fn only_real_redirects_count() {
        for s in [301, 302, 303, 307, 308] {
            assert!(is_redirect(StatusCode::from_u16(s).expect("status")));
        }
        for s in [200, 304, 401, 404] {
            assert!(!is_redirect(StatusCode::from_u16(s).expect("status")));
        }
    }
}
