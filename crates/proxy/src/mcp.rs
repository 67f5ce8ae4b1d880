//! The MCP header fields the record of a call names — the protocol revision, the method it
//! calls, the tool or resource it names — each told by its name's length first (a lookup by
//! name hashes it, three times over), then by a few words of it, in any case.

use std::ops::Range;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};

/// Where the fields' values are in a request's head, the first of each: protocol, method,
/// name. tether's own server notes them as it reads the head's fields
/// (`server::head::parse_head`), so a call costs no copy of them nor a look at its fields.
pub type Spans = [Option<Range<usize>>; 3];

/// A request's head and where its MCP fields are in it, as tether's own server noted them.
#[derive(Default)]
pub struct Noted {
    pub head: Bytes,
    pub spans: Spans,
}

impl Noted {
    /// The fields' values: protocol, method, name.
    pub fn values(&self) -> [Option<&[u8]>; 3] {
        self.spans
            .each_ref()
            .map(|at| at.as_ref().map(|at| &self.head[at.clone()]))
    }
}

/// The fields in `headers` (as hyper's server builds them).
pub fn fields(headers: &HeaderMap) -> [Option<&HeaderValue>; 3] {
    let mut found = [None; 3];
    for (name, value) in headers {
        if let Some(slot) = slot(name.as_str().as_bytes())
            && found[slot].is_none()
        {
            found[slot] = Some(value);
        }
    }
    found
}

/// Notes that the field `name`, as the client wrote it, has its value at `value` in the
/// head, if it is one of them (the first of each).
#[inline]
pub fn note(spans: &mut Spans, name: &[u8], value: Range<usize>) {
    if let Some(slot) = slot(name)
        && spans[slot].is_none()
    {
        spans[slot] = Some(value);
    }
}

/// Which of the fields `name` (a field name: token characters, any case) is, if any:
/// nearly every other field has another length.
#[inline]
fn slot(name: &[u8]) -> Option<usize> {
    let (slot, text): (_, &[u8]) = match name.len() {
        20 => (0, b"mcp-protocol-version"),
        10 => (1, b"mcp-method"),
        8 => (2, b"mcp-name"),
        _ => return None,
    };
    is_lowercase(name, text).then_some(slot)
}

/// Whether the token `name` is `text` (lowercase letters and `-`, at least eight bytes, as
/// long as `name`) in any case, a word at a time: setting the 0x20 bit lowers a letter,
/// and among token characters only `-` itself has it set to `-`.
#[inline]
fn is_lowercase(name: &[u8], text: &[u8]) -> bool {
    const LOWER: u64 = u64::from_le_bytes([0x20; 8]);
    let differs = |at: usize| {
        let mut eight = [0; 8];
        eight.copy_from_slice(&name[at..at + 8]);
        let mut lower = [0; 8];
        lower.copy_from_slice(&text[at..at + 8]);
        u64::from_le_bytes(eight) | LOWER != u64::from_le_bytes(lower)
    };
    // Whole words, then the last eight bytes (overlapping the words before).
    let last = text.len() - 8;
    let mut at = 0;
    while at < last {
        if differs(at) {
            return false;
        }
        at += 8;
    }
    !differs(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_are_found_and_the_first_of_each_kept() {
        let mut headers = HeaderMap::new();
        headers.append("user-agent", HeaderValue::from_static("x"));
        headers.append("mcp-method", HeaderValue::from_static("tools/call"));
        headers.append("mcp-method", HeaderValue::from_static("ping"));
        headers.append("mcp-name", HeaderValue::from_static("echo"));
        headers.append("mcp-session-id", HeaderValue::from_static("s"));
        let [protocol, method, name] = fields(&headers);
        assert_eq!(protocol, None);
        assert_eq!(method.unwrap(), "tools/call");
        assert_eq!(name.unwrap(), "echo");
        // Noted one by one as the server reads them, as the client wrote them: the same.
        let mut spans = Spans::default();
        for (at, name) in ["User-Agent", "MCP-Method", "mcp-method", "Mcp-Name"]
            .iter()
            .enumerate()
        {
            note(&mut spans, name.as_bytes(), at..at + 1);
        }
        assert_eq!(spans, [None, Some(1..2), Some(3..4)]);
    }

    /// Every token character at every place of each name: a field is told exactly as
    /// `eq_ignore_ascii_case` tells it.
    #[test]
    fn a_name_is_told_in_any_case_and_nothing_else_is() {
        let token = (0x21..0x7f_u8).filter(|b| !b"\"(),/:;<=>?@[\\]{}".contains(b));
        for (slot, text) in ["mcp-protocol-version", "mcp-method", "mcp-name"]
            .iter()
            .enumerate()
        {
            for at in 0..text.len() {
                for b in token.clone() {
                    let mut name = text.as_bytes().to_vec();
                    name[at] = b;
                    let same = name.eq_ignore_ascii_case(text.as_bytes());
                    assert_eq!(super::slot(&name), same.then_some(slot), "{name:?}");
                }
            }
        }
        assert_eq!(super::slot(b"MCP-PROTOCOL-VERSION"), Some(0));
        assert_eq!(super::slot(b"mcp-session"), None);
        assert_eq!(super::slot(b"user-agent"), None);
    }
}
