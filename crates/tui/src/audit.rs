//! The calls of another tether's proxy, read from the audit log (`logs/calls.jsonl`) when
//! that tether — the service, `tether serve` — serves the proxy and this process's engine
//! records nothing. A task reads the log's history once, then its tail as it grows and
//! rotates (`tether_core::calls::tail`); the file reads run on the blocking pool, never on
//! the UI's thread. What it sends is bounded: the newest calls per connection the views
//! keep, then each read's new records, through a short channel the UI drains.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use tether_core::calls::tail::{self, Tail};
use tether_core::calls::{CallRecord, Rings};
use tether_core::printable::printable;

use crate::calls::keep;

/// How often the log is looked at for new calls.
const POLL: Duration = Duration::from_millis(250);

/// Batches waiting for the UI; the reader waits when they are not taken.
const BACKLOG: usize = 4;

/// Starts reading the calls in the log folder `dir`; batches of records, oldest first.
pub fn spawn(dir: PathBuf) -> mpsc::Receiver<Vec<Arc<CallRecord>>> {
    let (tx, rx) = mpsc::channel(BACKLOG);
    tokio::spawn(async move {
        let Ok((mut tail, history)) = tokio::task::spawn_blocking(move || history(&dir)).await
        else {
            return;
        };
        if tx.send(history).await.is_err() {
            return;
        }
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            loop {
                let Ok((back, records)) = tokio::task::spawn_blocking(move || {
                    let records = tail.read();
                    (tail, records)
                })
                .await
                else {
                    return;
                };
                tail = back;
                if records.is_empty() {
                    break;
                }
                let batch = records.into_iter().map(shown).map(Arc::new).collect();
                if tx.send(batch).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The log as it is, the newest calls per connection only, and its tail to follow it
/// from there. The tail is opened first, so no call falls between the two.
fn history(dir: &Path) -> (Tail, Vec<Arc<CallRecord>>) {
    let mut tail = Tail::at_start(dir);
    let mut rings = Rings::new();
    keep(&mut rings, tail::read_rotated(dir).map(shown).map(Arc::new));
    loop {
        let records = tail.read();
        if records.is_empty() {
            break;
        }
        keep(&mut rings, records.into_iter().map(shown).map(Arc::new));
    }
    let mut all: Vec<Arc<CallRecord>> = rings.into_values().flatten().collect();
    all.sort_by_key(|r| r.at_ms);
    (tail, all)
}

/// A record from a file as the screen may show it: the log is tether's own, but a file
/// can be edited, so its text goes through the same escaping as a server's.
fn shown(mut r: CallRecord) -> CallRecord {
    for text in [&mut r.connection, &mut r.client, &mut r.http] {
        *text = printable(text, 120);
    }
    for text in [
        &mut r.method,
        &mut r.name,
        &mut r.protocol,
        &mut r.error_message,
        &mut r.diagnosis,
    ]
    .into_iter()
    .flatten()
    {
        *text = printable(text, 200);
    }
    r
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[tokio::test]
    async fn the_history_then_each_new_call_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let line = |name: &str, at: i64| {
            format!(
                "{{\"at_ms\":{at},\"connection\":\"c\",\"client\":\"l\",\"http\":\"POST\",\"name\":\"{name}\",\"status\":200}}\n"
            )
        };
        let log = dir.path().join(tether_core::calls::log::FILE);
        std::fs::write(dir.path().join("calls.jsonl.1"), line("rotated", 1)).unwrap();
        std::fs::write(&log, line("current\\u001b[2J", 2)).unwrap();
        let mut rx = spawn(dir.path().to_path_buf());
        let first = rx.recv().await.unwrap();
        let names: Vec<_> = first.iter().filter_map(|r| r.name.clone()).collect();
        assert_eq!(
            names,
            ["rotated", "current\\x1b[2J"],
            "escaped, oldest first"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(line("later", 3).as_bytes())
            .unwrap();
        let next = rx.recv().await.unwrap();
        assert_eq!(next[0].name.as_deref(), Some("later"));
    }
}
