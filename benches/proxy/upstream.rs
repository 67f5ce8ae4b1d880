//! The fast upstream every path ends at, run as a child process of the bench (the bench's
//! own binary in the upstream role) so it can share a core with the proxy under test:
//! a Streamable-HTTP-like `POST /mcp` that answers `tools/list` with a small JSON-RPC
//! result and `tools/call` with a 1,000-event `text/event-stream`, counting every MCP
//! request it is sent. `GET /count` reads the counter (asked directly, never through a
//! proxy). It exits when its standard input closes, so it never outlives the bench.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::io::AsyncReadExt;

/// Set to this value in the environment, the bench binary runs as the upstream.
pub const ROLE_ENV: &str = "TETHER_BENCH_ROLE";
pub const ROLE: &str = "upstream";

/// Events in one streamed `tools/call` answer: 999 progress notifications, then the result.
pub const EVENTS: usize = 1_000;

const TOOLS: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","description":"Echoes its input","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}}]}}"#;

pub fn run() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("upstream runtime");
    runtime.block_on(serve());
}

/// A loopback listener for a child role of the bench: its address goes to stdout (the
/// bench reads it), and the process exits when its standard input closes, so it never
/// outlives the bench.
pub async fn listen_for_the_bench() -> tokio::net::TcpListener {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    println!("{}", listener.local_addr().expect("listener address"));
    tokio::spawn(async {
        let mut sink = [0u8; 64];
        while tokio::io::stdin()
            .read(&mut sink)
            .await
            .is_ok_and(|n| n > 0)
        {}
        std::process::exit(0);
    });
    listener
}

async fn serve() {
    let listener = listen_for_the_bench().await;
    let calls = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/mcp", post(mcp))
        .route("/count", get(count))
        .with_state(calls);
    // As MCP servers' HTTP stacks do (Node, uvicorn): no Nagle delay on small writes.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("upstream serve");
}

async fn count(State(calls): State<Arc<AtomicU64>>) -> String {
    calls.load(Ordering::Relaxed).to_string()
}

async fn mcp(State(calls): State<Arc<AtomicU64>>, body: Bytes) -> Response {
    calls.fetch_add(1, Ordering::Relaxed);
    if body.windows(12).any(|w| w == b"\"tools/call\"") {
        stream()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], TOOLS).into_response()
    }
}

/// Every event is its own chunk, ready at once: the upstream is never the slow part.
fn stream() -> Response {
    let events = futures_util::stream::iter(
        (1..=EVENTS).map(|i| Ok::<_, Infallible>(Bytes::from(event(i)))),
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

fn event(i: usize) -> String {
    if i < EVENTS {
        format!(
            "id: {i}\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progressToken\":1,\"progress\":{i},\"total\":{EVENTS}}}}}\n\n"
        )
    } else {
        format!(
            "id: {i}\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"done\"}}]}}}}\n\n"
        )
    }
}
