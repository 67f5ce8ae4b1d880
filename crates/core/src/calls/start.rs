//! Reading a JSON-RPC message's start as SDKs write one — a request's method and the name
//! it calls, whether an answer is a result — without a parse: most messages a proxy sees
//! are told this way, and any other start is left to the parser.

use super::describe::{NAMED, same};

/// The method a request's body calls and, for a method that names one, the tool, prompt or
/// resource it names, read from the body's start as SDKs write a request — `"method"` first,
/// or after `"jsonrpc":"2.0"` and the id in either order, and `"params"` right after it
/// with `"name"` or `"uri"` first — when their strings hold no escape: as they came, no
/// parse and no allocation. `None` for any other body, which the parser reads.
pub(super) fn named_at_start(body: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let mut rest = after(body, b"{")?;
    let mut method = None;
    for _ in 0..3 {
        rest = ws(rest);
        rest = match rest.get(1) {
            Some(b'm') => {
                let (m, after_method) = string(after(rest, b"\"method\":")?)?;
                method = Some(m);
                rest = after_method;
                break;
            }
            Some(b'j') => after(after(after(rest, b"\"jsonrpc\":")?, b"\"2.0\"")?, b",")?,
            Some(b'i') => {
                let id = ws(after(rest, b"\"id\":")?);
                after(after_id(id)?, b",")?
            }
            _ => return None,
        };
    }
    let method = method?;
    if !NAMED.iter().any(|n| same(n.as_bytes(), method)) {
        return Some((method, None));
    }
    let params = ws(after(after(after(rest, b",")?, b"\"params\":")?, b"{")?);
    let value = match params.get(1) {
        Some(b'n') => after(params, b"\"name\":")?,
        Some(b'u') => after(params, b"\"uri\":")?,
        _ => return None,
    };
    Some((method, Some(string(value)?.0)))
}

/// `text` without its leading JSON whitespace.
#[inline]
fn ws(text: &[u8]) -> &[u8] {
    let at = text
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(text.len());
    &text[at..]
}

/// What follows `token` (after any whitespace) in `text`.
#[inline]
fn after<'a>(text: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    ws(text).strip_prefix(token)
}

/// A JSON string with no escape in it (after any whitespace), and what follows it.
#[inline]
fn string(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let text = ws(text).strip_prefix(b"\"")?;
    match memchr::memchr2(b'"', b'\\', text) {
        Some(end) if text[end] == b'"' => Some((&text[..end], &text[end + 1..])),
        _ => None,
    }
}

/// What follows a message's id: a number, or a string with no escape in it.
fn after_id(id: &[u8]) -> Option<&[u8]> {
    if id.first() == Some(&b'"') {
        return string(id).map(|(_, rest)| rest);
    }
    let end = id
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b'-'))
        .unwrap_or(id.len());
    (end > 0).then(|| &id[end..])
}

/// Whether a JSON answer is a JSON-RPC result, told by its start as SDKs write one —
/// `"result"` first, or after `"jsonrpc":"2.0"` and the id in either order (sorted keys put
/// the id first) — which costs less than the search for `"error"`; any other start is
/// searched.
pub fn is_result(answer: &[u8]) -> bool {
    let Some(mut rest) = answer.strip_prefix(b"{") else {
        return false;
    };
    for _ in 0..3 {
        // Each key told by its first letter, then compared whole once.
        rest = match rest.get(1) {
            Some(b'r') => return rest.starts_with(b"\"result\":"),
            Some(b'j') => match rest.strip_prefix(b"\"jsonrpc\":\"2.0\",") {
                Some(after) => after,
                None => return false,
            },
            Some(b'i') => match rest
                .strip_prefix(b"\"id\":")
                .and_then(after_id)
                .and_then(|after| after.strip_prefix(b","))
            {
                Some(after) => after,
                None => return false,
            },
            _ => return false,
        };
    }
    false
}
