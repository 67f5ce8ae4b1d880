//! The listener: loopback TCP connections that a handler can cut mid-request, so a
//! response can be lost in transit the way a dropped network link loses it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The switch that cuts one connection. Handlers get it as `ConnectInfo<ConnCutter>`.
#[derive(Debug, Clone)]
pub(crate) struct ConnCutter(Arc<CutState>);

#[derive(Debug, Default)]
struct CutState {
    cut: AtomicBool,
    /// Close with a TCP reset (RST) rather than an orderly FIN.
    reset: AtomicBool,
    /// The task waiting to read, woken when the connection is cut so it notices.
    reader: Mutex<Option<Waker>>,
}

impl ConnCutter {
    /// From now on every read and write on the connection fails, so hyper drops it
    /// without writing a byte of the pending response: the client sees the connection
    /// close, not an HTTP answer.
    /// Cuts the connection and closes it with a TCP reset (SO_LINGER 0), as a server
    /// that drops a pending connection does: the client reads "connection reset by peer".
    pub fn reset(&self) {
        self.0.reset.store(true, Ordering::SeqCst);
        self.cut();
    }

    pub fn cut(&self) {
        self.0.cut.store(true, Ordering::SeqCst);
        let waker = self.0.reader.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// All connections still open, so shutdown can cut the ones that linger.
#[derive(Debug, Default, Clone)]
pub(crate) struct Connections(Arc<Mutex<Vec<Weak<CutState>>>>);

impl Connections {
    fn add(&self, state: &Arc<CutState>) {
        if let Ok(mut list) = self.0.lock() {
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(state));
        }
    }

    pub fn cut_all(&self) {
        let states: Vec<_> = match self.0.lock() {
            Ok(list) => list.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => return,
        };
        for s in states {
            ConnCutter(s).cut();
        }
    }
}

#[derive(Debug)]
pub(crate) struct SimListener {
    inner: TcpListener,
    conns: Connections,
}

impl SimListener {
    pub fn new(inner: TcpListener, conns: Connections) -> Self {
        SimListener { inner, conns }
    }
}

/// The peer address plus the connection's cutter.
#[derive(Debug, Clone)]
pub(crate) struct SimAddr {
    #[allow(dead_code)]
    pub peer: SocketAddr,
    cutter: ConnCutter,
}

impl Listener for SimListener {
    type Io = CuttableStream;
    type Addr = SimAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let state = Arc::new(CutState::default());
                    self.conns.add(&state);
                    let addr = SimAddr {
                        peer,
                        cutter: ConnCutter(state.clone()),
                    };
                    return (CuttableStream { stream, state }, addr);
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(SimAddr {
            peer: self.inner.local_addr()?,
            cutter: ConnCutter(Arc::new(CutState::default())),
        })
    }
}

impl Connected<IncomingStream<'_, SimListener>> for ConnCutter {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().cutter.clone()
    }
}

/// A TCP stream that fails every operation once cut.
#[derive(Debug)]
pub(crate) struct CuttableStream {
    stream: TcpStream,
    state: Arc<CutState>,
}

impl CuttableStream {
    fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }
}

fn cut_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection cut by the simulator",
    )
}

impl Drop for CuttableStream {
    fn drop(&mut self) {
        // A zero linger makes the close send RST; it never blocks (no data to linger on).
        if self.state.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        if let Ok(mut w) = self.state.reader.lock() {
            *w = Some(cx.waker().clone());
        }
        let res = Pin::new(&mut self.stream).poll_read(cx, buf);
        // A cut that raced with this read must not let the data through.
        if self.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        res
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
