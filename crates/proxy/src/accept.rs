//! The proxy's accept loop, on its own single-threaded runtime: each client connection
//! admitted under the connection cap, then served by tether's own HTTP/1.1 server, by
//! hyper's for HTTP/2 by prior knowledge, or by hyper's behind TLS when the listener has a
//! certificate (`tls.rs`); a heartbeat that keeps a timer due and tells the watchdog the
//! thread runs.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio_util::sync::CancellationToken;

use tether_core::config::ProxyConfig;
use tether_core::engine::Engine;

use super::{Alive, Handler, authz, drain, handler, limits, server, tls};

pub(crate) async fn serve(
    engine: Engine,
    config: ProxyConfig,
    listener: std::net::TcpListener,
    stop: CancellationToken,
    alive: Option<Alive>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let beating = tokio::spawn(heartbeat(alive));
    let port = listener.local_addr()?.port();
    let mut cap = limits::Cap::new(config.max_connections);
    let idle = std::time::Duration::from_secs(config.idle_timeout_secs.max(1));
    let tls = tls::acceptor(&config).map_err(std::io::Error::other)?;
    let handler = Arc::new(handler(engine, config, port));
    let drain = drain::Drain::default();
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        // Answers go out in several small writes (headers, then each streamed chunk):
        // without TCP_NODELAY, Nagle holds each behind the client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a client connection: {e}");
        }
        let Some(slot) = cap.admit() else {
            cap.refuse(tcp);
            continue;
        };
        let handler = handler.clone();
        let watcher = drain.watcher();
        if let Some(tls) = &tls {
            let tls = tls.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let ends = authz::Ends::of(&tcp);
                // A handshake that does not come is an idle connection.
                if let Ok(Ok(stream)) = tokio::time::timeout(idle, tls.accept(tcp)).await {
                    by_hyper(stream, handler, ends, false, watcher).await;
                }
            });
            continue;
        }
        tokio::spawn(async move {
            let _slot = slot;
            // A connection that sends nothing at all is idle too.
            let Ok(http2) = tokio::time::timeout(idle, server::opens_with_http2(&tcp)).await else {
                return;
            };
            if http2 {
                // HTTP/2 by prior knowledge: hyper's server.
                let ends = authz::Ends::of(&tcp);
                by_hyper(tcp, handler, ends, true, watcher).await;
            } else if let Err(e) = watcher.watch(server::Connection::new(tcp, handler)).await {
                tracing::debug!("a client connection ended with an error: {e}");
            }
        });
    }
    drop(listener);
    // A proxy that stops serving stops saying it is alive.
    beating.abort();
    drain.stop().await;
    Ok(())
}

/// Serves one client connection with hyper's server (HTTP/2 by prior knowledge, or
/// whatever TLS's ALPN chose), until it ends or the drain closes it.
async fn by_hyper<I>(
    io: I,
    handler: Arc<Handler>,
    ends: Option<authz::Ends>,
    http2_only: bool,
    watcher: drain::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler.handle(request, ends).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if http2_only {
        builder = builder.http2_only();
    }
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!("a client connection ended with an error: {e}");
    }
}

/// After a failed accept: a client that gave up is nothing; anything else (out of file
/// descriptors, typically) is said and waited out, as a busy loop would not help.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!("the proxy cannot accept a connection: {e}; trying again in 1 s");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}

/// Keeps a timer due within a second at all times. Every call sets an answer timeout due in
/// minutes; with an earlier timer already pending, setting it never has to wake the
/// runtime's driver through its event fd — two system calls saved per call, at the cost of
/// one wake-up a second. Each tick also tells `alive`, if anyone listens, that the proxy's
/// thread still runs its tasks.
async fn heartbeat(alive: Option<Alive>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if let Some(alive) = &alive {
            alive();
        }
    }
}
