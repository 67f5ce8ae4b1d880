//! Writing a request head toward the upstream: the request line, the client's headers that
//! pass, tether's own `Host`, `User-Agent` and credential, and the body's length — then
//! the body, all into one buffer so the request goes out in one write.

use axum::http::{Method, header};

use super::Outgoing;

/// The request line, the headers that pass, `Host`, `User-Agent`, the credential and the
/// body's length, then the body.
pub(super) fn write_request(out: &mut Vec<u8>, request: &Outgoing<'_>) {
    let line = |out: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    out.reserve(512 + request.body.len());
    out.extend_from_slice(request.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    line(out, b"host", request.host.as_bytes());
    line(out, b"user-agent", request.user_agent.as_bytes());
    for (name, value) in request.headers {
        if (request.passes)(name)
            && name != header::HOST
            && name != header::USER_AGENT
            && name != header::CONTENT_LENGTH
        {
            line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if let Some((name, value)) = request.credential {
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let carries_body = !request.body.is_empty()
        || matches!(*request.method, Method::POST | Method::PUT | Method::PATCH);
    if carries_body {
        line(
            out,
            b"content-length",
            itoa::Buffer::new().format(request.body.len()).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(request.body);
}
