//! Reading a request body whole from hyper (the HTTP/2 clients' path), refused once it
//! passes the limit — and what is left of a refused one read and dropped, so the client
//! reads the refusal rather than a reset.

use axum::body::Bytes;
use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};

pub enum BodyError {
    TooLarge,
    Unreadable(hyper::Error),
}

/// The whole request body, refused once it passes `limit` bytes (at once when its
/// declared length does). A body that arrives in one piece — nearly every JSON-RPC
/// message — is passed on without a copy.
pub async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    if body.size_hint().lower() > limit as u64 {
        discard_rest(&mut body).await;
        return Err(BodyError::TooLarge);
    }
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(BodyError::Unreadable)?.into_data() else {
            continue; // trailers
        };
        let total = first.len() + joined.as_ref().map_or(0, BytesMut::len) + data.len();
        if total > limit {
            discard_rest(&mut body).await;
            return Err(BodyError::TooLarge);
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut both = BytesMut::with_capacity(total);
                both.extend_from_slice(&first);
                both.extend_from_slice(&data);
                first = Bytes::new();
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

/// Reads and drops what is left of a refused body — up to 1 MiB, for up to 5 s — so that
/// a client still sending it reads the refusal rather than a connection reset under its
/// feet.
async fn discard_rest(body: &mut Incoming) {
    const AT_MOST: usize = 1 << 20;
    let drain = async {
        let mut left = AT_MOST;
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, Bytes::len);
            if len >= left {
                return;
            }
            left -= len;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
}
