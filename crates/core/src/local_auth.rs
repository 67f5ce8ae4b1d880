//! tether as the authorization server of its own endpoints: a local client that knows only
//! `/c/<name>/mcp` signs in to tether itself (OAuth 2.1 with PKCE), and the user consents on
//! a local page or in the terminal UI. What it receives is a labelled client secret, the
//! same kind `tether url` gives, named after the client.
//!
//! - `client`: dynamic registration (RFC 7591) without storage: the client id carries the
//!   client's name and redirect URIs, sealed with a MAC under a key derived from the vault
//!   key, so a restart forgets nothing and an unauthenticated caller cannot grow the vault.
//! - `consent`: the requests waiting for the user's answer and the authorization codes
//!   handed out, in memory only (a code lives a minute).
//! - `peer`: whose browser is asking, so only the user running tether can consent from a
//!   page (another account on the same machine reaches the same loopback port).
//! - `shared`: the waiting requests in a file for the terminal UIs of other processes, and
//!   their answers sent back to the proxy.
//!
//! The vault side (the client's entry, its refresh token) is in [`crate::access`].

pub mod client;
pub mod consent;
pub mod peer;
pub mod shared;

/// Where tether's own authorization endpoints live on the proxy.
pub mod paths {
    pub const AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    /// Followed by the endpoint's path, as RFC 9728 §3.1 inserts it.
    pub const PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";
    pub const REGISTER: &str = "/oauth/register";
    pub const AUTHORIZE: &str = "/oauth/authorize";
    /// Followed by `/<request id>`.
    pub const CONSENT: &str = "/oauth/consent";
    pub const TOKEN: &str = "/oauth/token";
}

/// An OAuth error answer (RFC 6749 §5.2): its code and a description for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }
}

/// The connection an endpoint URL (`<base>/c/<name>/mcp`, a `resource`) names, when it is
/// one of this tether's at `base`.
pub fn connection_of_resource<'a>(resource: &'a str, base: &str) -> Option<&'a str> {
    let resource = resource.strip_suffix('/').unwrap_or(resource);
    resource
        .strip_prefix(base)?
        .strip_prefix("/c/")?
        .strip_suffix("/mcp")
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// A label for the client's entry from the name it registered with: "Claude Code" →
/// `claude-code`; `signed-in-client` when nothing usable is left.
pub fn label_from_name(name: &str) -> String {
    let mut label = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            label.push(c);
        } else if !label.ends_with('-') && !label.is_empty() {
            label.push('-');
        }
        if label.len() >= 24 {
            break;
        }
    }
    let label = label.trim_end_matches('-').to_string();
    if label.is_empty() {
        "signed-in-client".to_string()
    } else {
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_names_a_connection_only_on_this_tether() {
        let base = "http://127.0.0.1:7878";
        assert_eq!(
            connection_of_resource("http://127.0.0.1:7878/c/linear/mcp", base),
            Some("linear")
        );
        assert_eq!(
            connection_of_resource("http://127.0.0.1:7878/c/linear/mcp/", base),
            Some("linear")
        );
        assert_eq!(
            connection_of_resource("http://127.0.0.1:7879/c/linear/mcp", base),
            None
        );
        assert_eq!(
            connection_of_resource("http://127.0.0.1:7878/c/a/b/mcp", base),
            None
        );
        assert_eq!(
            connection_of_resource("http://127.0.0.1:7878/c//mcp", base),
            None
        );
    }

    #[test]
    fn labels_come_from_the_clients_name() {
        assert_eq!(label_from_name("Claude Code"), "claude-code");
        assert_eq!(label_from_name("codex-mcp-client"), "codex-mcp-client");
        assert_eq!(label_from_name("  VS Code (Insiders) "), "vs-code-insiders");
        assert_eq!(label_from_name("☃☃"), "signed-in-client");
        assert_eq!(label_from_name(&"x".repeat(100)).len(), 24);
    }
}
