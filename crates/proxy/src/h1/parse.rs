//! Parsing an answer's head from the upstream: `httparse` reads the status line and fields,
//! then tether decides the body's framing and whether the connection can be reused
//! (RFC 9112 §6.3), keeping only the headers a client is passed.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use bytes::{Buf, BytesMut};

use super::{H1Error, MAX_HEAD};
use crate::framing::FramingFields;

/// An answer's head may not carry more header fields than this.
const MAX_HEADERS: usize = 100;

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// An answer's head, and whether the connection may carry another request after it.
pub(super) struct Head {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
}

/// A header field kept from an answer's head: its name, and where its value lies in the
/// head's bytes.
pub(super) type Kept = (HeaderName, std::ops::Range<usize>);

/// Parses an answer's head from the start of `read`: `None` while it is incomplete (`read`
/// untouched), else the head — `None` for an interim (1xx) answer, which is skipped — with
/// its bytes taken from `read`. The values of the headers kept share the head's bytes
/// (no copy); `kept` is scratch room, reused from call to call.
pub(super) fn parse_head(
    read: &mut BytesMut,
    head_request: bool,
    keep: fn(&HeaderName) -> bool,
    kept: &mut Vec<Kept>,
) -> Result<Option<Option<Head>>, H1Error> {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let used = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        read,
        &mut slots,
    ) {
        // The bound holds however the head arrived: `read_head` refuses a partial head once
        // it reaches it, and a whole one can come in the read that crosses it.
        Ok(httparse::Status::Complete(used)) if used > MAX_HEAD => {
            return Err(H1Error::Invalid(format!(
                "its head is larger than {MAX_HEAD} bytes"
            )));
        }
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(H1Error::Invalid(format!(
                "more than {MAX_HEADERS} header fields"
            )));
        }
        Err(e) => return Err(H1Error::Invalid(e.to_string())),
    };
    let code = parsed.code.unwrap_or_default();
    let status =
        StatusCode::from_u16(code).map_err(|_| H1Error::Invalid(format!("status {code}")))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(H1Error::Invalid(
            "it switches protocols, which an MCP request never asks for".into(),
        ));
    }
    if status.is_informational() {
        read.advance(used);
        return Ok(Some(None));
    }
    let start = read.as_ptr() as usize;
    kept.clear();
    let mut fields = FramingFields::new(parsed.version == Some(0));
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| H1Error::Invalid(format!("header name '{}'", field.name)))?;
        fields
            .read(&name, field.value)
            .map_err(|why| H1Error::Invalid(why.into()))?;
        // A challenge is kept for the forwarder to read where it means something (it is
        // never passed on).
        let challenge = name == header::WWW_AUTHENTICATE
            && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        if keep(&name) || challenge {
            let at = field.value.as_ptr() as usize - start;
            kept.push((name, at..at + field.value.len()));
        }
    }
    let no_body =
        head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    // RFC 9112 §6.1: an HTTP/1.0 message with a Transfer-Encoding is read, then its
    // connection closed, even if it asked to keep it.
    let http10 = parsed.version != Some(1);
    let close = fields.close || http10 && (!fields.keep_alive || fields.chunked.is_some());
    let framing = match (no_body, fields.chunked, fields.length) {
        (true, _, _) => Framing::Empty,
        (false, Some(true), _) => Framing::Chunked,
        (false, Some(false), _) => Framing::UntilClose,
        (false, None, Some(length)) => Framing::Length(length),
        (false, None, None) => Framing::UntilClose,
    };
    let bytes = read.split_to(used).freeze();
    let mut headers = HeaderMap::with_capacity(kept.len());
    for (name, at) in kept.drain(..) {
        // Framed by the transfer coding or the connection's end, a length is not the
        // body's (hyper states the right one, or chunks).
        if name == header::CONTENT_LENGTH
            && matches!(framing, Framing::Chunked | Framing::UntilClose)
        {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(bytes.slice(at))
            .map_err(|_| H1Error::Invalid(format!("the value of '{name}'")))?;
        headers.append(name, value);
    }
    Ok(Some(Some(Head {
        status,
        headers,
        framing,
        keep_alive: !close && framing != Framing::UntilClose,
    })))
}
