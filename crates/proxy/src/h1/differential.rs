//! Differential property tests of tether's HTTP/1.1 client heads against `httparse` on its
//! own: an answer's head parsed by `parse_head` must be read as httparse reads it (refused
//! only by the rules written out below, each with its reason), and every request head
//! `write_request` writes must read back through httparse as exactly what was asked for.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;

use super::parse::{Framing, parse_head};
use super::wire::{response_head, token};
use super::write::write_request;
use super::{H1Error, MAX_HEAD, Outgoing};
use crate::upstream::passes_upstream;

/// What httparse made of a whole answer's head, owned.
struct Reference {
    used: usize,
    version: u8,
    code: u16,
    fields: Vec<(String, Vec<u8>)>,
}

/// What tether must make of an answer's head httparse reads whole.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Refused, the reason containing this.
    Invalid(&'static str),
    /// An interim answer, skipped.
    Interim,
    /// Read, with this framing and connection reuse.
    Read(Framing, bool),
}

fn reference(wire: &[u8]) -> Result<Option<Reference>, httparse::Error> {
    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut response = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(used) = response.parse(wire)? else {
        return Ok(None);
    };
    Ok(Some(Reference {
        used,
        version: response.version.unwrap_or_default(),
        code: response.code.unwrap_or_default(),
        fields: response
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
            .collect(),
    }))
}

fn values<'a>(head: &'a Reference, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    head.fields
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

/// tether's rules for an answer's head httparse read whole, in the order it applies them.
fn verdict(head: &Reference, head_request: bool) -> Verdict {
    // The 64 KiB bound holds however the head arrived (see the request's).
    if head.used > MAX_HEAD {
        return Verdict::Invalid("larger than");
    }
    // httparse reads any three digits; `http` has no status below 100.
    if head.code < 100 {
        return Verdict::Invalid("status");
    }
    // An MCP request never asks to switch protocols; an answer that does is not relayed.
    if head.code == 101 {
        return Verdict::Invalid("switches protocols");
    }
    if head.code < 200 {
        return Verdict::Interim;
    }
    // Every Content-Length must be `1*DIGIT` and all agree — even one a Transfer-Encoding
    // overrides, or on an answer without a body: an upstream that sends one is not
    // trusted to frame anything.
    let mut length = None;
    for value in values(head, "content-length") {
        let Some(n) = std::str::from_utf8(value)
            .ok()
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
        else {
            return Verdict::Invalid("not a number");
        };
        if length.is_some_and(|l| l != n) {
            return Verdict::Invalid("two different");
        }
        length = Some(n);
    }
    let chunked = values(head, "transfer-encoding").last().map(|v| {
        elements(v)
            .last()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
    });
    // RFC 9112 §6.3, in its order: no body after HEAD, 204 and 304; a Transfer-Encoding
    // wins over a Content-Length, and one not ending in chunked reads to the close.
    let no_body = head_request || head.code == 204 || head.code == 304;
    let framing = match (no_body, chunked, length) {
        (true, _, _) => Framing::Empty,
        (false, Some(true), _) => Framing::Chunked,
        (false, Some(false), _) | (false, None, None) => Framing::UntilClose,
        (false, None, Some(n)) => Framing::Length(n),
    };
    let connection = || values(head, "connection").flat_map(elements);
    let http10 = head.version == 0;
    let close = connection().any(|t| t.eq_ignore_ascii_case(b"close"))
        || http10 && !connection().any(|t| t.eq_ignore_ascii_case(b"keep-alive"))
        // RFC 9112 §6.1: an HTTP/1.0 message with a Transfer-Encoding is read, then its
        // connection closed.
        || http10 && chunked.is_some();
    Verdict::Read(framing, !close && framing != Framing::UntilClose)
}

fn keep_all(_: &HeaderName) -> bool {
    true
}

/// tether's outcome, for a failure's message.
fn outcome(ours: &Result<Option<Option<super::parse::Head>>, H1Error>) -> String {
    match ours {
        Ok(None) => "incomplete".into(),
        Ok(Some(None)) => "interim".into(),
        Ok(Some(Some(head))) => format!("read {} {:?}", head.status, head.framing),
        Err(e) => format!("refused ({e})"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn answer_heads_are_read_as_httparse_reads_them(
        wire in response_head(),
        head_request in prop::bool::weighted(0.1),
    ) {
        let wire = wire.0;
        let mut read = BytesMut::from(&wire[..]);
        let ours = parse_head(&mut read, head_request, keep_all, &mut Vec::new());
        let head = match reference(&wire) {
            Ok(None) => {
                prop_assert!(matches!(ours, Ok(None)), "incomplete, yet {}", outcome(&ours));
                prop_assert_eq!(&read[..], &wire[..], "nothing taken from an incomplete head");
                return Ok(());
            }
            Err(e) => {
                prop_assert!(
                    matches!(&ours, Err(H1Error::Invalid(_))),
                    "httparse: {e}; tether: {}", outcome(&ours)
                );
                return Ok(());
            }
            Ok(Some(head)) => head,
        };
        match (verdict(&head, head_request), ours) {
            (Verdict::Invalid(reason), Err(H1Error::Invalid(why))) if why.contains(reason) => {}
            (Verdict::Interim, Ok(Some(None))) => {
                prop_assert_eq!(read.len(), wire.len() - head.used, "the interim answer taken");
            }
            (Verdict::Read(framing, keep_alive), Ok(Some(Some(ours)))) => {
                prop_assert_eq!(ours.status.as_u16(), head.code);
                prop_assert_eq!(ours.framing, framing);
                prop_assert_eq!(ours.keep_alive, keep_alive);
                // A length is passed on only where it is the body's.
                let passed = |name: &str| {
                    name != "content-length"
                        || !matches!(framing, Framing::Chunked | Framing::UntilClose)
                };
                let expected = head.fields.iter().filter(|(n, _)| passed(n)).count();
                prop_assert_eq!(ours.headers.len(), expected);
                for (name, _) in head.fields.iter().filter(|(n, _)| passed(n)) {
                    let ours: Vec<&[u8]> = ours
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

/// A header value as `HeaderValue` allows it: HTAB, visible ASCII, space, and bytes past
/// ASCII; sometimes with whitespace around it.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    let byte = prop_oneof![
        8 => 0x21u8..=0x7e,
        1 => Just(b' '),
        1 => Just(b'\t'),
        1 => 0x80u8..=0xff,
    ];
    vec(byte, 0..16).prop_map(|v| HeaderValue::from_bytes(&v).expect("a valid value"))
}

fn header_name() -> impl Strategy<Value = HeaderName> {
    let known = prop::sample::select(vec![
        "host",
        "user-agent",
        "content-length",
        "authorization",
        "accept",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
        "cookie",
    ]);
    prop_oneof![
        1 => known.prop_map(HeaderName::from_static),
        1 => token().prop_map(|t| HeaderName::from_bytes(&t).expect("a token is a name")),
    ]
}

/// A path and query as an upstream's `Uri` gives it (`Target::of`).
fn path() -> impl Strategy<Value = String> {
    "/[a-zA-Z0-9/._~%!$&'()*+,;=:@-]{0,24}(\\?[a-zA-Z0-9=&%/?:@-]{0,16})?".prop_filter_map(
        "not a path http accepts",
        |p| {
            let uri = Uri::try_from(format!("https://upstream.example{p}")).ok()?;
            Some(uri.path_and_query()?.as_str().to_string())
        },
    )
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        3 => prop::sample::select(vec![Method::GET, Method::POST, Method::DELETE, Method::PUT, Method::PATCH, Method::HEAD]),
        1 => token().prop_map(|t| Method::from_bytes(&t).expect("a token is a method")),
    ]
}

/// Which of the client's headers `write_request` is told pass.
#[derive(Debug, Clone, Copy)]
enum Passes {
    All,
    None,
    Upstream,
}

impl Passes {
    fn rule(self) -> fn(&HeaderName) -> bool {
        match self {
            Passes::All => |_| true,
            Passes::None => |_| false,
            Passes::Upstream => passes_upstream,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn request_heads_read_back_as_written(
        method in method(),
        path in path(),
        host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        fields in vec((header_name(), header_value()), 0..12),
        passes in prop::sample::select(vec![Passes::All, Passes::None, Passes::Upstream]),
        credential in prop::option::of((
            prop::sample::select(vec!["authorization", "x-api-key"]).prop_map(HeaderName::from_static),
            header_value(),
        )),
        body in vec(any::<u8>(), 0..48),
    ) {
        let host = HeaderValue::from_str(&host).unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(name, value);
        }
        let mut out = Vec::new();
        write_request(&mut out, &Outgoing {
            method: &method,
            path: &path,
            host: &host,
            user_agent: "tether/test",
            headers: &headers,
            passes: passes.rule(),
            credential: credential.as_ref(),
            body: &body,
        });

        // What must arrive: tether's Host and User-Agent, the client's headers that pass
        // (but never its own Host, User-Agent or Content-Length), the credential, and the
        // body's length wherever a body goes.
        let mut expected: Vec<(&str, &[u8])> =
            vec![("host", host.as_bytes()), ("user-agent", b"tether/test")];
        for (name, value) in &headers {
            let own = matches!(name.as_str(), "host" | "user-agent" | "content-length");
            if passes.rule()(name) && !own {
                expected.push((name.as_str(), value.as_bytes()));
            }
        }
        if let Some((name, value)) = &credential {
            expected.push((name.as_str(), value.as_bytes()));
        }
        let length = body.len().to_string();
        if !body.is_empty() || matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            expected.push(("content-length", length.as_bytes()));
        }

        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut read = httparse::Request::new(&mut slots);
        let used = match read.parse(&out) {
            Ok(httparse::Status::Complete(used)) => used,
            other => {
                return Err(TestCaseError::fail(format!(
                    "httparse: {other:?} for {}",
                    out.escape_ascii()
                )));
            }
        };
        prop_assert_eq!(read.method, Some(method.as_str()));
        prop_assert_eq!(read.path, Some(path.as_str()));
        prop_assert_eq!(read.version, Some(1));
        let got: Vec<(String, &[u8])> = read
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value))
            .collect();
        prop_assert_eq!(got.len(), expected.len());
        for ((name, value), (want_name, want_value)) in got.iter().zip(&expected) {
            prop_assert_eq!(name.as_str(), *want_name);
            // A field value has no whitespace at its ends (RFC 9110 §5.5): a value sent
            // with some reads back without it, and means the same.
            prop_assert_eq!(*value, want_value.trim_ascii());
        }
        prop_assert_eq!(&out[used..], &body[..], "the body follows the head, unchanged");
    }
}
