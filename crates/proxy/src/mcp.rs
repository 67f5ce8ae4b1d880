//! The MCP header fields the record of a call names — the protocol revision, the method it
//! calls, the tool or resource it names — found in one pass over a request's fields, each
//! told by its length first (a lookup by name hashes it, three times over).

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The fields of one request, the first of each: protocol, method, name.
pub type Fields = [Option<HeaderValue>; 3];

/// The fields in `headers`.
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

/// Notes the field `name: value` in `found` if it is one of them (the first of each): how
/// tether's own server finds them while it builds a request's fields.
#[inline]
pub fn note(found: &mut Fields, name: &HeaderName, value: &HeaderValue) {
    if let Some(slot) = slot(name.as_str().as_bytes())
        && found[slot].is_none()
    {
        found[slot] = Some(value.clone());
    }
}

/// Which of the fields `name` (lowercase, as `http` keeps names) is, if any: nearly every
/// other field has another length.
#[inline]
fn slot(name: &[u8]) -> Option<usize> {
    let (slot, text): (_, &[u8]) = match name.len() {
        20 => (0, b"mcp-protocol-version"),
        10 => (1, b"mcp-method"),
        8 => (2, b"mcp-name"),
        _ => return None,
    };
    (name == text).then_some(slot)
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
        // Noted one by one as the server builds them: the same.
        let mut noted = Fields::default();
        for (field, value) in &headers {
            note(&mut noted, field, value);
        }
        assert_eq!(noted, fields(&headers).map(|v| v.cloned()));
    }
}
