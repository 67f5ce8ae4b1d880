//! How long an upstream's answer is waited for, from what the request is: a tool call as
//! long as its client waits, the GET stream's start in time, anything else bounded.

use axum::http::Method;
use axum::http::request::Parts;

use crate::upstream::Patience;

/// How long a request's answer is waited for: a `tools/call` as long as its client waits;
/// the GET stream of server messages must begin in time, then may stay quiet (it is, between
/// notifications); anything else is bounded by `upstream_timeout_secs`.
pub(super) fn patience(parts: &Parts, body: &[u8]) -> Patience {
    if parts.method == Method::GET {
        Patience::HeadOnly
    } else if calls_a_tool(parts, body) {
        Patience::Unbounded
    } else {
        Patience::Bounded
    }
}

/// Whether a request is a `tools/call`, by its `Mcp-Method` header (2026-07-28), else by
/// its body.
fn calls_a_tool(parts: &Parts, body: &[u8]) -> bool {
    const TOOLS_CALL: &str = "tools/call";
    if let Some(method) = parts.headers.get("mcp-method") {
        return method == TOOLS_CALL;
    }
    if parts.method != Method::POST {
        return false;
    }
    // Most calls are not tool calls: a byte search (SIMD) rules them out before a parse.
    let named = |needle: &[u8]| memchr::memmem::find(body, needle).is_some();
    if !named(b"tools/call") && !named(br"tools\/call") {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice::<Vec<Message<'_>>>(body)
            .is_ok_and(|all| all.iter().any(|m| m.method.as_deref() == Some(TOOLS_CALL))),
        _ => serde_json::from_slice::<Message<'_>>(body)
            .is_ok_and(|m| m.method.as_deref() == Some(TOOLS_CALL)),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(method: Method, mcp_method: Option<&str>) -> Parts {
        let mut request = Request::builder().method(method).uri("/s/x/mcp");
        if let Some(m) = mcp_method {
            request = request.header("mcp-method", m);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn tool_calls_are_told_by_header_else_by_body() {
        let post = parts(Method::POST, None);
        assert!(calls_a_tool(
            &post,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#
        ));
        assert!(calls_a_tool(&post, br#" {"method":"tools\/call","id":1}"#));
        assert!(calls_a_tool(
            &post,
            br#"[{"method":"tools/list"},{"method":"tools/call"}]"#
        ));
        assert!(!calls_a_tool(
            &post,
            br#"{"method":"tools/list","params":{"x":"tools/call"}}"#
        ));
        assert!(!calls_a_tool(&post, b"{not json"));
        assert!(calls_a_tool(&parts(Method::POST, Some("tools/call")), b""));
        assert!(!calls_a_tool(
            &parts(Method::POST, Some("tools/list")),
            br#"{"method":"tools/call"}"#
        ));
        assert!(!calls_a_tool(&parts(Method::GET, None), b""));
        assert_eq!(patience(&parts(Method::GET, None), b""), Patience::HeadOnly);
        assert_eq!(
            patience(&post, br#"{"method":"tools/list"}"#),
            Patience::Bounded
        );
        assert_eq!(
            patience(&post, br#"{"method":"tools/call"}"#),
            Patience::Unbounded
        );
    }
}
