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

use super::describe::{Text, plain};
use super::{CallRecord, CallsConfig, Line};
use crate::printable::printable;

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

/// More than most metadata lines take.
const LINE: usize = 512;

/// Line starts kept for the calls to come: more than the clients and methods one proxy
/// usually serves at once.
const STARTS: usize = 16;

/// The starts of lines — `{"connection":…,"client":…,"http":…,"method":…,"protocol":…,
/// "status":…` — of the calls lately recorded, one per client of a connection, method,
/// protocol and status: its texts checked and escaped once, the start is copied whole into
/// each such call's line.
#[derive(Default)]
pub(super) struct Starts {
    kept: Vec<Start>,
    /// Where the next new start goes once `kept` is full.
    next: usize,
}

struct Start {
    connection: Box<str>,
    client: Box<str>,
    http: Box<str>,
    method: Box<[u8]>,
    protocol: Option<Box<[u8]>>,
    status: u16,
    line: Box<[u8]>,
}

impl Start {
    fn is_for(&self, r: &Line<'_>, method: &[u8], protocol: Option<&[u8]>) -> bool {
        self.status == r.status
            && same(&self.method, method)
            && match (&self.protocol, protocol) {
                (Some(kept), Some(p)) => same(kept, p),
                (kept, p) => kept.is_none() && p.is_none(),
            }
            && same(self.client.as_bytes(), r.client.as_bytes())
            && same(self.connection.as_bytes(), r.connection.as_bytes())
            && same(self.http.as_bytes(), r.http.as_bytes())
    }
}

/// Whether two texts are the same, the short ones (nearly all: methods, dates, names)
/// told by two overlapping words each, without a call to `memcmp`.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |t: &[u8], at: usize| {
        let mut eight = [0; 8];
        eight.copy_from_slice(&t[at..at + 8]);
        u64::from_le_bytes(eight)
    };
    match a.len() {
        0..8 => a == b,
        len @ 8..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        _ => a == b,
    }
}

impl Starts {
    /// The start of `r`'s line, kept for the calls like it to come; `None` for a call whose
    /// method is not its header's (read from its body).
    fn of(&mut self, r: &Line<'_>) -> Option<&[u8]> {
        let Some(Text::Header(method, _)) = r.method else {
            return None;
        };
        let protocol = match r.protocol {
            None => None,
            Some(Text::Header(p, _)) => Some(p),
            Some(Text::Any(_)) => return None,
        };
        let at = match self.kept.iter().position(|s| s.is_for(r, method, protocol)) {
            Some(at) => at,
            None => {
                let mut line = Vec::with_capacity(128);
                write_start(&mut line, r);
                let start = Start {
                    connection: r.connection.into(),
                    client: r.client.into(),
                    http: r.http.into(),
                    method: method.into(),
                    protocol: protocol.map(Into::into),
                    status: r.status,
                    line: line.into(),
                };
                if self.kept.len() < STARTS {
                    self.kept.push(start);
                    self.kept.len() - 1
                } else {
                    let at = self.next;
                    self.next = (at + 1) % STARTS;
                    self.kept[at] = start;
                    at
                }
            }
        };
        Some(&self.kept[at].line)
    }
}

/// One call as a line of JSON, written by hand: one is written per call, on the call's
/// thread, and the derived serializer cost several times as much. Text that needs no
/// escaping (nearly all of it) is copied as it is. `CallRecord`'s `Deserialize` reads it
/// back (tested below).
pub fn write_line(out: &mut Vec<u8>, r: &Line<'_>) {
    // Room for a metadata line at once, not a growth check that may move it per field.
    out.reserve(LINE);
    write_start(out, r);
    write_rest(out, r);
}

/// [`write_line`], the line's start copied from `starts` when a call like it had one.
pub(super) fn write_call(out: &mut Vec<u8>, r: &Line<'_>, starts: &mut Starts) {
    out.reserve(LINE);
    match starts.of(r) {
        Some(start) => out.extend_from_slice(start),
        None => write_start(out, r),
    }
    write_rest(out, r);
}

/// Who called, what, and the answer's status: the fields many calls share.
fn write_start(out: &mut Vec<u8>, r: &Line<'_>) {
    out.extend_from_slice(b"{\"connection\":");
    text(out, r.connection);
    out.extend_from_slice(b",\"client\":");
    text(out, r.client);
    out.extend_from_slice(b",\"http\":");
    text(out, r.http);
    if let Some(m) = &r.method {
        out.extend_from_slice(b",\"method\":");
        record_text(out, m);
    }
    if let Some(m) = &r.protocol {
        out.extend_from_slice(b",\"protocol\":");
        record_text(out, m);
    }
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(r.status).as_bytes());
}

/// The rest of the line, which each call has its own.
fn write_rest(out: &mut Vec<u8>, r: &Line<'_>) {
    let mut n = itoa::Buffer::new();
    if let Some(m) = &r.name {
        out.extend_from_slice(b",\"name\":");
        record_text(out, m);
    }
    out.extend_from_slice(b",\"at_ms\":");
    out.extend_from_slice(n.format(r.at_ms).as_bytes());
    if let Some(code) = r.error_code {
        out.extend_from_slice(b",\"error_code\":");
        out.extend_from_slice(n.format(code).as_bytes());
    }
    if let Some(m) = &r.error_message {
        out.extend_from_slice(b",\"error_message\":");
        text(out, m);
    }
    if let Some(d) = &r.diagnosis {
        out.extend_from_slice(b",\"diagnosis\":");
        text(out, d);
    }
    out.extend_from_slice(b",\"first_byte_us\":");
    out.extend_from_slice(n.format(r.first_byte_us).as_bytes());
    out.extend_from_slice(b",\"total_us\":");
    out.extend_from_slice(n.format(r.total_us).as_bytes());
    out.extend_from_slice(b",\"bytes_in\":");
    out.extend_from_slice(n.format(r.bytes_in).as_bytes());
    out.extend_from_slice(b",\"bytes_out\":");
    out.extend_from_slice(n.format(r.bytes_out).as_bytes());
    if r.streamed {
        out.extend_from_slice(b",\"streamed\":true,\"events\":");
        out.extend_from_slice(n.format(r.events).as_bytes());
    }
    if r.refreshed {
        out.extend_from_slice(b",\"refreshed\":true");
    }
    if r.retried {
        out.extend_from_slice(b",\"retried\":true");
    }
    if let Some(m) = &r.request {
        out.extend_from_slice(b",\"request\":");
        text(out, m);
    }
    if let Some(m) = &r.response {
        out.extend_from_slice(b",\"response\":");
        text(out, m);
    }
    out.extend_from_slice(b"}\n");
}

#[inline]
fn record_text(out: &mut Vec<u8>, value: &Text<'_>) {
    match value {
        Text::Header(bytes, max) if bytes.len() <= *max && plain(bytes) => {
            out.push(b'"');
            out.extend_from_slice(bytes);
            out.push(b'"');
        }
        Text::Header(bytes, max) => {
            text(out, &printable(&String::from_utf8_lossy(bytes), *max));
        }
        Text::Any(value) => text(out, value),
    }
}

/// `value` as a JSON string: copied as it is when nothing needs escaping.
#[inline]
fn text(out: &mut Vec<u8>, value: &str) {
    if plain(value.as_bytes()) {
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

    fn line(r: &CallRecord) -> Vec<u8> {
        let mut line = Vec::new();
        write_line(&mut line, &r.line());
        line
    }

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
            diagnosis: Some("invalid_grant.lost_response".into()),
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

    /// A line whose start was kept reads back as its own record, whichever of the fields
    /// the start holds differ from the call before.
    #[test]
    fn kept_starts_belong_to_their_calls_only() {
        let mut starts = Starts::default();
        let mut lines = Vec::new();
        let mut written = Vec::new();
        for n in 0..3 * STARTS {
            let mut r = CallRecord {
                at_ms: n as i64,
                connection: format!("c{}", n % 3),
                client: ["a", "b \"q\""][n % 2].into(),
                http: "POST".into(),
                method: Some(["tools/list", "tools/call", "ping", "x\ty"][n % 4].into()),
                name: (n % 4 == 1).then(|| "echo".into()),
                protocol: (n % 3 == 0).then(|| "2026-07-28".into()),
                status: if n % 7 == 0 { 502 } else { 200 },
                ..CallRecord::default()
            };
            if n % 5 == 0 {
                r.http = "GET".into();
            }
            // As `describe` has them: the texts from the headers.
            fn header(v: &Option<String>) -> Option<Text<'_>> {
                v.as_deref().map(|t| Text::Header(t.as_bytes(), 80))
            }
            let line = Line {
                method: header(&r.method),
                protocol: header(&r.protocol),
                ..r.line()
            };
            write_call(&mut lines, &line, &mut starts);
            // (An odd header's text is shown printable.)
            written.push(line.to_record());
        }
        let back: Vec<CallRecord> = read_lines(&lines[..]).collect();
        assert_eq!(back, written);
        assert_eq!(starts.kept.len(), STARTS);
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
                            write_line(&mut lines, &r.line());
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
