//! Signing in through the binary: the OAuth flows against scripted and hostile servers, discovery, headless sign-in, the MCP conformance suite's auth scenarios and a real third-party authorization server.

#[path = "../support/mod.rs"]
mod support;

mod conformance_auth;
mod headless_login;
mod oauth_discovery;
mod oauth_flows;
mod peer_oidc;
