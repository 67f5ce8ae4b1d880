//! Tests of the request-head parser and the answer-head writer.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use bytes::BytesMut;

use super::Refused;
use super::answer::{hex_len, write_head};
use super::head::{Framing, Head, parse_head};

fn head(wire: &str) -> Result<Option<Head>, Refused> {
    parse_head(&mut BytesMut::from(wire), &mut Vec::new(), None)
}

fn refused(wire: &str) -> String {
    match head(wire) {
        Err(Refused::Bad(why)) => why,
        Err(Refused::HeadTooLarge) => "too large".into(),
        Err(Refused::Slow) => "slow".into(),
        Ok(_) => panic!("accepted: {wire:?}"),
    }
}

#[test]
fn a_request_head_becomes_the_handlers_parts() {
    let h = head("POST /s/abc/mcp?x=1 HTTP/1.1\r\nHost: 127.0.0.1:7878\r\nContent-Length: 12\r\nMcp-Method: tools/list\r\n\r\n{}")
        .ok()
        .flatten()
        .unwrap();
    assert_eq!(h.parts.method, Method::POST);
    assert_eq!(h.parts.uri.path(), "/s/abc/mcp");
    assert_eq!(h.parts.uri.query(), Some("x=1"));
    assert_eq!(h.parts.headers["host"], "127.0.0.1:7878");
    assert_eq!(h.parts.headers["mcp-method"], "tools/list");
    assert_eq!((h.framing, h.keep_alive), (Framing::Length(12), true));
    // Asked, the MCP fields are noted where their values are, as the client wrote them.
    let wire = "POST /mcp HTTP/1.1\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nmcp-name:  echo \r\n\r\n";
    let mut noted = crate::mcp::Noted::default();
    let h = parse_head(&mut BytesMut::from(wire), &mut Vec::new(), Some(&mut noted))
        .ok()
        .flatten()
        .unwrap();
    assert_eq!(
        noted.values().map(|v| v.map(<[u8]>::to_vec)),
        [
            Some(b"2026-07-28".to_vec()),
            Some(b"tools/call".to_vec()),
            Some(b"echo".to_vec())
        ]
    );
    assert_eq!(h.parts.headers["mcp-name"], "echo");
    let h = head("GET / HTTP/1.0\r\n\r\n").ok().flatten().unwrap();
    assert!(!h.keep_alive, "HTTP/1.0 closes unless asked not to");
    let h = head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        .ok()
        .flatten()
        .unwrap();
    assert_eq!(h.framing, Framing::Chunked);
    assert!(h.expect_continue);
    assert!(
        head("POST / HTTP/1.1\r\nHost: a\r\n")
            .ok()
            .unwrap()
            .is_none()
    );
}

#[test]
fn ambiguous_framing_is_refused_with_the_reason() {
    assert!(
        refused("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
            .contains("two different")
    );
    assert!(
        refused("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
            .contains("both")
    );
    assert!(
        refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
            .contains("does not end in chunked")
    );
    assert!(refused("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n").contains("not a number"));
    assert!(refused("P@ST / HTTP/1.1\r\n\r\n").contains("not valid"));
}

#[test]
fn chunk_sizes_are_hexadecimal() {
    let mut buf = [0u8; 16];
    assert_eq!(hex_len(&mut buf, 0), b"0");
    assert_eq!(hex_len(&mut buf, 255), b"ff");
    assert_eq!(hex_len(&mut buf, 4096), b"1000");
}

#[test]
fn the_answer_head_states_the_framing_this_write_uses() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    let mut out = Vec::new();
    // It tells an event stream by its content type, for the call's record.
    assert!(write_head(
        &mut out,
        StatusCode::OK,
        &headers,
        None,
        false,
        true,
        None
    ));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let mut out = Vec::new();
    write_head(
        &mut out,
        StatusCode::OK,
        &headers,
        Some(2),
        false,
        false,
        Some("close"),
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    assert!(!write_head(
        &mut Vec::new(),
        StatusCode::OK,
        &headers,
        Some(2),
        false,
        false,
        None
    ));
}
