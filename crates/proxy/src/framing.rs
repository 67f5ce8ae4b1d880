//! HTTP/1.1 message framing (RFC 9112 §6–§7), shared by the proxy's server toward clients
//! and its client toward upstreams: what the header fields say about where a body ends and
//! whether the connection stays open, and the decoding of a chunked body piece by piece.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{HeaderName, header};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncRead;

/// A chunk-size line (with its extensions) or a trailer field may not be longer.
const MAX_LINE: usize = 8 * 1024;

/// Room made in a read buffer before each read.
pub const READ_AHEAD: usize = 8 * 1024;

/// Reads what `stream` has into `read`'s spare room (made first when short); the bytes
/// read, 0 at the end of the stream.
pub fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    read: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if read.capacity() - read.len() < READ_AHEAD / 2 {
        read.reserve(READ_AHEAD);
    }
    tokio_util::io::poll_read_buf(Pin::new(stream), cx, read)
}

/// Why a message cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FramingError(pub &'static str);

/// What a message's header fields say about its framing and its connection (RFC 9112
/// §6.1, §6.3, §9.3), for requests and answers alike.
pub struct FramingFields {
    http10: bool,
    /// `Content-Length`, when given (all copies agreeing).
    pub length: Option<u64>,
    /// `Transfer-Encoding`, when given: whether its last coding is `chunked`.
    pub chunked: Option<bool>,
    /// `Connection: close`.
    pub close: bool,
    /// `Connection: keep-alive` on an HTTP/1.0 message.
    pub keep_alive: bool,
}

impl FramingFields {
    pub fn new(http10: bool) -> Self {
        Self {
            http10,
            length: None,
            chunked: None,
            close: false,
            keep_alive: false,
        }
    }

    /// Takes note of one header field; why the message is unusable, if it is.
    pub fn read(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), &'static str> {
        if *name == header::CONTENT_LENGTH {
            // Only the SP/HTAB around a field value is whitespace (RFC 9110 §5.5);
            // `str::trim` would take Unicode spaces too, reading `\u{2003}5` as 5 where
            // another reader of the same bytes refuses it.
            let length = std::str::from_utf8(value.trim_ascii())
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or("the Content-Length is not a number")?;
            if self.length.is_some_and(|l| l != length) {
                return Err("two different Content-Lengths");
            }
            self.length = Some(length);
        } else if *name == header::TRANSFER_ENCODING {
            // The last coding counts; `chunked` anywhere else is not a framing.
            self.chunked = Some(
                value
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked")),
            );
        } else if *name == header::CONNECTION {
            for token in value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && self.http10 {
                    self.keep_alive = true;
                }
            }
        }
        Ok(())
    }
}

/// Where a chunked body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunks {
    /// Before a chunk-size line.
    Size,
    /// In a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailers,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// The body ended (trailers, if any, read and dropped).
    End,
    /// More bytes are needed.
    More,
}

impl Chunks {
    /// Decodes from the start of `read`, taking what it used.
    pub fn next(&mut self, read: &mut BytesMut) -> Result<Step, FramingError> {
        loop {
            match *self {
                Chunks::Size => match httparse::parse_chunk_size(read) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        read.advance(used);
                        *self = if size == 0 {
                            Chunks::Trailers
                        } else {
                            Chunks::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) if read.len() < MAX_LINE => {
                        return Ok(Step::More);
                    }
                    _ => return Err(FramingError("a malformed chunk size")),
                },
                Chunks::Data(left) => {
                    if read.is_empty() {
                        return Ok(Step::More);
                    }
                    let n = left.min(read.len() as u64);
                    let data = read.split_to(n as usize).freeze();
                    *self = if n == left {
                        Chunks::DataEnd
                    } else {
                        Chunks::Data(left - n)
                    };
                    return Ok(Step::Data(data));
                }
                Chunks::DataEnd => {
                    if read.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &read[..2] != b"\r\n" {
                        return Err(FramingError("a chunk not ended by CRLF"));
                    }
                    read.advance(2);
                    *self = Chunks::Size;
                }
                Chunks::Trailers => {
                    let Some(end) = read.windows(2).position(|w| w == b"\r\n") else {
                        if read.len() >= MAX_LINE {
                            return Err(FramingError("a trailer field too long"));
                        }
                        return Ok(Step::More);
                    };
                    read.advance(end + 2);
                    if end == 0 {
                        return Ok(Step::End);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of `step` bytes.
    fn dechunk(wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), FramingError> {
        let mut chunks = Chunks::Size;
        let mut read = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match chunks.next(&mut read)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::End => return Ok((out, read.len() + wire.len() - fed)),
                Step::More => {
                    if fed == wire.len() {
                        return Err(FramingError("the body ended early"));
                    }
                    let n = step.min(wire.len() - fed);
                    read.extend_from_slice(&wire[fed..fed + n]);
                    fed += n;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_pieces_they_arrive_in() {
        let wire =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in 1..=wire.len() {
            let (body, left) = dechunk(wire, step).unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
            assert_eq!(left, 0, "step {step}");
        }
    }

    #[test]
    fn broken_chunked_framing_is_an_error_not_a_guess() {
        for wire in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhel",
        ] {
            assert!(
                dechunk(wire, 3).is_err(),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
    }
}
