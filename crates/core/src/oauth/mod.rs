//! tether as an OAuth client toward upstream MCP servers: discovery, client registration,
//! login, token requests and the refresh engine — everything needed to authorize once and
//! stay authorized. Knows no screen and no server.

pub mod authorize;
pub mod discovery;
pub mod reach;
pub mod refresh;
pub mod registration;
pub mod spent;
pub mod token;
pub mod watermark;
pub mod www_authenticate;

/// The loopback port a client registered by hand redirects to unless the user names
/// another.
pub const DEFAULT_CALLBACK_PORT: u16 = 33418;

/// The redirect URI of tether's loopback callback on `port`: what a registration names and
/// the callback listener serves.
pub fn callback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/callback")
}
