//! Server-sent events for the MCP endpoint: framing, and a response whose body is fed
//! from a channel so handlers can stream at their own pace.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::mpsc;

/// One SSE event carrying a JSON-RPC message.
pub(crate) fn event(id: impl std::fmt::Display, message: &Value) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: message\ndata: {message}\n\n"))
}

/// The priming event of a stream (an id and an empty data field), so a client can
/// resume from it and knows the stream is open.
pub(crate) fn priming(id: impl std::fmt::Display) -> Bytes {
    Bytes::from(format!("id: {id}\nretry: 1000\ndata:\n\n"))
}

/// A `text/event-stream` response and the sender that feeds it. The stream ends when
/// the sender is dropped; a send fails once the client has gone.
pub(crate) fn channel() -> (mpsc::Sender<Bytes>, Response) {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx must pass each event on at once.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    (tx, resp)
}
