//! The local endpoints through the binary: forwarding, limits, upstream transports, the conformance suite's server scenarios, the official SDK client, the client applications (Claude Code, Codex, Gemini CLI, Qwen Code, opencode, Copilot CLI) and the logins they make themselves, and sign-in from inside the chat.

#[path = "../support/mod.rs"]
mod support;

mod conformance_server;
mod cors;
mod in_chat_sign_in;
mod local_signin;
mod peer_app_logins;
mod peer_apps;
mod peer_clients;
mod proxy;
mod proxy_limits;
mod proxy_upstreams;
