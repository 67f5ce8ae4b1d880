//! A proxy made of hyper alone: hyper's HTTP/1 server and hyper's HTTP/1 client connections
//! (plain writes, as tether's), a pool that is a `Vec`, one single-threaded runtime, and
//! nothing else — no Host/Origin checks, no secret lookup, no credential, no metrics. Run as
//! a child process of the bench (the bench's own binary in the floor role) next to nginx and
//! tether, it shows what hyper's parts cost before a proxy does any work of its own (tether
//! serves clients with hyper's server but reaches HTTP/1.1 upstreams with its own exchange).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Set to this value in `crate::upstream::ROLE_ENV`, the bench binary runs as the floor
/// proxy toward the upstream named in `UPSTREAM_ENV`.
pub const ROLE: &str = "floor";
pub const UPSTREAM_ENV: &str = "TETHER_BENCH_UPSTREAM";

type Pool = Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>;

pub fn run() {
    let upstream: SocketAddr = std::env::var(UPSTREAM_ENV)
        .expect("the upstream's address")
        .parse()
        .expect("an address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("floor runtime");
    runtime.block_on(serve(upstream));
}

async fn serve(upstream: SocketAddr) {
    let listener = crate::upstream::listen_for_the_bench().await;
    let pool: Pool = Arc::default();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let pool = pool.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| forward(pool.clone(), upstream, req));
            let _ = hyper::server::conn::http1::Builder::new()
                .writev(false)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn forward(
    pool: Pool,
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = Request::new(Full::new(body));
    *out.method_mut() = parts.method;
    *out.uri_mut() = parts.uri;
    *out.headers_mut() = parts.headers;
    let mut sender = checkout(&pool, upstream).await;
    let response = sender.send_request(out).await.expect("upstream answer");
    // Back in the pool at once; it is taken again once it is ready for another request.
    pool.lock().expect("pool").push(sender);
    Ok(response)
}

async fn checkout(pool: &Pool, upstream: SocketAddr) -> SendRequest<Full<Bytes>> {
    {
        let mut idle = pool.lock().expect("pool");
        idle.retain(|s| !s.is_closed());
        if let Some(i) = idle.iter().position(|s| s.is_ready()) {
            return idle.swap_remove(i);
        }
    }
    let tcp = tokio::net::TcpStream::connect(upstream)
        .await
        .expect("connect upstream");
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}
