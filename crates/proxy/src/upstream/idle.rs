//! An upstream answer's body with a bound on silence: given up on when the upstream sends
//! nothing for a while — except the answer to a call the client is still waiting on (a
//! tool may work for many minutes; the client has its own timeout, and a client that
//! goes away drops the call).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use super::BoxError;

/// An upstream answer's body that gives up when the upstream sends nothing for `timeout`.
/// A timer is armed only while the body waits, and moved only when it fires: a body whose
/// data is already there (most JSON answers) costs no timer, and a stream of many small
/// events not one timer each.
pub struct IdleTimeout<B> {
    body: B,
    /// `None`: never given up on (the answer to a call the client is still waiting on).
    timeout: Option<Duration>,
    /// When the body was first found waiting since its last frame; `None` right after a
    /// frame (the clock is read only when the body has to wait).
    waiting_since: Option<tokio::time::Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> IdleTimeout<B> {
    pub fn get_ref(&self) -> &B {
        &self.body
    }

    pub fn new(body: B, timeout: Option<Duration>) -> Self {
        Self {
            body,
            timeout,
            waiting_since: None,
            timer: None,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            this.waiting_since = None;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let Some(timeout) = this.timeout else {
            return Poll::Pending;
        };
        let since = *this
            .waiting_since
            .get_or_insert_with(tokio::time::Instant::now);
        let due = since + timeout;
        loop {
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if tokio::time::Instant::now() >= due {
                return Poll::Ready(Some(Err(format!(
                    "the upstream sent nothing for {} s",
                    timeout.as_secs()
                )
                .into())));
            }
            // Data came since the timer was set: wait for the rest of the new period.
            timer.as_mut().reset(due);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;

    use super::*;

    /// A body fed by hand: each sent chunk is one frame; dropping the sender ends it.
    fn fed() -> (
        tokio::sync::mpsc::UnboundedSender<Bytes>,
        IdleTimeout<impl Body<Data = Bytes, Error = Infallible> + Unpin>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let frames = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
        })
        .boxed();
        (
            tx,
            IdleTimeout::new(StreamBody::new(frames), Some(Duration::from_secs(10))),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_sending_never_times_out() {
        let (tx, body) = fed();
        let feeding = tokio::spawn(async move {
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(6)).await;
                tx.send(Bytes::from_static(b"event\n")).unwrap();
            }
        });
        let collected = body
            .collect()
            .await
            .expect("no timeout in 180 s of steady data");
        feeding.await.unwrap();
        assert_eq!(collected.to_bytes().len(), 30 * 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_times_out_after_the_idle_period() {
        let (tx, mut body) = fed();
        tx.send(Bytes::from_static(b"first")).unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        let started = tokio::time::Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(10) && waited < Duration::from_millis(10_100),
            "{waited:?}"
        );
        assert!(
            error.to_string().contains("sent nothing for 10 s"),
            "{error}"
        );
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn data_already_there_arms_no_timer() {
        let (tx, mut body) = fed();
        tx.send(Bytes::from_static(b"ready")).unwrap();
        drop(tx);
        assert!(body.frame().await.unwrap().is_ok());
        assert!(body.frame().await.is_none());
        assert!(body.timer.is_none());
    }
}
