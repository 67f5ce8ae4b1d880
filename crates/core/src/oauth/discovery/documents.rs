//! The two metadata documents discovery reads — RFC 9728 protected resource metadata and
//! RFC 8414 / OpenID Connect Discovery authorization server metadata — and the well-known
//! URLs they live at.
//!
//! Both documents are extensible, so unknown members are ignored; a member of the wrong
//! type is treated as absent rather than failing the whole document, except for the few
//! members the flow cannot do without.

use serde_json::{Map, Value};
use url::Url;

use crate::vault::is_loopback;

/// Authorization server metadata (RFC 8414 §2; OIDC Discovery documents carry the same
/// members, so both are read by this one type).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub registration_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    pub device_authorization_endpoint: Option<Url>,
    pub scopes_supported: Option<Vec<String>>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
    pub grant_types_supported: Option<Vec<String>>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    pub authorization_response_iss_parameter_supported: bool,
    pub client_id_metadata_document_supported: bool,
    /// The document as received (kept in the vault); synthesized for default endpoints.
    pub raw: String,
}

/// Protected resource metadata (RFC 9728 §2).
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedResourceMetadata {
    /// `resource` byte-for-byte as sent; `None` when the server left it out.
    pub resource: Option<String>,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Option<Vec<String>>,
    pub raw: String,
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocError {
    /// Not JSON at all (often an HTML page served for every path): treated as "not here".
    NotJson(String),
    /// JSON, but not a usable document of this kind.
    Invalid(String),
}

impl DocError {
    pub fn reason(&self) -> &str {
        match self {
            DocError::NotJson(r) | DocError::Invalid(r) => r,
        }
    }
}

fn object(raw: &str) -> Result<Map<String, Value>, DocError> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(DocError::Invalid("it is JSON but not an object".into())),
        Err(e) => Err(DocError::NotJson(format!("it is not JSON ({e})"))),
    }
}

fn string(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A list of strings; non-string items are dropped, a non-list counts as absent.
fn strings(map: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    let items = map.get(key)?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
    )
}

fn flag(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn required_url(map: &Map<String, Value>, key: &str) -> Result<Url, DocError> {
    let raw = string(map, key).ok_or_else(|| DocError::Invalid(format!("it has no `{key}`")))?;
    Url::parse(&raw)
        .map_err(|e| DocError::Invalid(format!("its `{key}` '{raw}' is not a URL ({e})")))
}

/// An optional endpoint that does not parse is treated as absent: the flow can go on
/// without it and will say so where it is needed.
fn optional_url(map: &Map<String, Value>, key: &str) -> Option<Url> {
    let raw = string(map, key)?;
    match Url::parse(&raw) {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::warn!(member = key, value = %raw, error = %e, "ignoring an endpoint that is not a URL");
            None
        }
    }
}

impl AuthServerMetadata {
    /// Reads an RFC 8414 or OIDC document. Never panics, whatever the input.
    pub fn from_json(raw: &str) -> Result<Self, DocError> {
        let map = object(raw)?;
        let issuer =
            string(&map, "issuer").ok_or_else(|| DocError::Invalid("it has no `issuer`".into()))?;
        Ok(Self {
            issuer,
            authorization_endpoint: required_url(&map, "authorization_endpoint")?,
            token_endpoint: required_url(&map, "token_endpoint")?,
            registration_endpoint: optional_url(&map, "registration_endpoint"),
            revocation_endpoint: optional_url(&map, "revocation_endpoint"),
            device_authorization_endpoint: optional_url(&map, "device_authorization_endpoint"),
            scopes_supported: strings(&map, "scopes_supported"),
            code_challenge_methods_supported: strings(&map, "code_challenge_methods_supported"),
            grant_types_supported: strings(&map, "grant_types_supported"),
            token_endpoint_auth_methods_supported: strings(
                &map,
                "token_endpoint_auth_methods_supported",
            ),
            authorization_response_iss_parameter_supported: flag(
                &map,
                "authorization_response_iss_parameter_supported",
            ),
            client_id_metadata_document_supported: flag(
                &map,
                "client_id_metadata_document_supported",
            ),
            raw: raw.to_string(),
        })
    }

    /// MCP requires PKCE with S256; anything else is refused before a login starts.
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"))
    }

    /// The first endpoint that would carry secrets in the clear, if any.
    pub fn insecure_endpoint(&self) -> Option<&Url> {
        [
            Some(&self.authorization_endpoint),
            Some(&self.token_endpoint),
            self.registration_endpoint.as_ref(),
            self.revocation_endpoint.as_ref(),
            self.device_authorization_endpoint.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find(|u| !is_secure(u))
    }

    /// The 2025-03-26 fallback: `/authorize`, `/token`, `/register` at the MCP server's
    /// origin, with S256 assumed because that revision already made PKCE mandatory.
    pub fn default_endpoints(origin: &Url) -> Self {
        let at = |path: &str| {
            let mut u = origin.clone();
            u.set_path(path);
            u.set_query(None);
            u.set_fragment(None);
            u
        };
        let issuer = origin.origin().ascii_serialization();
        let (authorize, token, register) = (at("/authorize"), at("/token"), at("/register"));
        let raw = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": authorize.as_str(),
            "token_endpoint": token.as_str(),
            "registration_endpoint": register.as_str(),
            "code_challenge_methods_supported": ["S256"],
        })
        .to_string();
        Self {
            issuer,
            authorization_endpoint: authorize,
            token_endpoint: token,
            registration_endpoint: Some(register),
            revocation_endpoint: None,
            device_authorization_endpoint: None,
            scopes_supported: None,
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            grant_types_supported: None,
            token_endpoint_auth_methods_supported: None,
            authorization_response_iss_parameter_supported: false,
            client_id_metadata_document_supported: false,
            raw,
        }
    }
}

impl ProtectedResourceMetadata {
    /// Reads an RFC 9728 document. Never panics, whatever the input.
    pub fn from_json(raw: &str) -> Result<Self, DocError> {
        let map = object(raw)?;
        let resource = match map.get("resource") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(DocError::Invalid("its `resource` is not a string".into())),
        };
        let authorization_servers = strings(&map, "authorization_servers").unwrap_or_default();
        if authorization_servers.is_empty() {
            return Err(DocError::Invalid(
                "it names no authorization server (`authorization_servers` is missing or empty)"
                    .into(),
            ));
        }
        Ok(Self {
            resource,
            authorization_servers,
            scopes_supported: strings(&map, "scopes_supported"),
            raw: raw.to_string(),
        })
    }
}

/// https, or plain http to this machine only.
pub fn is_secure(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

/// `scheme://host[:port]` + `path`, with no query or fragment.
fn at_origin(base: &Url, path: &str) -> Option<Url> {
    let mut u = base.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.set_path(path);
    Some(u).filter(|u| u.path() == path)
}

/// RFC 9728 §3.1 candidates without a header hint: path-insert (when the MCP URL has a
/// path), then the root form.
pub fn prm_urls(mcp_url: &Url) -> Vec<Url> {
    const WK: &str = "/.well-known/oauth-protected-resource";
    let path = mcp_url.path().trim_end_matches('/');
    let mut out = Vec::new();
    if !path.is_empty()
        && let Some(mut u) = at_origin(mcp_url, &format!("{WK}{path}"))
    {
        u.set_query(mcp_url.query());
        out.push(u);
    }
    out.extend(at_origin(mcp_url, WK));
    out
}

/// RFC 8414 §3.1 and OIDC Discovery §4 candidates, in the order the MCP spec gives:
/// path-insert OAuth, path-insert OIDC, path-append OIDC; for an issuer without a path the
/// two root forms.
pub fn as_metadata_urls(issuer: &Url) -> Vec<Url> {
    const OAUTH: &str = "/.well-known/oauth-authorization-server";
    const OIDC: &str = "/.well-known/openid-configuration";
    // RFC 8414 §3.1: a terminating "/" is removed before inserting.
    let path = issuer.path().trim_end_matches('/');
    let forms: Vec<String> = if path.is_empty() {
        vec![OAUTH.into(), OIDC.into()]
    } else {
        vec![
            format!("{OAUTH}{path}"),
            format!("{OIDC}{path}"),
            format!("{path}{OIDC}"),
        ]
    };
    forms.iter().filter_map(|p| at_origin(issuer, p)).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    fn strs(urls: &[Url]) -> Vec<&str> {
        urls.iter().map(Url::as_str).collect()
    }

    #[test]
    fn prm_urls_insert_the_path_then_fall_back_to_the_root() {
        assert_eq!(
            strs(&prm_urls(&url("https://h.example/public/mcp"))),
            vec![
                "https://h.example/.well-known/oauth-protected-resource/public/mcp",
                "https://h.example/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            strs(&prm_urls(&url("https://h.example/"))),
            vec!["https://h.example/.well-known/oauth-protected-resource"]
        );
        assert_eq!(
            strs(&prm_urls(&url("http://127.0.0.1:8/mcp/?t=1"))),
            vec![
                "http://127.0.0.1:8/.well-known/oauth-protected-resource/mcp?t=1",
                "http://127.0.0.1:8/.well-known/oauth-protected-resource",
            ]
        );
    }

    #[test]
    fn as_urls_follow_the_spec_order_for_path_and_root_issuers() {
        assert_eq!(
            strs(&as_metadata_urls(&url("https://as.example/tenant1/"))),
            vec![
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            strs(&as_metadata_urls(&url("https://as.example"))),
            vec![
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn an_oidc_document_is_understood() {
        let raw = r#"{"issuer":"https://id.example","authorization_endpoint":"https://id.example/auth",
            "token_endpoint":"https://id.example/token","jwks_uri":"https://id.example/jwks",
            "subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"],
            "code_challenge_methods_supported":["plain","S256"],"scopes_supported":["openid",7]}"#;
        let md = AuthServerMetadata::from_json(raw).expect("valid");
        assert!(md.supports_s256());
        assert_eq!(md.scopes_supported, Some(vec!["openid".to_string()]));
        assert_eq!(md.raw, raw);
        assert!(!md.authorization_response_iss_parameter_supported);
    }

    #[test]
    fn required_members_are_required() {
        let no_token = r#"{"issuer":"https://a","authorization_endpoint":"https://a/x"}"#;
        assert!(matches!(
            AuthServerMetadata::from_json(no_token),
            Err(DocError::Invalid(_))
        ));
        assert!(matches!(
            AuthServerMetadata::from_json("<html>"),
            Err(DocError::NotJson(_))
        ));
        assert!(matches!(
            ProtectedResourceMetadata::from_json(r#"{"resource":"https://r"}"#),
            Err(DocError::Invalid(_))
        ));
    }

    #[test]
    fn insecure_endpoints_are_found() {
        let raw = r#"{"issuer":"https://a","authorization_endpoint":"https://a/x",
            "token_endpoint":"https://a/t","registration_endpoint":"http://example.invalid/r"}"#;
        let md = AuthServerMetadata::from_json(raw).expect("valid");
        assert_eq!(
            md.insecure_endpoint().map(Url::as_str),
            Some("http://example.invalid/r")
        );
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".*".prop_map(Value::String),
            prop_oneof![Just("https://a.example/x"), Just("S256"), Just("http://h")]
                .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(4, 48, 8, |inner| {
            let keys = prop_oneof![
                Just("issuer".to_string()),
                Just("authorization_endpoint".to_string()),
                Just("token_endpoint".to_string()),
                Just("code_challenge_methods_supported".to_string()),
                Just("resource".to_string()),
                Just("authorization_servers".to_string()),
                "[a-z_]{1,8}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics(v in json()) {
            let raw = v.to_string();
            if let Ok(md) = AuthServerMetadata::from_json(&raw) {
                let _ = (md.supports_s256(), md.insecure_endpoint());
            }
            let _ = ProtectedResourceMetadata::from_json(&raw);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let raw = String::from_utf8_lossy(&bytes);
            let _ = AuthServerMetadata::from_json(&raw);
            let _ = ProtectedResourceMetadata::from_json(&raw);
        }

        #[test]
        fn well_known_urls_never_panic(s in "(https?://)?[a-z0-9.:/%?#@\\[\\]-]{0,40}") {
            if let Ok(u) = Url::parse(&s) {
                let _ = (prm_urls(&u), as_metadata_urls(&u));
            }
        }
    }
}
