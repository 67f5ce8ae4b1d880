//! CORS for the MCP endpoints, so a web client (the MCP Inspector's web UI) served from an
//! origin listed in `[proxy] allowed_origins` can call tether from the browser: its
//! preflight is answered, and its answers say which headers it may read. Only listed
//! origins are granted: a loopback origin the guard lets through (a tool on this machine)
//! gets no CORS headers unless it is listed too, and neither does any other. CORS gives a
//! page nothing without an endpoint secret: every call still needs one.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use tether_core::config::ProxyConfig;

use crate::{Answer, Reply};

const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("POST, GET, DELETE, OPTIONS");
/// What an MCP client sends beyond the CORS-safelisted headers (Streamable HTTP, SEP-2243's
/// `Mcp-Method`/`Mcp-Name`, resumption).
const ALLOW_HEADERS: HeaderValue = HeaderValue::from_static(
    "authorization, content-type, accept, mcp-protocol-version, mcp-session-id, mcp-method, mcp-name, last-event-id",
);
/// What a client must read of an answer: its session, and why it was refused.
const EXPOSE_HEADERS: HeaderValue = HeaderValue::from_static("Mcp-Session-Id, WWW-Authenticate");
/// How long a browser may keep a preflight's answer (Chromium caps it at 2 hours).
const MAX_AGE: HeaderValue = HeaderValue::from_static("7200");
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");

/// The request's `Origin` when it is listed in `[proxy] allowed_origins`.
pub fn granted(config: &ProxyConfig, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    config
        .allowed_origins
        .iter()
        .any(|a| a.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// Whether `headers` are a CORS preflight's (of an `OPTIONS` request).
pub fn is_preflight(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight from a page of a granted origin. It names no connection and
/// checks no secret: a preflight carries none, and it says the same for every endpoint.
pub fn preflight(config: &ProxyConfig, headers: &HeaderMap) -> Answer {
    let mut answer = Answer::new(Reply::Own(Body::empty()));
    *answer.status_mut() = StatusCode::NO_CONTENT;
    let Some(origin) = granted(config, headers) else {
        return answer;
    };
    let out = answer.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
    out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
    out.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
    out.append(header::VARY, VARY_ORIGIN);
    answer
}

/// Sets the CORS headers of the answer to a page's request (one with `Origin`; the caller
/// checks, so a request from any other client costs one header lookup): tether's own for a
/// granted origin, and for any other none at all, not even an upstream's (they speak for
/// the upstream's origin, not tether's).
#[cold]
#[inline(never)]
pub fn from_page(config: &ProxyConfig, headers: &HeaderMap, answer: &mut Answer) {
    let out = answer.headers_mut();
    for name in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::ACCESS_CONTROL_MAX_AGE,
    ] {
        out.remove(name);
    }
    if let Some(origin) = granted(config, headers) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
        out.append(header::VARY, VARY_ORIGIN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ProxyConfig {
        ProxyConfig {
            allowed_origins: vec!["https://inspector.example".into()],
            ..ProxyConfig::default()
        }
    }

    fn with_origin(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        headers
    }

    fn upstream_answer() -> Answer {
        let mut answer = Answer::new(Reply::Own(Body::empty()));
        answer.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        answer
    }

    #[test]
    fn a_listed_origin_is_granted_as_the_browser_sent_it() {
        let headers = with_origin("https://Inspector.example");
        let mut answer = upstream_answer();
        from_page(&config(), &headers, &mut answer);
        let h = answer.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://Inspector.example"
        );
        assert_eq!(h[header::VARY], "Origin");
        assert!(
            h[header::ACCESS_CONTROL_EXPOSE_HEADERS]
                .to_str()
                .unwrap()
                .contains("Mcp-Session-Id")
        );
    }

    #[test]
    fn other_origins_get_no_cors_headers_not_even_the_upstreams() {
        for origin in ["http://localhost:6274", "https://inspector.example.evil"] {
            let mut answer = upstream_answer();
            from_page(&config(), &with_origin(origin), &mut answer);
            assert!(
                !answer
                    .headers()
                    .keys()
                    .any(|k| k.as_str().starts_with("access-control-")),
                "{origin}"
            );
        }
    }

    #[test]
    fn a_preflight_allows_what_mcp_clients_send() {
        let answer = preflight(&config(), &with_origin("https://inspector.example"));
        let h = answer.headers();
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_METHODS],
            "POST, GET, DELETE, OPTIONS"
        );
        let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        for name in [
            "authorization",
            "content-type",
            "mcp-protocol-version",
            "mcp-session-id",
            "mcp-method",
            "mcp-name",
            "last-event-id",
        ] {
            assert!(allowed.split(", ").any(|a| a == name), "{name}");
        }
        assert!(h.contains_key(header::ACCESS_CONTROL_MAX_AGE));
    }
}
