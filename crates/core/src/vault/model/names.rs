//! What a user types to add a connection — its name and its upstream URL — and the checks
//! that refuse a bad one with a sentence saying what to give instead.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::Url;

/// A connection name: `[a-z0-9-]{1,32}`, used in URLs and commands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionName(String);

impl ConnectionName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "connection name '{0}' is not valid: use 1 to 32 characters from a-z, 0-9 and '-' (for example 'linear' or 'github-work')"
)]
pub struct InvalidName(pub String);

impl TryFrom<String> for ConnectionName {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, InvalidName> {
        let ok = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value))
        } else {
            Err(InvalidName(value))
        }
    }
}

impl std::str::FromStr for ConnectionName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, InvalidName> {
        Self::try_from(s.to_string())
    }
}

impl From<ConnectionName> for String {
    fn from(name: ConnectionName) -> String {
        name.0
    }
}

impl fmt::Display for ConnectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUpstream {
    #[error(
        "URL '{0}' is not valid: {1}; give an absolute URL such as https://mcp.example.com/mcp"
    )]
    Parse(String, String),
    #[error("URL '{0}' uses '{1}': use an https:// URL (http:// only for 127.0.0.1 or localhost)")]
    Scheme(String, String),
    #[error(
        "URL '{0}' uses plain http for a host that is not loopback: use https:// (tokens would travel in the clear)"
    )]
    InsecureHost(String),
    #[error(
        "URL '{0}' carries a user name or password: remove it and use --api-key-env for credentials"
    )]
    Credentials(String),
}

/// Checks an upstream MCP URL: absolute http(s), plain http only for loopback, no
/// credentials in the URL, no fragment.
pub fn parse_upstream(raw: &str) -> Result<Url, InvalidUpstream> {
    let mut url =
        Url::parse(raw).map_err(|e| InvalidUpstream::Parse(raw.to_string(), e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(InvalidUpstream::InsecureHost(raw.to_string())),
        other => return Err(InvalidUpstream::Scheme(raw.to_string(), other.to_string())),
    }
    if url.host().is_none() {
        return Err(InvalidUpstream::Parse(
            raw.to_string(),
            "it has no host".to_string(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidUpstream::Credentials(raw.to_string()));
    }
    url.set_fragment(None);
    Ok(url)
}

/// True for `localhost`, 127.0.0.0/8 and `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}
