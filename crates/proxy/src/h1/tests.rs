//! Tests of the answer-head parser and the request-head writer.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use bytes::BytesMut;

use super::parse::{Framing, Head, parse_head};
use super::write::write_request;
use super::{H1Error, Outgoing};

fn keep_all(_: &HeaderName) -> bool {
    true
}

/// The head parsed from `wire`, and how many bytes of `wire` it left.
fn head(wire: &str, head_request: bool) -> Result<(Option<Option<Head>>, usize), H1Error> {
    let mut read = BytesMut::from(wire);
    let head = parse_head(&mut read, head_request, keep_all, &mut Vec::new())?;
    Ok((head, read.len()))
}

fn complete(wire: &str) -> Head {
    head(wire, false).unwrap().0.unwrap().unwrap()
}

#[test]
fn framing_follows_rfc_9112() {
    let h = complete("HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx-a: b\r\n\r\n");
    assert_eq!((h.framing, h.keep_alive), (Framing::Length(12), true));
    assert_eq!(h.headers["content-length"], "12");
    assert_eq!(h.headers["x-a"], "b");
    let h = complete(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
    );
    assert_eq!(h.framing, Framing::Chunked);
    assert!(h.headers.get(header::CONTENT_LENGTH).is_none());
    let h = complete("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n");
    assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
    let h = complete("HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
    let h = complete("HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
    let h = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", true)
        .unwrap()
        .0
        .unwrap()
        .unwrap();
    assert_eq!(h.framing, Framing::Empty);
    let h = complete("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n");
    assert!(!h.keep_alive);
    let h = complete("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n");
    assert!(!h.keep_alive);
    let h = complete("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 1\r\n\r\n");
    assert!(h.keep_alive);
}

#[test]
fn a_challenge_is_kept_only_where_it_means_something() {
    let parse = |wire: &str| {
        let keep_none: fn(&HeaderName) -> bool = |_| false;
        let mut read = BytesMut::from(wire);
        let head = parse_head(&mut read, false, keep_none, &mut Vec::new());
        head.unwrap().unwrap().unwrap().headers
    };
    let challenge = "www-authenticate: Bearer error=\"invalid_token\"\r\ncontent-length: 0\r\n\r\n";
    for status in ["401 Unauthorized", "403 Forbidden"] {
        let headers = parse(&format!("HTTP/1.1 {status}\r\n{challenge}"));
        assert_eq!(headers.len(), 1, "{status}: {headers:?}");
        assert!(headers.contains_key("www-authenticate"), "{status}");
    }
    assert!(parse(&format!("HTTP/1.1 200 OK\r\n{challenge}")).is_empty());
}

#[test]
fn interim_answers_are_skipped_and_partial_heads_wait() {
    let wire = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
    let (interim, left) = head(wire, false).unwrap();
    assert!(interim.unwrap().is_none());
    assert_eq!(left, "HTTP/1.1 200 OK\r\n".len());
    let partial = "HTTP/1.1 200 OK\r\ncontent-le";
    let (none, left) = head(partial, false).unwrap();
    assert!(none.is_none());
    assert_eq!(left, partial.len(), "nothing taken from a partial head");
}

#[test]
fn unusable_heads_are_refused_with_the_reason() {
    for (wire, reason) in [
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            "two different",
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 1, 1\r\n\r\n",
            "Content-Length",
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "switches protocols",
        ),
        ("HTTP/1.1 2000 OK\r\n\r\n", "status"),
        ("HTTX/1.1 200 OK\r\n\r\n", "not valid"),
    ] {
        let error = match head(wire, false) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {wire:?}"),
        };
        assert!(error.contains(reason), "{wire:?}: {error}");
    }
}

#[test]
fn the_request_head_carries_only_what_passes_and_the_credential() {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7878"));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer client-secret"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert("cookie", HeaderValue::from_static("a=b"));
    let credential = (
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer upstream"),
    );
    let passes = |name: &HeaderName| matches!(name.as_str(), "host" | "accept" | "content-length");
    let mut out = Vec::new();
    write_request(
        &mut out,
        &Outgoing {
            method: &Method::POST,
            path: "/mcp?x=1",
            host: &HeaderValue::from_static("upstream.example"),
            user_agent: "tether/test",
            headers: &headers,
            passes,
            credential: Some(&credential),
            body: b"{}",
        },
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "POST /mcp?x=1 HTTP/1.1\r\nhost: upstream.example\r\nuser-agent: tether/test\r\naccept: application/json\r\nauthorization: Bearer upstream\r\ncontent-length: 2\r\n\r\n{}"
    );
}
