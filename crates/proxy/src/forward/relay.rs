//! Relaying the upstream's answer to the client as it arrives: only the headers that pass,
//! a `Content-Length` only where it is the body's, and SSE marked so nothing between
//! buffers it.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use hyper::body::Body as _;

use crate::upstream::{Payload, UpstreamResponse, passes_downstream};
use crate::{Answer, Reply};

/// Removes every header `passes` refuses, in place: no new map for each call, and one
/// pass over the names for up to eight refused ones.
fn keep_only(headers: &mut HeaderMap, passes: fn(&HeaderName) -> bool) {
    const BATCH: usize = 8;
    loop {
        let mut refused: [Option<HeaderName>; BATCH] = Default::default();
        let mut found = 0;
        for name in headers.keys().filter(|k| !passes(k)).take(BATCH) {
            refused[found] = Some(name.clone());
            found += 1;
        }
        for name in refused.iter().flatten() {
            headers.remove(name);
        }
        if found < BATCH {
            return;
        }
    }
}

/// Drops a `Content-Length` that does not state `exact`, the body's real length (hyper
/// then states the right one).
fn keep_length_if(headers: &mut HeaderMap, exact: Option<u64>) {
    let stated = headers
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    if let Some(stated) = stated
        && (stated.is_none() || stated != exact)
    {
        headers.remove(header::CONTENT_LENGTH);
    }
}

/// Streams the upstream answer back chunk by chunk; dropping the client's side drops
/// the upstream request too.
pub(super) fn stream_back(mut res: UpstreamResponse) -> Answer {
    let exact = res.body().size_hint().exact();
    let status = res.status();
    let http2 = matches!(res.body().get_ref(), Payload::Http2(_));
    let headers = res.headers_mut();
    if http2 {
        keep_only(headers, passes_downstream);
        keep_length_if(headers, exact);
    } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        // An HTTP/1.1 answer's head kept only what passes, and the challenge.
        headers.remove(header::WWW_AUTHENTICATE);
    }
    let sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if sse {
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    res.map(Reply::Upstream)
}
