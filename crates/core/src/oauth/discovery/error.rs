//! Why discovery stopped: each variant names what failed, every URL tried with its answer,
//! and what the user can do about it.

use std::fmt::Write as _;

use crate::vault::{DiagnosisCode, TriedUrl};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiscoveryError {
    #[error(
        "the MCP server answered without asking for a login ({}), so it needs no OAuth: add it without authorization",
        tried_list(.tried)
    )]
    NoAuthRequired { tried: Vec<TriedUrl> },

    #[error(
        "could not reach '{url}' ({reason}; {}): check the URL and your network, then try again",
        tried_list(.tried)
    )]
    Unreachable {
        url: String,
        reason: String,
        tried: Vec<TriedUrl>,
    },

    #[error(
        "found no {what} ({}): check that the URL is the server's MCP endpoint, or ask its operator to publish OAuth metadata",
        tried_list(.tried)
    )]
    NotFound { what: String, tried: Vec<TriedUrl> },

    #[error(
        "the authorization server metadata at '{url}' names issuer '{found}' instead of '{expected}', so it was not used ({}): the server's OAuth setup is wrong, report it to its operator",
        tried_list(.tried)
    )]
    IssuerMismatch {
        expected: String,
        found: String,
        url: String,
        tried: Vec<TriedUrl>,
    },

    #[error(
        "authorization server '{issuer}' does not offer PKCE with S256 (it lists {}), which MCP requires, so tether will not log in there ({}): ask the server's operator to enable S256",
        methods_list(.methods),
        tried_list(.tried)
    )]
    PkceUnsupported {
        issuer: String,
        methods: Vec<String>,
        tried: Vec<TriedUrl>,
    },

    #[error(
        "'{url}' uses plain http on a host that is not this machine, so tokens would travel in the clear and tether refused it ({}): the server must publish https endpoints",
        tried_list(.tried)
    )]
    Insecure { url: String, tried: Vec<TriedUrl> },

    #[error(
        "'{named_by}' points tether at '{url}', {reason}, so tether did not ask it ({}): report the server's metadata to its operator",
        tried_list(.tried)
    )]
    Unsafe {
        url: String,
        named_by: String,
        reason: String,
        tried: Vec<TriedUrl>,
    },

    #[error(
        "the document at '{url}' cannot be used: {reason} ({}): check the URL, or report the server's metadata to its operator",
        tried_list(.tried)
    )]
    BadDocument {
        url: String,
        reason: String,
        tried: Vec<TriedUrl>,
    },
}

impl DiscoveryError {
    /// Every URL fetched before the failure, in order.
    pub fn tried(&self) -> &[TriedUrl] {
        match self {
            Self::NoAuthRequired { tried }
            | Self::Unreachable { tried, .. }
            | Self::NotFound { tried, .. }
            | Self::IssuerMismatch { tried, .. }
            | Self::PkceUnsupported { tried, .. }
            | Self::Insecure { tried, .. }
            | Self::Unsafe { tried, .. }
            | Self::BadDocument { tried, .. } => tried,
        }
    }

    /// The stable diagnosis code (docs/diagnoses.md) this failure is shown under.
    pub fn code(&self) -> DiagnosisCode {
        match self {
            Self::PkceUnsupported { .. } => DiagnosisCode::PkceUnsupported,
            Self::Unreachable { .. } => DiagnosisCode::UpstreamUnreachable,
            _ => DiagnosisCode::DiscoveryFailed,
        }
    }
}

/// `tried: URL → 404, URL → 200 (reason), URL → no answer (reason)`, compact enough for
/// one line in the TUI and the JSON-RPC error a client shows.
pub fn tried_list(tried: &[TriedUrl]) -> String {
    if tried.is_empty() {
        return "nothing was fetched".into();
    }
    let mut out = String::from("tried: ");
    for (i, t) in tried.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = match (t.status, &t.error) {
            (Some(s), None) => write!(out, "{} → {s}", t.url),
            (Some(s), Some(e)) => write!(out, "{} → {s} ({e})", t.url),
            (None, Some(e)) => write!(out, "{} → no answer ({e})", t.url),
            (None, None) => write!(out, "{} → not fetched", t.url),
        };
    }
    out
}

fn methods_list(methods: &[String]) -> String {
    if methods.is_empty() {
        "no code challenge methods".into()
    } else {
        methods.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str, status: Option<u16>, error: Option<&str>) -> TriedUrl {
        TriedUrl {
            url: url.into(),
            status,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn messages_name_the_failure_every_url_and_the_fix() {
        let tried = vec![
            t("https://m.example/mcp", Some(401), None),
            t(
                "https://m.example/.well-known/oauth-protected-resource/mcp",
                Some(404),
                None,
            ),
            t(
                "https://m.example/.well-known/oauth-protected-resource",
                Some(200),
                Some("it is not JSON"),
            ),
            t(
                "https://as.example/.well-known/oauth-authorization-server",
                None,
                Some("timed out"),
            ),
        ];
        let e = DiscoveryError::NotFound {
            what: "authorization server metadata".into(),
            tried,
        };
        assert_eq!(
            e.to_string(),
            "found no authorization server metadata (tried: https://m.example/mcp → 401, \
             https://m.example/.well-known/oauth-protected-resource/mcp → 404, \
             https://m.example/.well-known/oauth-protected-resource → 200 (it is not JSON), \
             https://as.example/.well-known/oauth-authorization-server → no answer (timed out)): \
             check that the URL is the server's MCP endpoint, or ask its operator to publish OAuth metadata"
        );
        assert_eq!(e.code(), DiagnosisCode::DiscoveryFailed);
        assert_eq!(e.tried().len(), 4);
    }

    #[test]
    fn every_message_reads_as_one_actionable_sentence() {
        let tried = || {
            vec![
                t("https://m.example/mcp", Some(401), None),
                t(
                    "https://m.example/.well-known/oauth-protected-resource/mcp",
                    Some(404),
                    None,
                ),
            ]
        };
        let all = [
            DiscoveryError::NoAuthRequired {
                tried: vec![t("https://m.example/mcp", Some(200), None)],
            },
            DiscoveryError::Unreachable {
                url: "https://m.example/mcp".into(),
                reason: "could not connect: Connection refused (os error 111)".into(),
                tried: vec![t("https://m.example/mcp", None, Some("could not connect"))],
            },
            DiscoveryError::NotFound {
                what: "authorization server metadata for 'https://as.example'".into(),
                tried: tried(),
            },
            DiscoveryError::IssuerMismatch {
                expected: "https://as.example".into(),
                found: "https://as.example/".into(),
                url: "https://as.example/.well-known/oauth-authorization-server".into(),
                tried: tried(),
            },
            DiscoveryError::PkceUnsupported {
                issuer: "https://as.example".into(),
                methods: vec![],
                tried: tried(),
            },
            DiscoveryError::Insecure {
                url: "http://as.example/token".into(),
                tried: tried(),
            },
            DiscoveryError::BadDocument {
                url: "https://m.example/.well-known/oauth-protected-resource/mcp".into(),
                reason: "it describes resource 'https://evil.example/mcp', not this MCP server 'https://m.example/mcp', so its authorization server cannot be trusted for it".into(),
                tried: tried(),
            },
        ];
        let text: Vec<String> = all
            .iter()
            .map(|e| format!("[{}] {e}", e.code().as_str()))
            .collect();
        insta::assert_snapshot!(text.join("\n\n"));
    }

    #[test]
    fn codes_follow_the_design_table() {
        let pkce = DiscoveryError::PkceUnsupported {
            issuer: "https://as".into(),
            methods: vec!["plain".into()],
            tried: vec![],
        };
        assert_eq!(pkce.code(), DiagnosisCode::PkceUnsupported);
        assert!(pkce.to_string().contains("(it lists plain)"), "{pkce}");
        let down = DiscoveryError::Unreachable {
            url: "https://m".into(),
            reason: "timed out".into(),
            tried: vec![],
        };
        assert_eq!(down.code(), DiagnosisCode::UpstreamUnreachable);
        assert!(down.to_string().contains("nothing was fetched"));
    }
}
