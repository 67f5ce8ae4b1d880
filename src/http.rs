//! The one shared HTTP client toward upstream servers: timeouts set, redirects limited,
//! a product user agent. Built once per process and cloned (clones share the pool).

use std::time::Duration;

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

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(request_timeout())
        .redirect(reqwest::redirect::Policy::limited(5))
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
