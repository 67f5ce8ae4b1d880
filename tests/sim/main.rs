//! The simulated providers (`tether sim`): faults, MCP, OAuth and each provider style.

#[path = "../support/mod.rs"]
mod support;

mod sim_faults;
mod sim_mcp;
mod sim_oauth;
mod sim_profiles;
