//! The collector: a thread of its own that takes the proxy's drafts every
//! [`TICK`], makes records of them, keeps the newest [`RING`] per connection for the front
//! ends and appends them to the audit log. It polls instead of being woken per call, so
//! handing a draft over costs the proxy one queue push and never a wake-up.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::log::LogWriter;
use super::{CallRecord, CallsConfig, Capture, QUEUE, Recorder, describe};

/// Records kept in memory per connection.
pub const RING: usize = 500;

/// How often the collector looks for drafts.
const TICK: Duration = Duration::from_millis(200);

/// Most of an answer a metadata draft carries (a JSON-RPC error is near its start).
const ERROR_WITHIN: usize = 16 * 1024;

/// The newest records per connection, newest last.
pub type Rings = BTreeMap<String, VecDeque<Arc<CallRecord>>>;

/// The collector's shared side: the rings and whether they moved since last taken.
#[derive(Default)]
pub struct Collector {
    rings: Mutex<Rings>,
    changed: AtomicBool,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Calls recorded since start (the ring forgets, this does not).
    recorded: AtomicU64,
}

impl Collector {
    /// Starts the collector for `config`, writing the audit log in `log_dir` when given.
    /// `None` when `capture = "off"`: nothing is recorded but the engine's counts.
    pub fn start(
        config: &CallsConfig,
        log_dir: Option<PathBuf>,
        rings: bool,
    ) -> Option<(Arc<Self>, Arc<Recorder>)> {
        if config.capture == Capture::Off {
            return None;
        }
        let (tx, rx) = sync_channel(QUEUE);
        let recorder = Arc::new(Recorder {
            tx,
            capture: config.capture,
            keep: match config.capture {
                Capture::Full => config.capture_max_bytes,
                _ => ERROR_WITHIN,
            },
            dropped: AtomicU64::new(0),
        });
        let collector = Arc::new(Self::default());
        let log = log_dir.map(|dir| LogWriter::new(dir, config));
        let (shared, capture, max) = (collector.clone(), config.capture, config.capture_max_bytes);
        let spawned = std::thread::Builder::new()
            .name("tether-calls".to_string())
            .spawn(move || shared.run(&rx, log, rings, capture, max));
        match spawned {
            Ok(thread) => {
                if let Ok(mut t) = collector.thread.lock() {
                    *t = Some(thread);
                }
            }
            Err(e) => tracing::warn!("calls are not recorded: cannot start a thread: {e}"),
        }
        Some((collector, recorder))
    }

    fn run(
        &self,
        rx: &Receiver<super::CallDraft>,
        mut log: Option<LogWriter>,
        rings: bool,
        capture: Capture,
        max: usize,
    ) {
        let mut failing = false;
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            let mut took = 0u64;
            let gone = loop {
                match rx.try_recv() {
                    Ok(draft) => {
                        let line = describe::describe(&draft, capture, max);
                        if let Some(log) = &mut log {
                            log.append(&line);
                        }
                        if rings {
                            self.keep(line.to_record());
                        }
                        took += 1;
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if took > 0 {
                self.recorded.fetch_add(took, Ordering::Relaxed);
                self.changed.store(true, Ordering::Release);
                if let Some(log) = &mut log {
                    match log.flush() {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!("cannot write the calls log: {e}");
                        }
                        Err(_) => {}
                    }
                }
            }
            if stopping || gone {
                return;
            }
            std::thread::park_timeout(TICK);
        }
    }

    fn keep(&self, record: CallRecord) {
        if let Ok(mut rings) = self.rings.lock() {
            let ring = crate::engine::slot(&mut rings, &record.connection);
            if ring.len() == RING {
                ring.pop_front();
            }
            ring.push_back(Arc::new(record));
        }
    }

    /// Whether records arrived since the last call.
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }

    /// The rings as they are now.
    pub fn rings(&self) -> Rings {
        self.rings.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Calls recorded since start.
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// Takes what is queued, writes it, and ends the thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
