//! The proxy's view of the vault, as fresh as the vault file: a change another process
//! made — `tether revoke` cutting a client off, `tether url` adding one — is seen by the
//! very next request, not when the engine's once-a-second watcher gets to it.
//!
//! On Linux an inotify watch on the vault's folder says when the file was replaced; the
//! proxy asks the runtime whether that watch is readable, which costs no system call, so
//! the hot path pays two atomic loads. Elsewhere (or if inotify cannot be had) every
//! admission compares the file's stamp, a `stat`, with the one last loaded. A PostgreSQL
//! store has no file: its stamp is the revision its change feed last announced, in memory.

use std::sync::atomic::{AtomicU64, Ordering};

use tether_core::engine::Engine;

pub struct Freshness {
    #[cfg(target_os = "linux")]
    watch: Option<watch::Watch>,
    /// Changes to the vault file seen so far…
    seen: AtomicU64,
    /// …and how many of them the engine's view includes.
    loaded: AtomicU64,
    /// One reload at a time; requests that come meanwhile wait for it rather than being
    /// admitted on the view it replaces.
    reloading: tokio::sync::Mutex<()>,
    /// For a store that is no file (PostgreSQL): the revision last seen, compared with the
    /// one its change feed keeps in memory.
    revision: Option<AtomicU64>,
}

impl Freshness {
    /// Watches `engine`'s vault file. Must be called on the runtime that will serve the
    /// requests (the watch is registered with its I/O driver).
    pub fn new(engine: &Engine) -> Self {
        Self {
            #[cfg(target_os = "linux")]
            watch: engine.vault().watched_file().and_then(|file| {
                watch::Watch::new(file)
                    .inspect_err(|e| {
                        tracing::warn!(
                            "cannot watch the vault file ({e}); the proxy checks it on every request instead"
                        );
                    })
                    .ok()
            }),
            seen: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
            reloading: tokio::sync::Mutex::new(()),
            revision: engine
                .vault()
                .watched_file()
                .is_none()
                .then(|| AtomicU64::new(revision(engine))),
        }
    }

    /// Brings the engine's view up to date with the vault file if it changed since it was
    /// last loaded; waits for a reload another request began.
    pub async fn ensure(&self, engine: &Engine) {
        if self.changed(engine) {
            self.seen.fetch_add(1, Ordering::AcqRel);
        }
        if self.loaded.load(Ordering::Acquire) >= self.seen.load(Ordering::Acquire) {
            return;
        }
        let _one = self.reloading.lock().await;
        // Every change counted so far happened before this read of the file.
        let wanted = self.seen.load(Ordering::Acquire);
        if self.loaded.load(Ordering::Acquire) >= wanted {
            return;
        }
        engine.reload_if_changed().await;
        self.loaded.fetch_max(wanted, Ordering::AcqRel);
    }

    /// Whether the vault may have changed since the last call.
    fn changed(&self, engine: &Engine) -> bool {
        if let Some(seen) = &self.revision {
            let now = revision(engine);
            return seen.swap(now, Ordering::AcqRel) != now;
        }
        #[cfg(target_os = "linux")]
        if let Some(watch) = &self.watch {
            return watch.take_changes();
        }
        true
    }
}

/// The store's revision as its change feed last announced it (a memory read).
fn revision(engine: &Engine) -> u64 {
    engine.vault().stamp().map_or(0, |s| s.first())
}

#[cfg(target_os = "linux")]
mod watch {
    use std::ffi::OsString;
    use std::mem::MaybeUninit;
    use std::os::fd::OwnedFd;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::task::{Context, Poll, Waker};

    use rustix::fs::inotify;
    use tokio::io::unix::AsyncFd;

    /// An inotify watch on the folder holding the vault file: a transaction renames a new
    /// file over it, which only the folder sees.
    pub struct Watch {
        fd: AsyncFd<OwnedFd>,
        name: OsString,
    }

    impl Watch {
        pub fn new(file: &Path) -> std::io::Result<Self> {
            let (Some(folder), Some(name)) = (file.parent(), file.file_name()) else {
                return Err(std::io::ErrorKind::InvalidInput.into());
            };
            let fd = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)?;
            use inotify::WatchFlags as W;
            inotify::add_watch(
                &fd,
                folder,
                W::MOVED_TO
                    | W::CLOSE_WRITE
                    | W::DELETE
                    | W::MOVED_FROM
                    | W::DELETE_SELF
                    | W::MOVE_SELF,
            )?;
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(std::io::Error::other(
                    "no runtime to register the watch with",
                ));
            }
            // SAFETY: the `OwnedFd` is the descriptor's only owner, moved into the
            // `AsyncFd` and closed only when it is dropped: it stays open, and the same
            // descriptor, for the registration's whole life.
            #[allow(unsafe_code)]
            let fd = unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)?;
            Ok(Self {
                fd,
                name: name.to_os_string(),
            })
        }

        /// Whether the vault file changed since the last call. Asks the runtime's
        /// readiness first (no system call); reads the events only when there are some.
        pub fn take_changes(&self) -> bool {
            let mut cx = Context::from_waker(Waker::noop());
            let Poll::Ready(Ok(mut ready)) = self.fd.poll_read_ready(&mut cx) else {
                return false;
            };
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut events = inotify::Reader::new(self.fd.get_ref(), &mut buf);
            let mut changed = false;
            loop {
                match events.next() {
                    Ok(event) => {
                        // Events without a name are the folder's own, or a queue overflow.
                        changed |= event
                            .file_name()
                            .is_none_or(|n| n.to_bytes() == self.name.as_bytes());
                    }
                    Err(rustix::io::Errno::AGAIN) => {
                        ready.clear_ready();
                        return changed;
                    }
                    // Readiness stays set: the next request looks again.
                    Err(_) => return true,
                }
            }
        }
    }
}
