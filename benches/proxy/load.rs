//! The load generator, written with hyper's low-level HTTP/1.1 client so every figure is
//! under our control: a fixed number of keep-alive connections, each sending its next
//! MCP request as soon as the last answer is read in full (a closed loop), every
//! latency kept. Also the SSE client that times the first event and the whole stream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::upstream::EVENTS;

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"progressToken":1}}}"#;

/// One way to reach the upstream's MCP endpoint: directly, or through a proxy.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// Path of the MCP endpoint on `addr` (tether's carries the client secret).
    pub path: String,
}

/// One closed-loop run at a fixed concurrency.
#[derive(Default)]
pub struct Phase {
    /// Answers received, warm-up included (to compare with the upstream's counter).
    pub answered: u64,
    /// Requests started in the measured window.
    pub measured: u64,
    pub seconds: f64,
    pub errors: u64,
    /// Latency of every measured request, in nanoseconds.
    pub latencies: Vec<u64>,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.measured as f64 / self.seconds
    }

    /// The `q` quantile of the measured latencies, in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        match sorted.len() {
            0 => f64::NAN,
            n => sorted[((n - 1) as f64 * q).round() as usize] as f64 / 1e3,
        }
    }
}

/// One streamed `tools/call`, seen from the client.
pub struct Stream {
    pub first_event: Duration,
    pub total: Duration,
    pub events: usize,
}

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> std::io::Result<Sender> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn mcp_request(target: &Target, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(target.path.as_str())
        .header(header::HOST, target.addr.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request")
}

/// Sends `tools/list` and reads the whole answer; `Ok(false)` for a status other than 200.
async fn list_tools(sender: &mut Sender, target: &Target) -> Result<bool, hyper::Error> {
    sender.ready().await?;
    let response = sender.send_request(mcp_request(target, LIST)).await?;
    let ok = response.status() == StatusCode::OK;
    response.into_body().collect().await?;
    Ok(ok)
}

/// `concurrency` connections, each in a closed loop for `warmup + measure`; only requests
/// started after the warm-up are timed and counted in the rate.
pub async fn phase(
    target: &Target,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
) -> Phase {
    let begin = Instant::now();
    let (t0, end) = (begin + warmup, begin + warmup + measure);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move { closed_loop(&target, t0, end).await })
        })
        .collect();
    let mut total = Phase {
        seconds: measure.as_secs_f64(),
        ..Phase::default()
    };
    for task in tasks {
        let part = task.await.expect("load task");
        total.answered += part.answered;
        total.measured += part.measured;
        total.errors += part.errors;
        total.latencies.extend(part.latencies);
    }
    total
}

async fn closed_loop(target: &Target, t0: Instant, end: Instant) -> Phase {
    let mut part = Phase::default();
    let mut sender = match connect(target.addr).await {
        Ok(s) => s,
        Err(_) => {
            part.errors += 1;
            return part;
        }
    };
    loop {
        let start = Instant::now();
        if start >= end {
            return part;
        }
        match list_tools(&mut sender, target).await {
            Ok(ok) => {
                part.answered += 1;
                part.errors += u64::from(!ok);
                if start >= t0 {
                    part.measured += 1;
                    part.latencies.push(start.elapsed().as_nanos() as u64);
                }
            }
            Err(_) => {
                // A closed keep-alive connection: count it and open another.
                part.errors += 1;
                match connect(target.addr).await {
                    Ok(s) => sender = s,
                    Err(_) => return part,
                }
            }
        }
    }
}

/// Streamed `tools/call`s one after another on one connection: `warmup` untimed, then
/// `count` timed.
pub async fn streams(target: &Target, warmup: usize, count: usize) -> std::io::Result<Vec<Stream>> {
    let mut sender = connect(target.addr).await?;
    let mut timed = Vec::with_capacity(count);
    for i in 0..warmup + count {
        let stream = stream(&mut sender, target)
            .await
            .map_err(std::io::Error::other)?;
        if i >= warmup {
            timed.push(stream);
        }
    }
    Ok(timed)
}

async fn stream(sender: &mut Sender, target: &Target) -> Result<Stream, hyper::Error> {
    sender.ready().await?;
    let start = Instant::now();
    let response = sender.send_request(mcp_request(target, CALL)).await?;
    let mut body = response.into_body();
    let (mut events, mut first_event, mut last_event, mut newline) = (0, None, None, false);
    // Read to the end of the body, so the connection can carry the next stream.
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        // An event ends with an empty line.
        for &b in data.iter() {
            if b == b'\n' && newline {
                events += 1;
                first_event.get_or_insert_with(|| start.elapsed());
                if events == EVENTS {
                    last_event = Some(start.elapsed());
                }
                newline = false;
            } else {
                newline = b == b'\n';
            }
        }
    }
    Ok(Stream {
        first_event: first_event.unwrap_or(Duration::MAX),
        total: last_event.unwrap_or_else(|| start.elapsed()),
        events,
    })
}

/// The upstream's count of MCP requests received so far.
pub async fn upstream_calls(upstream: SocketAddr) -> u64 {
    let count = async {
        let tcp = TcpStream::connect(upstream).await?;
        let (mut sender, connection) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        let request = Request::get("/count")
            .header(header::HOST, upstream.to_string())
            .body(Empty::new())
            .map_err(std::io::Error::other)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)?;
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        String::from_utf8_lossy(&body)
            .trim()
            .parse::<u64>()
            .map_err(std::io::Error::other)
    };
    count.await.expect("the upstream's request counter")
}
