//! Differential property tests of the request-head parser: generated heads (valid and
//! malformed, see `h1::wire`) are read by tether's `parse_head` and by `httparse` on its
//! own, and the two must agree — on whether the head is whole, refused or read, and where
//! both read it, on the method, target, version and every header field.
//!
//! tether builds on httparse, then refuses more; each such rule is written out below as
//! tether's own (never by calling tether's code), with the reason it exists.

use axum::http::{HeaderName, Uri, Version};
use bytes::BytesMut;
use proptest::prelude::*;

use super::head::{Framing, parse_head};
use super::{MAX_HEAD, MAX_HEADERS, Refused};
use crate::h1::wire::request_head;

/// What httparse made of a whole head, owned.
struct Reference {
    used: usize,
    method: String,
    target: String,
    version: u8,
    fields: Vec<(String, Vec<u8>)>,
}

/// What tether must answer to a head httparse reads whole.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// 431.
    TooLarge,
    /// 400, the reason containing this.
    Bad(&'static str),
    /// Read, with this framing and connection reuse and `Expect: 100-continue`.
    Read(Framing, bool, bool),
}

/// httparse's reading of `wire`, with its default configuration and as many header slots
/// as tether gives it: `Ok(None)` while the head is incomplete.
fn reference(wire: &[u8]) -> Result<Option<Reference>, httparse::Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let httparse::Status::Complete(used) = request.parse(wire)? else {
        return Ok(None);
    };
    Ok(Some(Reference {
        used,
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        version: request.version.unwrap_or_default(),
        fields: request
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
            .collect(),
    }))
}

/// The values of the fields named `name`, in the order they came.
fn values<'a>(head: &'a Reference, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    head.fields
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// A list field's elements, SP/HTAB trimmed (RFC 9110 §5.6.1).
fn elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

/// tether's rules for a head httparse read whole, in the order tether applies them.
fn verdict(head: &Reference) -> Verdict {
    // The 64 KiB bound holds for every head, however the bytes arrived: one that comes
    // whole in the read that crosses the bound is as large as one that does not.
    if head.used > MAX_HEAD {
        return Verdict::TooLarge;
    }
    // Framing (RFC 9112 §6.3), where a disagreement between two readers of the same
    // bytes is request smuggling: anything but one clear answer is refused.
    let mut length = None;
    for (name, value) in &head.fields {
        if name != "content-length" {
            continue;
        }
        // `1*DIGIT` (RFC 9110 §8.6) — not `+1`, not `1, 1` (which RFC 9112 §6.3 would
        // let a recipient take as 1: tether refuses rather than reconciles), and no
        // whitespace but the SP/HTAB around a field value, already gone.
        let Some(n) = std::str::from_utf8(value)
            .ok()
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
        else {
            return Verdict::Bad("not a number");
        };
        if length.is_some_and(|l| l != n) {
            return Verdict::Bad("two different");
        }
        length = Some(n);
    }
    // Only the last coding of the last `Transfer-Encoding` frames the body; an empty
    // last element (`chunked ,`) is not skipped, so such a head is refused, never misread.
    let chunked = values(head, "transfer-encoding").last().map(|v| {
        elements(v)
            .last()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
    });
    let framing = match (chunked, length) {
        (Some(true), Some(_)) => return Verdict::Bad("both"),
        (Some(false), _) => return Verdict::Bad("does not end in chunked"),
        (Some(true), None) => Framing::Chunked,
        (None, length) => Framing::Length(length.unwrap_or(0)),
    };
    // The handler routes on an `http::Uri`: a target httparse lets through but that is
    // no URI (`"`, `{`, bytes past ASCII…) is refused rather than guessed at.
    if Uri::try_from(head.target.as_str()).is_err() {
        return Verdict::Bad("not a valid URI");
    }
    let connection = || values(head, "connection").flat_map(elements);
    let http10 = head.version == 0;
    let close = connection().any(|t| t.eq_ignore_ascii_case(b"close"))
        || http10 && !connection().any(|t| t.eq_ignore_ascii_case(b"keep-alive"))
        // RFC 9112 §6.1: an HTTP/1.0 message with a Transfer-Encoding is read, then its
        // connection closed — its sender may have meant something else by it.
        || http10 && chunked.is_some();
    let expect_continue = values(head, "expect")
        .last()
        .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
    // `Host` is not the parser's: absent or doubled, the head is read as httparse reads
    // it, and the guard refuses it (`guard::check`), as it does a Host it does not allow.
    Verdict::Read(framing, !close, expect_continue)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn request_heads_are_read_as_httparse_reads_them(wire in request_head()) {
        let wire = wire.0;
        let mut read = BytesMut::from(&wire[..]);
        let ours = parse_head(&mut read, &mut Vec::new(), None);
        let head = match reference(&wire) {
            Ok(None) => {
                prop_assert!(matches!(ours, Ok(None)), "incomplete, yet {}", outcome(&ours));
                prop_assert_eq!(&read[..], &wire[..], "nothing taken from an incomplete head");
                return Ok(());
            }
            Err(httparse::Error::TooManyHeaders) => {
                prop_assert!(matches!(ours, Err(Refused::HeadTooLarge)), "{}", outcome(&ours));
                return Ok(());
            }
            Err(e) => {
                prop_assert!(
                    matches!(&ours, Err(Refused::Bad(why)) if why.contains("not valid HTTP/1.1")),
                    "httparse: {e}; tether: {}", outcome(&ours)
                );
                return Ok(());
            }
            Ok(Some(head)) => head,
        };
        match (verdict(&head), ours) {
            (Verdict::TooLarge, Err(Refused::HeadTooLarge)) => {}
            (Verdict::Bad(reason), Err(Refused::Bad(why))) if why.contains(reason) => {}
            (Verdict::Read(framing, keep_alive, expect_continue), Ok(Some(ours))) => {
                prop_assert_eq!(ours.framing, framing);
                prop_assert_eq!(ours.keep_alive, keep_alive);
                prop_assert_eq!(ours.expect_continue, expect_continue);
                let parts = ours.parts;
                prop_assert_eq!(parts.method.as_str(), head.method.as_str());
                let target = Uri::try_from(head.target.as_str()).ok();
                prop_assert_eq!(Some(&parts.uri), target.as_ref());
                let version = if head.version == 1 { Version::HTTP_11 } else { Version::HTTP_10 };
                prop_assert_eq!(parts.version, version);
                prop_assert_eq!(parts.headers.len(), head.fields.len());
                for (name, _) in &head.fields {
                    let ours: Vec<&[u8]> = parts
                        .headers
                        .get_all(HeaderName::from_bytes(name.as_bytes()).unwrap())
                        .iter()
                        .map(|v| v.as_bytes())
                        .collect();
                    let theirs: Vec<&[u8]> = values(&head, name).collect();
                    prop_assert_eq!(ours, theirs, "the values of {}", name);
                }
                prop_assert_eq!(read.len(), wire.len() - head.used, "the head taken, the body left");
            }
            (expected, ours) => {
                return Err(TestCaseError::fail(format!(
                    "expected {expected:?}, tether: {}",
                    outcome(&ours)
                )));
            }
        }
    }
}

/// tether's outcome, for a failure's message.
fn outcome(ours: &Result<Option<super::head::Head>, Refused>) -> String {
    match ours {
        Ok(None) => "incomplete".into(),
        Ok(Some(head)) => format!("read {} {}", head.parts.method, head.parts.uri),
        Err(Refused::Bad(why)) => format!("400 ({why})"),
        Err(Refused::HeadTooLarge) => "431".into(),
        Err(Refused::Slow) => "408".into(),
    }
}
