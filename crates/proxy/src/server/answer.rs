//! Writing an answer to a local client: its head with the framing this write uses, then
//! its body — in the same write when it is already there, else piece by piece (chunked
//! when its length is unknown) so a streamed answer (SSE) reaches the client at once.

use std::io;
use std::pin::Pin;
use std::task::Poll;

use axum::http::{HeaderMap, StatusCode, Version, header};
use hyper::body::Body as _;
use tokio::io::AsyncWriteExt;

use super::Client;
use crate::Answer;
use crate::calls::Tally;

/// A streamed answer is written once this much of it is waiting.
const WRITE_AT: usize = 64 * 1024;

impl Client {
    /// Writes `answer`: its head, then its body — in the same write when the body is
    /// already there, else piece by piece as it arrives (chunked when its length is not
    /// known). A client that goes away meanwhile ends the answer. What goes out of the
    /// body is counted in `tally`, for the call's record.
    pub(super) async fn answer(
        &mut self,
        answer: Answer,
        head_only: bool,
        version: Version,
        close: bool,
        mut tally: Option<&mut Tally>,
    ) -> io::Result<()> {
        let (parts, mut body) = answer.into_parts();
        let status = parts.status;
        let no_body = head_only
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let exact = body.size_hint().exact();
        let chunked = !no_body && exact.is_none() && version == Version::HTTP_11;
        // An HTTP/1.0 client learns where a body of unknown length ends by the close.
        let close = close || (!no_body && exact.is_none() && !chunked);
        // An HTTP/1.0 client keeps the connection only when the answer says so.
        let connection = if close {
            Some("close")
        } else if version == Version::HTTP_10 {
            Some("keep-alive")
        } else {
            None
        };
        let event_stream = write_head(
            &mut self.write,
            status,
            &parts.headers,
            exact,
            no_body,
            chunked,
            connection,
        );
        if event_stream && let Some(tally) = tally.as_deref_mut() {
            tally.event_stream();
        }
        if no_body {
            return self.flush().await;
        }
        loop {
            // What is there already goes out with what is waiting; only an answer that
            // has to wait for more is written first.
            let frame =
                match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx)))
                    .await
                {
                    Poll::Ready(frame) => frame,
                    Poll::Pending => {
                        self.flush().await?;
                        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
                        tokio::select! {
                            biased;
                            frame = next => frame,
                            () = self.gone() => return Err(io::ErrorKind::ConnectionAborted.into()),
                        }
                    }
                };
            match frame {
                None => break,
                Some(Err(e)) => {
                    // The upstream failed mid-answer: the client sees it cut short.
                    tracing::debug!("an answer's body failed: {e}");
                    self.flush().await?;
                    return Err(io::ErrorKind::ConnectionAborted.into());
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers are not passed on
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if let Some(tally) = tally.as_deref_mut() {
                        tally.count(&data);
                    }
                    if chunked {
                        let mut hex = [0u8; 16];
                        self.write.extend_from_slice(hex_len(&mut hex, data.len()));
                        self.write.extend_from_slice(b"\r\n");
                        self.write.extend_from_slice(&data);
                        self.write.extend_from_slice(b"\r\n");
                    } else {
                        self.write.extend_from_slice(&data);
                    }
                    if self.write.len() >= WRITE_AT {
                        self.flush().await?;
                    }
                }
            }
            if body.is_end_stream() {
                break;
            }
        }
        if chunked {
            self.write.extend_from_slice(b"0\r\n\r\n");
        }
        self.flush().await
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.write.is_empty() {
            self.tcp.write_all(&self.write).await?;
            self.write.clear();
        }
        if self.write.capacity() > WRITE_AT * 2 {
            self.write = Vec::with_capacity(4 * 1024);
        }
        Ok(())
    }
}

/// `n` in lowercase hexadecimal, as a chunk's size line wants it.
pub(super) fn hex_len(buf: &mut [u8; 16], mut n: usize) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[n % 16];
        n /= 16;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// The status line, the answer's headers (its own framing fields replaced by the ones
/// this write uses), and the blank line; whether the answer is an event stream (SSE), as
/// its content type says, looked at while its fields go by.
pub(super) fn write_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    exact: Option<u64>,
    no_body: bool,
    chunked: bool,
    connection: Option<&str>,
) -> bool {
    let mut event_stream = false;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let framing = *name == header::TRANSFER_ENCODING
            || *name == header::CONNECTION
            || name.as_str() == "keep-alive";
        if framing {
            continue;
        }
        if *name == header::CONTENT_LENGTH {
            // A HEAD answer's length describes the body it does not carry.
            if !no_body {
                continue;
            }
        } else if *name == header::CONTENT_TYPE {
            event_stream = value.as_bytes().starts_with(b"text/event-stream");
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !no_body {
        if let Some(n) = exact {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        } else if chunked {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
    }
    if let Some(connection) = connection {
        out.extend_from_slice(b"connection: ");
        out.extend_from_slice(connection.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    event_stream
}
