//! tether as an OAuth client toward upstream MCP servers.

pub mod discovery;
pub mod www_authenticate;
