//! DNS-rebinding protection, before anything else: the `Host` must be a loopback name or
//! a configured public name, and an `Origin`, when present, must be a loopback origin or a
//! configured one. Anything else is answered 403 without touching a connection.

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::config::ProxyConfig;

/// The 403 answer when the request's Host or Origin is not allowed.
pub fn refusal(config: &ProxyConfig, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    match host {
        Some(h) if host_allowed(h, &config.public_names) => {}
        Some(h) => return Some(forbidden(&format!("Host '{}' is not allowed", shorten(h)))),
        None => return Some(forbidden("a Host header is required")),
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin, &config.allowed_origins) {
            return Some(forbidden(&format!(
                "Origin '{}' is not allowed",
                shorten(origin)
            )));
        }
    }
    None
}

fn forbidden(why: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        format!("tether: {why} (DNS-rebinding protection); add it to [proxy] in config.toml if it is yours"),
    )
        .into_response()
}

fn shorten(s: &str) -> String {
    crate::oauth::token::printable(s, 80)
}

/// `host[:port]` names loopback, or one of the configured public names.
pub fn host_allowed(host: &str, public: &[String]) -> bool {
    let name = strip_port(host);
    is_loopback_name(name) || public.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// `scheme://host[:port]` of a loopback host, or listed exactly.
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    !rest.contains('/') && is_loopback_name(strip_port(rest))
}

fn strip_port(host: &str) -> &str {
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn is_loopback_name(name: &str) -> bool {
    if name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let public = vec!["tether.example.com".to_string()];
        for ok in [
            "127.0.0.1:7878",
            "localhost",
            "LOCALHOST:1",
            "[::1]:7878",
            "127.1.2.3",
            "tether.example.com:443",
        ] {
            assert!(host_allowed(ok, &public), "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:7878",
            "127.0.0.1.evil.com",
            "",
            "[::2]:1",
            "localhost.evil.com",
        ] {
            assert!(!host_allowed(bad, &public), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let allowed = vec!["https://app.example.com".to_string()];
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1",
            "https://[::1]:9",
            "https://app.example.com",
        ] {
            assert!(origin_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "null",
            "http://evil.com",
            "https://localhost.evil.com",
            "file://",
            "http://localhost/x",
            "",
        ] {
            assert!(!origin_allowed(bad, &allowed), "{bad}");
        }
    }
}
