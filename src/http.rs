//! The one shared HTTP client toward upstream servers: timeouts set, redirects limited,
//! a product user agent. Built once per process and cloned (clones share the pool).

use std::time::Duration;

/// Connect timeout: an unreachable server is reported quickly.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout for OAuth calls (metadata, registration, token).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        // Building fails only when the TLS backend cannot initialise, which leaves no
        // way to talk to any server; say so plainly.
        .expect("the HTTP client (TLS backend) could not be initialised")
}
