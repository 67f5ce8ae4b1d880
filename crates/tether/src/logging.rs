//! Where tether's log goes: to stderr for `serve` and the other headless commands, to
//! `<state>/logs/tether.log` while a terminal UI owns the screen. One filter for both
//! (`RUST_LOG`, default `info`); a slow or stalled sink drops lines instead of stalling
//! the proxy.

use tether_core::paths::Paths;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

/// Log lines held for a slow sink before new ones are dropped. The queue's slots are
/// allocated and touched up front: the library's default (128,000 lines) alone kept 4 MB
/// resident in an idle `tether serve`.
const QUEUE_LINES: usize = 8_192;

/// Logs to stderr until the guard is dropped; in colour only on a terminal (a service's
/// journal or a log file gets plain text).
pub fn to_stderr() -> WorkerGuard {
    use std::io::IsTerminal as _;
    init(std::io::stderr(), std::io::stderr().is_terminal())
}

/// Logs to `<state>/logs/tether.log` until the guard is dropped: nothing may reach the
/// terminal a UI draws on.
pub fn to_file(paths: &Paths) -> anyhow::Result<WorkerGuard> {
    let dir = paths.log_dir();
    tether_core::paths::ensure_private_dir(&dir)?;
    Ok(init(
        tracing_appender::rolling::never(&dir, "tether.log"),
        false,
    ))
}

fn init<W: std::io::Write + Send + 'static>(sink: W, ansi: bool) -> WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUE_LINES)
        .lossy(true)
        .finish(sink);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer)
        .try_init();
    guard
}
