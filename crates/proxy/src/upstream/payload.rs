//! An upstream answer's body, whichever kind of connection delivers it: tether's own
//! HTTP/1.1 body or hyper's HTTP/2 one, behind one `Body` type.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::BoxError;
use super::pool::Return;
use crate::h1;

/// An upstream answer's body, as either kind of connection delivers it.
pub enum Payload {
    Http1(h1::Body<Return>),
    Http2(Incoming),
}

impl Body for Payload {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Payload::Http1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Payload::Http2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Payload::Http1(body) => body.is_end_stream(),
            Payload::Http2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Payload::Http1(body) => body.size_hint(),
            Payload::Http2(body) => body.size_hint(),
        }
    }
}
