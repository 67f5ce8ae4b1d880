//! OAuth discovery: from an MCP server URL to its authorization server's metadata, in the
//! order the MCP authorization spec gives, recording every URL tried for diagnostics.
//!
//! 1. Probe: an unauthenticated `initialize`; a 401 carries the Bearer challenge.
//! 2. Protected resource metadata (RFC 9728): the challenge's `resource_metadata`, else the
//!    path-insert well-known URL, else the root one.
//! 3. Authorization server metadata (RFC 8414 / OIDC Discovery) for the first listed issuer,
//!    whose `issuer` must equal that issuer byte for byte.
//! 4. Without any protected resource metadata (2025-03-26 servers): metadata at the MCP
//!    server's origin, else the default `/authorize`, `/token`, `/register` there.
//!
//! PKCE with S256 is required and every endpoint must be https (loopback excepted): a server
//! failing either is refused here, before any login starts.

mod documents;
mod error;
mod fetch;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use url::Url;

pub use documents::{
    AuthServerMetadata, DocError, ProtectedResourceMetadata, as_metadata_urls, is_secure, prm_urls,
};
pub use error::{DiscoveryError, tried_list};
pub use fetch::MAX_METADATA_BYTES;

use super::www_authenticate::{self, BearerChallenge};
use crate::vault::{Discovered, TriedUrl};
use fetch::Fetched;

/// How the authorization server metadata was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSource {
    /// Through protected resource metadata, as the current spec requires.
    Discovered,
    /// No protected resource metadata; RFC 8414 metadata at the MCP server's origin.
    Legacy2025_03_26Origin,
    /// No metadata at all; `/authorize`, `/token`, `/register` at the MCP server's origin.
    DefaultEndpoints,
}

/// Everything discovery learned about one MCP server.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    pub mcp_url: Url,
    /// The Bearer challenge from the unauthenticated probe, if there was one.
    pub challenge: Option<BearerChallenge>,
    /// The protected resource metadata URL that answered.
    pub resource_metadata_url: Option<Url>,
    pub resource_metadata: Option<ProtectedResourceMetadata>,
    /// The RFC 8707 `resource`: the metadata's value byte for byte, else the canonical URL.
    pub resource: String,
    pub issuer: String,
    pub as_metadata: AuthServerMetadata,
    pub source: MetadataSource,
    /// Every URL fetched, in order, with its status or error.
    pub tried: Vec<TriedUrl>,
}

impl Discovery {
    /// The part kept in the vault.
    pub fn to_discovered(&self, at: DateTime<Utc>) -> Discovered {
        Discovered {
            resource_metadata_url: self.resource_metadata_url.clone(),
            resource: self.resource.clone(),
            issuer: self.issuer.clone(),
            as_metadata: self.as_metadata.raw.clone(),
            tried: self.tried.clone(),
            at,
        }
    }
}

/// The MCP URL as an RFC 8707 resource: no fragment, and no trailing slash when the path
/// is empty (`https://mcp.example.com`, not `https://mcp.example.com/`).
pub fn canonical_resource(mcp_url: &Url) -> String {
    let mut u = mcp_url.clone();
    u.set_fragment(None);
    let s = u.to_string();
    if u.path() == "/"
        && u.query().is_none()
        && let Some(stripped) = s.strip_suffix('/')
    {
        return stripped.to_string();
    }
    s
}

/// Runs the whole discovery for `mcp_url` with the shared client (its timeouts and
/// redirect policy apply).
pub async fn discover(http: &reqwest::Client, mcp_url: &Url) -> Result<Discovery, DiscoveryError> {
    let mut tried = Vec::new();
    if !is_secure(mcp_url) {
        return Err(DiscoveryError::Insecure {
            url: mcp_url.to_string(),
            tried,
        });
    }
    let probe = match fetch::probe(http, mcp_url, &mut tried).await {
        Ok(p) => p,
        Err(reason) => {
            return Err(DiscoveryError::Unreachable {
                url: mcp_url.to_string(),
                reason,
                tried,
            });
        }
    };
    // Some servers answer 400 or 405 to a tokenless POST; discovery goes on regardless.
    let challenge = www_authenticate::bearer(&probe.headers);
    let asked_for_login = probe.status == StatusCode::UNAUTHORIZED;
    let hint = challenge
        .as_ref()
        .and_then(|c| c.resource_metadata.as_deref());

    let found = find_prm(http, mcp_url, hint, &mut tried).await?;
    let Some((prm_url, prm)) = found else {
        // A server that lets `initialize` through and publishes no protected resource
        // metadata needs no OAuth; one that does publish it authorizes per method (its
        // tools ask for a token, or more scope, later), so discovery goes on.
        if probe.status.is_success() {
            return Err(DiscoveryError::NoAuthRequired { tried });
        }
        return legacy(http, mcp_url, challenge, asked_for_login, tried).await;
    };
    let resource = match &prm.resource {
        Some(r) => {
            check_resource(r, mcp_url, &prm_url, &mut tried)?;
            r.clone()
        }
        None => canonical_resource(mcp_url),
    };
    let Some(issuer) = prm.authorization_servers.first().cloned() else {
        return Err(DiscoveryError::BadDocument {
            url: prm_url.to_string(),
            reason: "it names no authorization server".into(),
            tried,
        });
    };
    // (Plain http off this machine is refused as such by `fetch_as_metadata`.)
    if let Ok(issuer_url) = Url::parse(&issuer)
        && is_secure(&issuer_url)
    {
        unsafe_target(&prm_url, &issuer_url, &mut tried)?;
    }
    let as_metadata = fetch_as_metadata(http, &issuer, &mut tried).await?;
    Ok(Discovery {
        mcp_url: mcp_url.clone(),
        challenge,
        resource_metadata_url: Some(prm_url),
        resource_metadata: Some(prm),
        resource,
        issuer,
        as_metadata,
        source: MetadataSource::Discovered,
        tried,
    })
}

/// The first usable protected resource metadata among the challenge's URL and the
/// well-known ones; `None` when there is none (a 2025-03-26 server).
async fn find_prm(
    http: &reqwest::Client,
    mcp_url: &Url,
    hint: Option<&str>,
    tried: &mut Vec<TriedUrl>,
) -> Result<Option<(Url, ProtectedResourceMetadata)>, DiscoveryError> {
    let mut candidates = Vec::new();
    if let Some(raw) = hint {
        match Url::parse(raw) {
            Ok(u) if !is_secure(&u) => {
                return Err(DiscoveryError::Insecure {
                    url: u.to_string(),
                    tried: std::mem::take(tried),
                });
            }
            Ok(u) => {
                unsafe_target(mcp_url, &u, tried)?;
                candidates.push(u);
            }
            Err(e) => tried.push(TriedUrl {
                url: raw.to_string(),
                status: None,
                error: Some(format!(
                    "the challenge's resource_metadata is not a URL ({e}); skipped"
                )),
            }),
        }
    }
    // The header URL first; if it fails, the well-known forms still may answer.
    for u in prm_urls(mcp_url) {
        if !candidates.contains(&u) {
            candidates.push(u);
        }
    }
    for url in candidates {
        if let Fetched::Body(raw) = fetch::get_document(http, &url, tried).await {
            match ProtectedResourceMetadata::from_json(&raw) {
                Ok(prm) => return Ok(Some((url, prm))),
                Err(e) => fetch::note_unusable(tried, e.reason()),
            }
        }
    }
    Ok(None)
}

/// Refuses `target`, named by metadata from `source`, where it reaches deeper into the
/// user's network than `source` (see [`super::reach`]).
fn unsafe_target(
    source: &Url,
    target: &Url,
    tried: &mut Vec<TriedUrl>,
) -> Result<(), DiscoveryError> {
    match super::reach::refusal(source, target) {
        None => Ok(()),
        Some(reason) => Err(DiscoveryError::Unsafe {
            url: crate::printable::printable(target.as_str(), 300),
            named_by: source.to_string(),
            reason,
            tried: std::mem::take(tried),
        }),
    }
}

/// RFC 9728 §3.3: the metadata must describe the resource it was fetched for. Any other
/// `resource` — another origin, or another path on this one (another tenant, say) — would
/// have tether ask for, and send, tokens meant for a different resource, so it is refused.
fn check_resource(
    resource: &str,
    mcp_url: &Url,
    prm_url: &Url,
    tried: &mut Vec<TriedUrl>,
) -> Result<(), DiscoveryError> {
    let at_root = prm_url.path() == ROOT_PRM_PATH;
    if Url::parse(resource).is_ok_and(|r| same_resource(&r, mcp_url, at_root)) {
        return Ok(());
    }
    Err(DiscoveryError::BadDocument {
        url: prm_url.to_string(),
        reason: format!(
            "it describes resource '{}', not this MCP server '{}' (RFC 9728 §3.3), so its authorization server cannot be trusted for it",
            crate::printable::printable(resource, 300),
            canonical_resource(mcp_url)
        ),
        tried: std::mem::take(tried),
    })
}

/// The root form of the protected resource metadata URL.
const ROOT_PRM_PATH: &str = "/.well-known/oauth-protected-resource";

/// Whether `resource` names the MCP server at `mcp_url`, after the normalisation URLs
/// allow: scheme and host case and a default port (the parser already folds those), a
/// trailing slash, a fragment. A document at the root well-known URL was asked for the
/// origin (RFC 9728 §3.1 inserts nothing), so there the origin itself also matches.
fn same_resource(resource: &Url, mcp_url: &Url, at_root: bool) -> bool {
    let key = |u: &Url| {
        (
            u.origin(),
            u.path().trim_end_matches('/').to_string(),
            u.query().map(str::to_string),
        )
    };
    let (origin, path, query) = key(resource);
    let wanted = key(mcp_url);
    if origin != wanted.0 {
        return false;
    }
    (path == wanted.1 && query == wanted.2) || (at_root && path.is_empty() && query.is_none())
}

/// Fetches and checks the metadata of `issuer` (as written in protected resource metadata):
/// the well-known forms in spec order, the first whose `issuer` is identical wins, then
/// https endpoints and S256 are required.
pub async fn fetch_as_metadata(
    http: &reqwest::Client,
    issuer: &str,
    tried: &mut Vec<TriedUrl>,
) -> Result<AuthServerMetadata, DiscoveryError> {
    let issuer_url = match Url::parse(issuer) {
        Ok(u) if u.query().is_none() && u.fragment().is_none() && u.has_host() => u,
        _ => {
            return Err(DiscoveryError::BadDocument {
                url: issuer.to_string(),
                reason: "the issuer is not a URL without query or fragment (RFC 8414 §2)".into(),
                tried: std::mem::take(tried),
            });
        }
    };
    if !is_secure(&issuer_url) {
        return Err(DiscoveryError::Insecure {
            url: issuer.to_string(),
            tried: std::mem::take(tried),
        });
    }
    let mut mismatch: Option<(String, Url)> = None;
    let mut invalid: Option<(Url, String)> = None;
    let mut no_answer: Option<(Url, String)> = None;
    let mut answered = false;
    for url in as_metadata_urls(&issuer_url) {
        let raw = match fetch::get_document(http, &url, tried).await {
            Fetched::Body(raw) => raw,
            Fetched::Miss => {
                answered = true;
                continue;
            }
            Fetched::NoAnswer(reason) => {
                no_answer.get_or_insert((url, reason));
                continue;
            }
        };
        answered = true;
        match AuthServerMetadata::from_json(&raw) {
            // RFC 8414 §3.3: identical, or the data must not be used.
            Ok(md) if md.issuer == issuer => return accept(md, &issuer_url, tried),
            Ok(md) => {
                fetch::note_unusable(
                    tried,
                    &format!("its issuer is '{}', not '{issuer}'", md.issuer),
                );
                mismatch.get_or_insert((md.issuer, url));
            }
            Err(e) => {
                fetch::note_unusable(tried, e.reason());
                if let DocError::Invalid(reason) = e {
                    invalid.get_or_insert((url, reason));
                }
            }
        }
    }
    let tried = std::mem::take(tried);
    Err(match (mismatch, invalid, no_answer) {
        (Some((found, url)), _, _) => DiscoveryError::IssuerMismatch {
            expected: issuer.to_string(),
            found,
            url: url.to_string(),
            tried,
        },
        (None, Some((url, reason)), _) => DiscoveryError::BadDocument {
            url: url.to_string(),
            reason,
            tried,
        },
        (None, None, Some((url, reason))) if !answered => DiscoveryError::Unreachable {
            url: url.to_string(),
            reason,
            tried,
        },
        _ => DiscoveryError::NotFound {
            what: format!("authorization server metadata for '{issuer}'"),
            tried,
        },
    })
}

fn accept(
    md: AuthServerMetadata,
    issuer_url: &Url,
    tried: &mut Vec<TriedUrl>,
) -> Result<AuthServerMetadata, DiscoveryError> {
    if let Some(url) = md.insecure_endpoint() {
        return Err(DiscoveryError::Insecure {
            url: url.to_string(),
            tried: std::mem::take(tried),
        });
    }
    // The endpoints tether itself sends requests to (the authorization endpoint is only
    // opened in the user's browser).
    let requested = [
        Some(&md.token_endpoint),
        md.registration_endpoint.as_ref(),
        md.revocation_endpoint.as_ref(),
        md.device_authorization_endpoint.as_ref(),
    ];
    for endpoint in requested.into_iter().flatten() {
        unsafe_target(issuer_url, endpoint, tried)?;
    }
    if !md.supports_s256() {
        return Err(DiscoveryError::PkceUnsupported {
            issuer: md.issuer,
            methods: md.code_challenge_methods_supported.unwrap_or_default(),
            tried: std::mem::take(tried),
        });
    }
    Ok(md)
}

/// The 2025-03-26 path for servers without protected resource metadata.
async fn legacy(
    http: &reqwest::Client,
    mcp_url: &Url,
    challenge: Option<BearerChallenge>,
    asked_for_login: bool,
    mut tried: Vec<TriedUrl>,
) -> Result<Discovery, DiscoveryError> {
    // That revision's authorization base URL is the MCP URL with its path discarded.
    let origin = mcp_url.origin().ascii_serialization();
    let (as_metadata, source) = match fetch_as_metadata(http, &origin, &mut tried).await {
        Ok(md) => (md, MetadataSource::Legacy2025_03_26Origin),
        // Default endpoints only for a server that asked for a login: guessing endpoints
        // for one that answered 404 or 405 would hide a wrong URL.
        Err(DiscoveryError::NotFound { tried: t, .. }) if asked_for_login => {
            tried = t;
            (
                AuthServerMetadata::default_endpoints(mcp_url),
                MetadataSource::DefaultEndpoints,
            )
        }
        Err(DiscoveryError::NotFound { tried, .. }) => {
            return Err(DiscoveryError::NotFound {
                what: "OAuth metadata, and the server did not answer 401 to ask for a login".into(),
                tried,
            });
        }
        Err(e) => return Err(e),
    };
    Ok(Discovery {
        mcp_url: mcp_url.clone(),
        challenge,
        resource_metadata_url: None,
        resource_metadata: None,
        resource: canonical_resource(mcp_url),
        issuer: as_metadata.issuer.clone(),
        as_metadata,
        source,
        tried,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_matches_only_its_own_url_up_to_normalisation() {
        let u = |s: &str| Url::parse(s).expect("test URL");
        let mcp = u("https://mcp.example.com/mcp");
        for same in [
            "https://mcp.example.com/mcp",
            "HTTPS://MCP.Example.com:443/mcp/",
            "https://mcp.example.com/mcp#frag",
        ] {
            assert!(same_resource(&u(same), &mcp, false), "{same}");
        }
        for other in [
            "https://mcp.example.com/other",
            "https://mcp.example.com/mcp/tenant",
            "https://mcp.example.com/mcp?tenant=2",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://evil.example.com/mcp",
            "https://mcp.example.com",
        ] {
            assert!(!same_resource(&u(other), &mcp, false), "{other}");
        }
        // The root document was asked for the origin.
        assert!(same_resource(&u("https://mcp.example.com/"), &mcp, true));
        assert!(same_resource(&u("https://mcp.example.com/mcp"), &mcp, true));
        assert!(!same_resource(&u("https://mcp.example.com/x"), &mcp, true));
        assert!(!same_resource(&u("https://evil.example.com"), &mcp, true));
    }

    #[test]
    fn canonical_resource_drops_fragment_and_the_slash_of_an_empty_path() {
        let c = |s: &str| canonical_resource(&Url::parse(s).expect("test URL"));
        assert_eq!(c("https://mcp.example.com/"), "https://mcp.example.com");
        assert_eq!(c("https://mcp.example.com"), "https://mcp.example.com");
        assert_eq!(
            c("https://MCP.example.com:443/mcp#x"),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(
            c("http://127.0.0.1:8080/mcp/"),
            "http://127.0.0.1:8080/mcp/"
        );
        assert_eq!(
            c("https://h.example/?tenant=1"),
            "https://h.example/?tenant=1"
        );
    }
}
