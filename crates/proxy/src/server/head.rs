//! Parsing a request head from a local client: `httparse` reads the request line and fields,
//! then tether refuses what would make the body's end ambiguous (RFC 9112 §6.3) and builds
//! the `http` types the handler takes, header values sharing the head's bytes.

use axum::http::request::Parts;
use axum::http::uri::Uri;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Version, header};
use bytes::BytesMut;

use super::{MAX_HEAD, MAX_HEADERS, Refused};
use crate::framing::FramingFields;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Length(u64),
    Chunked,
}

/// A parsed request head.
pub(super) struct Head {
    pub(super) parts: Parts,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
    pub(super) expect_continue: bool,
}

/// Parses a request head from the start of `read`: `None` while it is incomplete (`read`
/// untouched), else the head with its bytes taken from `read`, header values sharing them.
/// With `mcp` (calls are recorded), where the MCP fields the record names are is noted
/// there as the fields are read, with the head they are in: it costs less than looking for
/// them afterwards, and no copy of them.
pub(super) fn parse_head(
    read: &mut BytesMut,
    kept: &mut Vec<(HeaderName, std::ops::Range<usize>)>,
    mcp: Option<&mut crate::mcp::Noted>,
) -> Result<Option<Head>, Refused> {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let used = match parsed.parse_with_uninit_headers(read, &mut slots) {
        // The bound holds however the head arrived: `next_head` refuses a partial head
        // once it reaches it, and a whole one can come in the read that crosses it.
        Ok(httparse::Status::Complete(used)) if used > MAX_HEAD => {
            return Err(Refused::HeadTooLarge);
        }
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refused::HeadTooLarge),
        Err(e) => {
            return Err(Refused::Bad(format!(
                "the request is not valid HTTP/1.1 ({e})"
            )));
        }
    };
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| Refused::Bad("the request method is not valid".into()))?;
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let start = read.as_ptr() as usize;
    let target = parsed.path.unwrap_or_default();
    let target_at =
        target.as_ptr() as usize - start..target.as_ptr() as usize - start + target.len();
    kept.clear();
    let mut fields = FramingFields::new(version == Version::HTTP_10);
    let mut expect_continue = false;
    let noting = mcp.is_some();
    let mut spans = crate::mcp::Spans::default();
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| Refused::Bad(format!("the header name '{}' is not valid", field.name)))?;
        fields
            .read(&name, field.value)
            .map_err(|why| Refused::Bad(why.into()))?;
        if name == header::EXPECT {
            expect_continue = field.value.eq_ignore_ascii_case(b"100-continue");
        }
        let at = field.value.as_ptr() as usize - start;
        let value = at..at + field.value.len();
        if noting {
            crate::mcp::note(&mut spans, field.name.as_bytes(), value.clone());
        }
        kept.push((name, value));
    }
    // RFC 9112 §6.1: an HTTP/1.0 message with a Transfer-Encoding is read, then its
    // connection closed, even if it asked to keep it: its sender may have meant something
    // else by the bytes after it.
    let http10 = version == Version::HTTP_10;
    let close = fields.close || http10 && (!fields.keep_alive || fields.chunked.is_some());
    let framing = match (fields.chunked, fields.length) {
        (Some(true), None) => Framing::Chunked,
        (Some(true), Some(_)) => {
            return Err(Refused::Bad(
                "both Transfer-Encoding and Content-Length: send one".into(),
            ));
        }
        (Some(false), _) => {
            return Err(Refused::Bad(
                "a Transfer-Encoding that does not end in chunked".into(),
            ));
        }
        (None, length) => Framing::Length(length.unwrap_or(0)),
    };
    let bytes = read.split_to(used).freeze();
    let uri = Uri::from_maybe_shared(bytes.slice(target_at))
        .map_err(|_| Refused::Bad("the request target is not a valid URI".into()))?;
    let mut headers = HeaderMap::with_capacity(kept.len());
    for (name, at) in kept.drain(..) {
        let value = HeaderValue::from_maybe_shared(bytes.slice(at))
            .map_err(|_| Refused::Bad(format!("the value of '{name}' is not valid")))?;
        headers.append(name, value);
    }
    if let Some(mcp) = mcp {
        *mcp = crate::mcp::Noted { head: bytes, spans };
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    let (parts, ()) = request.into_parts();
    Ok(Some(Head {
        parts,
        framing,
        keep_alive: !close,
        expect_continue,
    }))
}
