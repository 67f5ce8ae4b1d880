//! The collector: a thread of its own that takes the recorder's batch of lines every
//! [`TICK`] (or as soon as it is [`WAKE_AT`](super::WAKE_AT) long), appends it to the audit log with one write, and — where a front end of this
//! process shows calls — keeps the newest [`RING`] records per connection. It polls
//! instead of being woken per call, so recording a call never wakes a thread.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::log::{self, LogWriter};
use super::{CallRecord, CallsConfig, Capture, Recorder};

/// Records kept in memory per connection.
pub const RING: usize = 500;

/// How often the collector takes the batch: a call is in the log within this much.
const TICK: Duration = Duration::from_millis(200);

/// The newest records per connection, newest last.
pub type Rings = BTreeMap<String, VecDeque<Arc<CallRecord>>>;

/// The collector's shared side: the rings and whether they moved since last taken.
#[derive(Default)]
pub struct Collector {
    rings: Mutex<Rings>,
    changed: AtomicBool,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Collector {
    /// Starts the collector for `config`, writing the audit log in `log_dir` when given
    /// and keeping records for the front ends when `rings`. `None` when `capture = "off"`:
    /// nothing is recorded but the engine's counts.
    pub fn start(
        config: &CallsConfig,
        log_dir: Option<PathBuf>,
        rings: bool,
    ) -> Option<(Arc<Self>, Arc<Recorder>)> {
        if config.capture == Capture::Off {
            return None;
        }
        let recorder = Arc::new(Recorder::new(config));
        let collector = Arc::new(Self::default());
        let log = log_dir.map(|dir| LogWriter::new(dir, config));
        let (shared, from) = (collector.clone(), recorder.clone());
        let spawned = std::thread::Builder::new()
            .name("tether-calls".to_string())
            .spawn(move || shared.run(&from, log, rings));
        match spawned {
            Ok(thread) => {
                let _ = recorder.collector.set(thread.thread().clone());
                if let Ok(mut t) = collector.thread.lock() {
                    *t = Some(thread);
                }
            }
            Err(e) => tracing::warn!("calls are not recorded: cannot start a thread: {e}"),
        }
        Some((collector, recorder))
    }

    fn run(&self, recorder: &Recorder, mut log: Option<LogWriter>, rings: bool) {
        let mut batch = Vec::with_capacity(super::BATCH);
        let mut failing = false;
        let mut dropped = 0;
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            recorder.take(&mut batch);
            if !batch.is_empty() {
                if let Some(log) = &mut log {
                    match log.write(&batch) {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!("cannot write the calls log: {e}");
                        }
                        Err(_) => {}
                    }
                }
                if rings {
                    self.keep(&batch);
                }
                self.changed.store(true, Ordering::Release);
                // A batch that grew while the collector fell behind is not kept at its size.
                if batch.capacity() > 4 * super::BATCH {
                    batch = Vec::with_capacity(super::BATCH);
                }
            }
            if recorder.dropped() > dropped {
                dropped = recorder.dropped();
                tracing::warn!("{dropped} calls were not recorded: the calls log fell behind");
            }
            if stopping {
                return;
            }
            std::thread::park_timeout(TICK);
        }
    }

    /// Keeps the batch's records in the rings (read back from their lines: only a process
    /// with a front end pays for it).
    fn keep(&self, batch: &[u8]) {
        let Ok(mut rings) = self.rings.lock() else {
            return;
        };
        for record in log::read_lines(batch) {
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

    /// Writes what is waiting and ends the thread: on a clean stop no call is lost.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
