//! The audit log of calls: `<state>/logs/calls.jsonl`, one JSON record a line, mode 0600 in
//! a 0700 folder. Written a batch at a time by the collector, each batch with one `write`
//! on a file opened for appending; rotated once a batch would take it past
//! `log_max_bytes` (`calls.jsonl.1` is the newest rotated file, up to `log_keep` of them),
//! and rotated files older than `log_max_age_days` removed. Several tethers may write it
//! (the service, a stdio bridge's own proxy): each holds an advisory lock on `calls.lock`
//! from its size check to its write, and follows a rotation another one made. Read by
//! `tether calls`, whichever tether wrote it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{CallRecord, CallsConfig};

pub const FILE: &str = "calls.jsonl";

/// Held by the writer that checks, rotates and appends, so two processes never rotate at
/// once nor write into a file another has just rotated away.
const LOCK: &str = "calls.lock";

/// Rotated files are looked at for their age at most this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The log as the collector appends to it.
pub struct LogWriter {
    dir: PathBuf,
    /// The current file, and its inode: another writer's rotation moves it away.
    file: Option<(File, u64)>,
    max_bytes: u64,
    keep: usize,
    max_age: Duration,
    pruned: Option<Instant>,
}

impl LogWriter {
    pub fn new(dir: PathBuf, config: &CallsConfig) -> Self {
        Self {
            dir,
            file: None,
            max_bytes: config.log_max_bytes.max(1),
            keep: config.log_keep,
            max_age: Duration::from_secs(config.log_max_age_days.saturating_mul(86_400)),
            pruned: None,
        }
    }

    /// Appends `batch` (whole lines) with one write, rotating first if it would take the
    /// file past its size; under the lock, so another tether's batch never lands in the
    /// middle of it or in a file rotated away.
    pub fn write(&mut self, batch: &[u8]) -> io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        crate::paths::ensure_private_dir(&self.dir).map_err(io::Error::other)?;
        // Closing it releases the lock, also when this process dies.
        let _lock = lock(&self.dir)?;
        if self.pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            self.pruned = Some(Instant::now());
            prune(&self.dir, self.max_age);
        }
        // The file under the name may be another one since the last batch: another
        // writer rotated it.
        let current = fs::metadata(self.dir.join(FILE)).ok().map(|m| m.ino());
        let (mut file, mut meta) = match self.file.take() {
            Some((file, ino)) if Some(ino) == current => {
                let meta = file.metadata()?;
                (file, meta)
            }
            _ => self.open()?,
        };
        // The size as it is, other writers' lines included.
        if meta.len() > 0 && meta.len() + batch.len() as u64 > self.max_bytes {
            drop(file);
            rotate(&self.dir, self.keep)?;
            prune(&self.dir, self.max_age);
            (file, meta) = self.open()?;
        }
        let written = file.write_all(batch);
        self.file = Some((file, meta.ino()));
        written
    }

    fn open(&self) -> io::Result<(File, fs::Metadata)> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.dir.join(FILE))?;
        let meta = file.metadata()?;
        // A file made by hand or by an older tether is made private too.
        if meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        Ok((file, meta))
    }
}

/// The writers' lock, taken (blocking: a writer holds it for one batch).
fn lock(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(LOCK))?;
    file.lock()?;
    Ok(file)
}

/// `calls.jsonl.N`, the Nth newest rotated file.
fn rotated(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("{FILE}.{n}"))
}

fn rotate(dir: &Path, keep: usize) -> io::Result<()> {
    let current = dir.join(FILE);
    if keep == 0 {
        return fs::remove_file(current);
    }
    let _ = fs::remove_file(rotated(dir, keep));
    for n in (1..keep).rev() {
        let _ = fs::rename(rotated(dir, n), rotated(dir, n + 1));
    }
    fs::rename(current, rotated(dir, 1))
}

/// Removes rotated files last written more than `max_age` ago.
fn prune(dir: &Path, max_age: Duration) {
    let Some(before) = SystemTime::now().checked_sub(max_age) else {
        return;
    };
    for (_, path) in rotated_files(dir) {
        let old = fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|at| at < before);
        if old {
            let _ = fs::remove_file(path);
        }
    }
}

/// The rotated files present, by number.
fn rotated_files(dir: &Path) -> Vec<(usize, PathBuf)> {
    let prefix = format!("{FILE}.");
    let mut found: Vec<(usize, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let n = name.to_str()?.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, entry.path()))
        })
        .collect();
    found.sort();
    found
}

/// The log's files, oldest first, the current one last (whether or not it exists yet).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = rotated_files(dir)
        .into_iter()
        .rev()
        .map(|(_, p)| p)
        .collect();
    files.push(dir.join(FILE));
    files
}

/// Every record in the log, oldest first; lines that are not records are skipped.
pub fn read_all(dir: &Path) -> Vec<CallRecord> {
    let mut records = Vec::new();
    for path in files(dir) {
        if let Ok(file) = File::open(path) {
            records.extend(read_lines(io::BufReader::new(file)));
        }
    }
    records
}

/// The records in what `reader` holds, a line each.
pub fn read_lines(reader: impl BufRead) -> impl Iterator<Item = CallRecord> {
    reader
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str(&line).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record's line, as the derived serializer writes it (the log's readers take it).
    fn line(r: &CallRecord) -> Vec<u8> {
        let mut line = serde_json::to_vec(r).unwrap();
        line.push(b'\n');
        line
    }

    #[test]
    fn rotates_at_its_size_and_keeps_its_files_private() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let config = CallsConfig {
            log_max_bytes: 300,
            log_keep: 2,
            ..CallsConfig::default()
        };
        let mut log = LogWriter::new(logs.clone(), &config);
        for _ in 0..10 {
            log.write(&line(&CallRecord::default())).unwrap();
        }
        let files = files(&logs);
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            let meta = fs::metadata(f).unwrap();
            assert!(meta.len() <= 300);
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(
            fs::metadata(&logs).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    /// Two writers (as two tethers would: each its own files and lock) append batches to
    /// one log that rotates every few batches; every line comes back whole, once, and a
    /// file is rotated only once it is full (never twice, by both writers).
    #[test]
    fn rotating_under_two_writers_loses_and_splits_no_line() {
        const BATCHES: usize = 300;
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let config = CallsConfig {
            log_max_bytes: 4 * 1024,
            log_keep: BATCHES,
            ..CallsConfig::default()
        };
        let writers: Vec<_> = ["one", "two"]
            .into_iter()
            .map(|who| {
                let (logs, config) = (logs.clone(), config.clone());
                std::thread::spawn(move || {
                    let mut log = LogWriter::new(logs, &config);
                    for batch in 0..BATCHES {
                        let mut lines = Vec::new();
                        for n in 0..3 {
                            let r = CallRecord {
                                client: who.to_string(),
                                at_ms: (batch * 3 + n) as i64,
                                ..CallRecord::default()
                            };
                            lines.extend(line(&r));
                        }
                        log.write(&lines).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let files = files(&logs);
        assert!(files.len() > 10, "the log rotated: {files:?}");
        // No batch is longer than this.
        let batch = 3 * line(&CallRecord {
            client: "two".into(),
            at_ms: (BATCHES * 3) as i64,
            ..CallRecord::default()
        })
        .len();
        for f in &files[..files.len() - 1] {
            let len = fs::metadata(f).unwrap().len() as usize;
            assert!(len > 4 * 1024 - batch, "{f:?} rotated at {len} bytes");
        }
        let mut seen: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for f in &files {
            let text = fs::read_to_string(f).unwrap();
            assert!(text.len() <= 4 * 1024, "{f:?}: {}", text.len());
            for l in text.lines() {
                let r: CallRecord = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                seen.entry(r.client).or_default().push(r.at_ms);
            }
        }
        let all: Vec<i64> = (0..(BATCHES * 3) as i64).collect();
        for who in ["one", "two"] {
            // Oldest file first: each writer's lines come back in the order written.
            assert_eq!(seen.get(who), Some(&all), "{who}");
        }
    }
}
