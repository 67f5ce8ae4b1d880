//! tether: authorize each remote MCP server once, keep its tokens fresh, and serve every
//! MCP client a stable local endpoint.

pub mod cli;
pub mod sim;
