//! DNS-rebinding protection, before anything else: the `Host` must be a loopback name or
//! a configured public name, and an `Origin`, when present, must be a loopback origin or a
//! configured one. Anything else is answered 403 without touching a connection.

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use tether_core::config::ProxyConfig;

/// The refusal when the request's Host or Origin is not allowed (403), or its Host is
/// ambiguous (400). An HTTP/2 request's `:authority` must pass too, when it has one.
pub fn refusal(config: &ProxyConfig, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        // RFC 9112 §3.2: two readers of the request could take different ones.
        return Some(
            (
                StatusCode::BAD_REQUEST,
                "tether: the request has more than one Host header (RFC 9112 §3.2): send exactly one Host",
            )
                .into_response(),
        );
    }
    let authority = uri.authority().map(|a| a.as_str());
    let host = host.map(|h| h.to_str().unwrap_or("")).or(authority);
    match host {
        Some(h) if host_allowed(h, &config.public_names) => {}
        Some(h) => return Some(forbidden(&format!("Host '{}' is not allowed", shorten(h)))),
        None => return Some(forbidden("a Host header is required")),
    }
    if let Some(a) = authority
        && Some(a) != host
        && !host_allowed(a, &config.public_names)
    {
        return Some(forbidden(&format!(
            "the request's authority '{}' is not allowed",
            shorten(a)
        )));
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
    tether_core::printable::printable(s, 80)
}

/// `host[:port]` names loopback, or one of the configured public names.
pub fn host_allowed(host: &str, public: &[String]) -> bool {
    host_name(host).is_some_and(|name| {
        is_loopback_name(name) || public.iter().any(|p| p.eq_ignore_ascii_case(name))
    })
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
    !rest.contains('/') && host_name(rest).is_some_and(is_loopback_name)
}

/// The name in `host[:port]`: for a bracketed IPv6 literal, what is inside the brackets —
/// and only when nothing but a port follows them (`[::1]evil.com` is no loopback name).
fn host_name(host: &str) -> Option<&str> {
    if let Some(bracketed) = host.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']')?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(is_port)).then_some(v6);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) => Some(name),
        _ => Some(host),
    }
}

/// A port as an authority may carry it: digits, possibly none (RFC 3986 §3.2.3).
fn is_port(port: &str) -> bool {
    port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
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
            "[::1]evil.com",
            "[::1]:7878evil",
            "[::1]:80:80",
            "[::1",
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
            "http://[::1]evil.com",
            "http://[::1]:1evil.com",
            "http://user@localhost",
            "",
        ] {
            assert!(!origin_allowed(bad, &allowed), "{bad}");
        }
    }
}
