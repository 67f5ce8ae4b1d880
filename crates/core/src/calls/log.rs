//! The audit log of calls: `<state>/logs/calls.jsonl`, one JSON record a line, mode 0600 in
//! a 0700 folder. Written in batches by the collector; rotated once a batch would take it
//! past `log_max_bytes` (`calls.jsonl.1` is the newest rotated file, up to `log_keep` of
//! them), and rotated files older than `log_max_age_days` removed. Read by `tether calls`,
//! whichever tether wrote it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{CallRecord, CallsConfig, Line};

pub const FILE: &str = "calls.jsonl";

/// Rotated files are looked at for their age at most this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The log as the collector appends to it.
pub struct LogWriter {
    dir: PathBuf,
    file: Option<File>,
    size: u64,
    pending: Vec<u8>,
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
            size: 0,
            pending: Vec::with_capacity(16 * 1024),
            max_bytes: config.log_max_bytes.max(1),
            keep: config.log_keep,
            max_age: Duration::from_secs(config.log_max_age_days.saturating_mul(86_400)),
            pruned: None,
        }
    }

    /// Adds a call to the batch written by [`LogWriter::flush`].
    pub fn append(&mut self, line: &Line<'_>) {
        write_line(&mut self.pending, line);
    }

    /// Writes the batch in one write, rotating first if it would take the file past its size.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            self.pruned = Some(Instant::now());
            prune(&self.dir, self.max_age);
        }
        if self.file.is_none() {
            self.open()?;
        }
        if self.size > 0 && self.size + self.pending.len() as u64 > self.max_bytes {
            self.file = None;
            rotate(&self.dir, self.keep)?;
            prune(&self.dir, self.max_age);
            self.open()?;
        }
        let result = match &mut self.file {
            Some(file) => file.write_all(&self.pending),
            None => Ok(()),
        };
        self.size += self.pending.len() as u64;
        self.pending.clear();
        result
    }

    fn open(&mut self) -> io::Result<()> {
        crate::paths::ensure_private_dir(&self.dir).map_err(io::Error::other)?;
        let path = self.dir.join(FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        // A file made by hand or by an older tether is made private too.
        let meta = file.metadata()?;
        if meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        self.size = meta.len();
        self.file = Some(file);
        Ok(())
    }
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

/// One call as a line of JSON, written by hand: the collector writes one per call, and the
/// derived serializer cost several times as much. `CallRecord`'s `Deserialize` reads it
/// back (tested below).
pub fn write_line(out: &mut Vec<u8>, r: &Line<'_>) {
    let mut n = itoa::Buffer::new();
    let mut num = |out: &mut Vec<u8>, key: &str, v: u64| {
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(n.format(v).as_bytes());
    };
    out.extend_from_slice(b"{\"at_ms\":");
    out.extend_from_slice(itoa::Buffer::new().format(r.at_ms).as_bytes());
    string(out, ",\"connection\":", r.connection);
    string(out, ",\"client\":", r.client);
    string(out, ",\"http\":", r.http);
    if let Some(m) = &r.method {
        string(out, ",\"method\":", m);
    }
    if let Some(m) = &r.name {
        string(out, ",\"name\":", m);
    }
    if let Some(m) = &r.protocol {
        string(out, ",\"protocol\":", m);
    }
    num(out, ",\"status\":", r.status.into());
    if let Some(code) = r.error_code {
        out.extend_from_slice(b",\"error_code\":");
        out.extend_from_slice(itoa::Buffer::new().format(code).as_bytes());
    }
    if let Some(m) = &r.error_message {
        string(out, ",\"error_message\":", m);
    }
    num(out, ",\"first_byte_us\":", r.first_byte_us);
    num(out, ",\"total_us\":", r.total_us);
    num(out, ",\"bytes_in\":", r.bytes_in);
    num(out, ",\"bytes_out\":", r.bytes_out);
    if r.streamed {
        out.extend_from_slice(b",\"streamed\":true");
        num(out, ",\"events\":", r.events.into());
    }
    if r.refreshed {
        out.extend_from_slice(b",\"refreshed\":true");
    }
    if r.retried {
        out.extend_from_slice(b",\"retried\":true");
    }
    if let Some(m) = &r.request {
        string(out, ",\"request\":", m);
    }
    if let Some(m) = &r.response {
        string(out, ",\"response\":", m);
    }
    out.extend_from_slice(b"}\n");
}

/// `key` and `value` as a JSON string: copied as it is when nothing needs escaping.
fn string(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    let plain = value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back_as_the_record() {
        let r = CallRecord {
            at_ms: 1_700_000_000_123,
            connection: "gh".into(),
            client: "claude \"code\"".into(),
            http: "POST".into(),
            method: Some("tools/call".into()),
            name: Some("echo\u{1b}".into()),
            protocol: Some("2025-06-18".into()),
            status: 200,
            error_code: Some(-32602),
            error_message: Some("bad\nthing".into()),
            first_byte_us: 1,
            total_us: 2,
            bytes_in: 3,
            bytes_out: 4,
            streamed: true,
            events: 5,
            refreshed: true,
            retried: true,
            request: Some("{}".into()),
            response: Some("é".into()),
        };
        let mut line = Vec::new();
        write_line(&mut line, &r.line());
        assert_eq!(line.last(), Some(&b'\n'));
        let back: CallRecord = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
        let plain = CallRecord::default();
        line.clear();
        write_line(&mut line, &plain.line());
        assert_eq!(serde_json::from_slice::<CallRecord>(&line).unwrap(), plain);
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
            log.append(&CallRecord::default().line());
            log.flush().unwrap();
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
}
