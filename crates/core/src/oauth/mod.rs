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
