//! An answer's body as the upstream sends it, handed on piece by piece as it arrives
//! (chunked framing decoded, SSE events never held back), and the connection given back to
//! its pool once the body has been read to the last byte.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use super::parse::Framing;
use super::{Conn, H1Error};
use crate::framing::{Chunks, Step, fill};

/// Where a connection goes once its answer has been read whole.
pub trait Home {
    fn take_back(self, conn: Box<Conn>);
}

/// An answer's body as the upstream sends it.
pub struct Body<H: Home> {
    /// Held while the body is being read.
    conn: Option<Box<Conn>>,
    state: State,
    keep_alive: bool,
    home: Option<H>,
    /// The body when it arrived with the head (most JSON answers): passed on as it is.
    whole: Option<Bytes>,
}

enum State {
    Length(u64),
    Chunked(Chunks),
    UntilClose,
    Done,
}

impl<H: Home> Body<H> {
    pub(super) fn new(mut conn: Box<Conn>, framing: Framing, keep_alive: bool, home: H) -> Self {
        let mut body = Self {
            conn: None,
            state: State::Done,
            keep_alive,
            home: Some(home),
            whole: None,
        };
        match framing {
            Framing::Empty | Framing::Length(0) => {}
            Framing::Length(n) if conn.read.len() as u64 >= n => {
                body.whole = Some(conn.read.split_to(n as usize).freeze());
            }
            Framing::Length(n) => body.state = State::Length(n),
            Framing::Chunked => body.state = State::Chunked(Chunks::Size),
            Framing::UntilClose => body.state = State::UntilClose,
        }
        match body.state {
            State::Done => body.finish(conn),
            _ => body.conn = Some(conn),
        }
        body
    }

    /// The body is read whole: the connection goes home if it can carry another request.
    fn finish(&mut self, conn: Box<Conn>) {
        self.state = State::Done;
        if self.keep_alive
            && conn.read.is_empty()
            && let Some(home) = self.home.take()
        {
            home.take_back(conn);
        }
    }

    fn next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, H1Error>>> {
        if let Some(whole) = self.whole.take() {
            return Poll::Ready(Some(Ok(whole)));
        }
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let read = &mut conn.read;
            let data = match &mut self.state {
                State::Done => None,
                State::Length(left) if !read.is_empty() => {
                    let n = (*left).min(read.len() as u64);
                    *left -= n;
                    Some(read.split_to(n as usize).freeze())
                }
                State::Chunked(chunks) => match chunks.next(read)? {
                    Step::Data(data) => Some(data),
                    Step::End => {
                        let conn = self.conn.take().expect("held while reading");
                        self.finish(conn);
                        return Poll::Ready(None);
                    }
                    Step::More => None,
                },
                State::UntilClose if !read.is_empty() => Some(read.split().freeze()),
                State::Length(_) | State::UntilClose => None,
            };
            if let Some(data) = data {
                if matches!(self.state, State::Length(0)) {
                    let conn = self.conn.take().expect("held while reading");
                    self.finish(conn);
                }
                return Poll::Ready(Some(Ok(data)));
            }
            match ready!(fill(&mut conn.stream, &mut conn.read, cx)) {
                Ok(0) if matches!(self.state, State::UntilClose) => {
                    self.state = State::Done;
                    self.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(H1Error::ClosedMidAnswer)));
                }
                Ok(_) => {}
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(H1Error::Io(e))));
                }
            }
        }
    }
}

impl<H: Home + Unpin> hyper::body::Body for Body<H> {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = self.get_mut();
        let next = this.next(cx);
        if let Poll::Ready(Some(Err(_))) = &next {
            this.state = State::Done;
            this.conn = None;
        }
        next.map(|frame| frame.map(|data| data.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.whole.is_none() && matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.whole, &self.state) {
            (Some(whole), _) => SizeHint::with_exact(whole.len() as u64),
            (None, State::Done) => SizeHint::with_exact(0),
            (None, State::Length(left)) => SizeHint::with_exact(*left),
            _ => SizeHint::default(),
        }
    }
}
