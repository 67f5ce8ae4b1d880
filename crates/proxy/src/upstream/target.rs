//! Where one upstream URL's requests go — its origin, the URI an HTTP/2 request names, the
//! path and `Host` an HTTP/1.1 one sends — worked out once per URL, not per call.

use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderValue, Uri};

use super::UpstreamError;

/// Where one upstream URL's requests go, worked out once: parsing a URL for every call
/// cost more than the rest of a request's head.
pub struct Target {
    pub(super) origin: Origin,
    /// What an HTTP/2 request names: the whole URI.
    pub(super) absolute: Uri,
    /// What an HTTP/1.1 request names: the path and query (the host goes in `Host`).
    pub(super) path: String,
    pub(super) host: HeaderValue,
}

impl Target {
    pub(super) fn of(url: &str) -> Result<Self, UpstreamError> {
        let absolute: Uri = url
            .parse()
            .map_err(|e| UpstreamError::Failed(format!("the upstream URL is not usable: {e}")))?;
        let origin = origin(&absolute)?;
        let host = HeaderValue::from_str(&host(&origin))
            .map_err(|_| UpstreamError::Failed("the upstream host is not usable".into()))?;
        let path = absolute
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        Ok(Self {
            origin,
            absolute,
            path,
            host,
        })
    }
}

/// Where a connection goes.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Origin {
    pub(super) scheme: Scheme,
    pub(super) authority: Authority,
}
fn origin(uri: &Uri) -> Result<Origin, UpstreamError> {
    match (uri.scheme(), uri.authority()) {
        (Some(scheme), Some(authority)) => Ok(Origin {
            scheme: scheme.clone(),
            authority: authority.clone(),
        }),
        _ => Err(UpstreamError::Failed(format!(
            "the upstream URL '{uri}' has no scheme or host"
        ))),
    }
}

/// The `Host` header for `origin`: the host, and the port where it is not the scheme's
/// default.
fn host(origin: &Origin) -> String {
    let default = if origin.scheme == Scheme::HTTPS {
        443
    } else {
        80
    };
    match origin.authority.port_u16() {
        Some(port) if port != default => format!("{}:{port}", origin.authority.host()),
        _ => origin.authority.host().to_string(),
    }
}
