//! Clients asking to sign in to tether, waiting for the user's answer: the ones waiting in
//! this process's proxy come with the engine's state; the ones waiting in the proxy another
//! tether serves (the service, `tether serve`) are read from its `consents.json` by a task
//! that looks at the file twice a second, on the blocking pool, never on the UI's thread.
//! Only what the dialog shows is kept: the form token stays in the file, and the engine
//! reads it from there to answer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use tether_core::local_auth::consent::{REQUEST_LIFE, Request};
use tether_core::local_auth::shared;

/// How often the file is looked at.
const POLL: Duration = Duration::from_millis(500);

/// A request the dialog shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asking {
    pub request: Request,
    /// When it was asked (for one in this process: when this UI first saw it).
    pub asked_at: DateTime<Utc>,
}

impl Asking {
    /// Whether it still waits at `now` (a request lives ten minutes).
    pub fn alive(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at()
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        let life = chrono::Duration::from_std(REQUEST_LIFE).unwrap_or_default();
        self.asked_at + life
    }
}

/// Follows the file at `path` for the requests waiting in the proxy on `addr`; sends the
/// whole list each time the file changes.
pub fn spawn(path: PathBuf, addr: SocketAddr) -> mpsc::Receiver<Vec<Asking>> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        // `None` until the first look, so the first list is always sent.
        let mut seen: Option<Option<Stamp>> = None;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            let path = path.clone();
            let last = seen.clone();
            let Ok(read) = tokio::task::spawn_blocking(move || {
                let now = stamp(&path);
                let changed = last.as_ref() != Some(&now);
                let waiting = changed.then(|| asking(&path, addr));
                (now, waiting)
            })
            .await
            else {
                return;
            };
            seen = Some(read.0);
            if let Some(waiting) = read.1
                && tx.send(waiting).await.is_err()
            {
                return;
            }
        }
    });
    rx
}

/// What tells a rewritten file apart: it is renamed over, so a new inode, and its time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        inode: m.ino(),
        modified: m.modified().ok(),
        len: m.len(),
    })
}

fn asking(path: &std::path::Path, addr: SocketAddr) -> Vec<Asking> {
    shared::waiting_at(path, addr, Utc::now())
        .into_iter()
        .map(|w| Asking {
            request: w.request(),
            asked_at: w.asked_at,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_core::local_auth::consent::{Ask, Consents};

    #[tokio::test]
    async fn the_file_is_followed_as_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(shared::FILE);
        let addr = SocketAddr::from(([127, 0, 0, 1], 7878));
        let mut rx = spawn(path.clone(), addr);
        assert_eq!(rx.recv().await.unwrap(), [], "no file: nothing waits");
        let consents = Consents::default();
        let (id, _) = consents.ask(Ask {
            client_id: "c".into(),
            client_name: "Codex".into(),
            connection: "linear".into(),
            redirect_uri: "http://127.0.0.1:1/cb".into(),
            state: None,
            challenge: "x".repeat(43),
            resource: "http://127.0.0.1:7878/c/linear/mcp".into(),
            issuer: "http://127.0.0.1:7878".into(),
        });
        shared::publish(&path, addr, &consents).unwrap();
        let shown = rx.recv().await.unwrap();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].request.id, id);
        assert_eq!(shown[0].request.client_name, "Codex");
        consents.decide(&id, true);
        shared::publish(&path, addr, &consents).unwrap();
        assert_eq!(rx.recv().await.unwrap(), [], "answered: gone");
    }
}
