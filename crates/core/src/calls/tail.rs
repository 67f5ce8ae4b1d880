//! Reading the audit log as it grows, for `tether calls --follow` and a terminal UI whose
//! proxy another tether serves. A writer may have written part of a line when the reader
//! looks: those bytes are kept and the line parsed once its newline arrives. A rotation (a
//! new file under the name) is noticed by its inode; the old file is read to its end first.
//! Reads never wait: each [`Tail::read`] takes what is there and returns.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::CallRecord;
use super::log::{self, FILE};

/// A line longer than this is no record tether wrote (bodies are capped far below it): its
/// bytes are dropped up to its newline, so a broken file cannot grow the reader's memory.
const MAX_LINE: usize = 8 * 1024 * 1024;

/// Most bytes one [`Tail::read`] takes, so a reader catching up hands on records in
/// batches.
const CHUNK: usize = 1024 * 1024;

/// The current log file, followed across rotations.
pub struct Tail {
    path: PathBuf,
    file: Option<Open>,
    /// The start of a line whose newline has not arrived yet.
    partial: Vec<u8>,
    /// Dropping an over-long line up to its newline.
    skipping: bool,
}

struct Open {
    file: File,
    ino: u64,
    at: u64,
}

impl Tail {
    /// From the current end of the log in `dir`: only calls written from now on.
    pub fn at_end(dir: &Path) -> Self {
        let mut tail = Self::new(dir);
        if let Some(open) = &mut tail.file {
            open.at = open.file.seek(SeekFrom::End(0)).unwrap_or(0);
        }
        tail
    }

    /// From the start of the current log file: what it holds, then what comes.
    pub fn at_start(dir: &Path) -> Self {
        Self::new(dir)
    }

    fn new(dir: &Path) -> Self {
        let path = dir.join(FILE);
        let file = open(&path);
        Self {
            path,
            file,
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// The records completed since the last read, oldest first: up to about [`CHUNK`]
    /// bytes of them, so call again while it returns any. A line still being written
    /// stays for the next read.
    pub fn read(&mut self) -> Vec<CallRecord> {
        // The name is looked at before the file is read: once it names a new file, the
        // writer has finished with the old one, so reading that to its end misses nothing.
        let now = fs::metadata(&self.path).ok().map(|m| m.ino());
        let (mut records, more) = self.read_open();
        if more {
            return records;
        }
        let moved = match (&self.file, now) {
            (Some(open), Some(ino)) => open.ino != ino,
            (None, Some(_)) => true,
            _ => false,
        };
        if moved {
            // What the old file left unfinished will never be finished.
            self.partial.clear();
            self.skipping = false;
            self.file = open(&self.path);
            records.extend(self.read_open().0);
        }
        records
    }

    /// The records completed in the open file, and whether it may hold more than one
    /// read took.
    fn read_open(&mut self) -> (Vec<CallRecord>, bool) {
        let Some(open) = &mut self.file else {
            return (Vec::new(), false);
        };
        // A file cut shorter than where the reader is was truncated: read it again.
        if open.file.metadata().is_ok_and(|m| m.len() < open.at) {
            open.at = open.file.seek(SeekFrom::Start(0)).unwrap_or(0);
            self.partial.clear();
            self.skipping = false;
        }
        let mut bytes = Vec::new();
        let read = (&mut open.file).take(CHUNK as u64).read_to_end(&mut bytes);
        if let Err(e) = read
            && e.kind() != io::ErrorKind::Interrupted
        {
            tracing::debug!("cannot read the calls log: {e}");
        }
        open.at += bytes.len() as u64;
        let more = bytes.len() == CHUNK;
        (self.take_lines(&bytes), more)
    }

    /// The complete lines among the kept bytes and `bytes`, parsed; the rest is kept.
    fn take_lines(&mut self, mut bytes: &[u8]) -> Vec<CallRecord> {
        let mut records = Vec::new();
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            let (line, rest) = bytes.split_at(end);
            bytes = &rest[1..];
            if std::mem::take(&mut self.skipping) {
                self.partial.clear();
                continue;
            }
            let record = if self.partial.is_empty() {
                serde_json::from_slice(line)
            } else {
                self.partial.extend_from_slice(line);
                let parsed = serde_json::from_slice(&self.partial);
                self.partial.clear();
                parsed
            };
            if let Ok(record) = record {
                records.push(record);
            }
        }
        if !self.skipping {
            self.partial.extend_from_slice(bytes);
            if self.partial.len() > MAX_LINE {
                self.partial = Vec::new();
                self.skipping = true;
            }
        }
        records
    }
}

fn open(path: &Path) -> Option<Open> {
    let file = File::open(path).ok()?;
    let ino = file.metadata().ok()?.ino();
    Some(Open { file, ino, at: 0 })
}

/// The records of the rotated files, oldest first — what the log held before the current
/// file. With [`Tail::at_start`] opened first, the two give the whole log.
pub fn read_rotated(dir: &Path) -> impl Iterator<Item = CallRecord> {
    let mut files = log::files(dir);
    files.pop();
    files
        .into_iter()
        .filter_map(|path| File::open(path).ok())
        .flat_map(|file| log::read_lines(io::BufReader::new(file)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn line(name: &str) -> String {
        format!(
            "{{\"at_ms\":1,\"connection\":\"c\",\"client\":\"l\",\"http\":\"POST\",\"name\":\"{name}\",\"status\":200}}\n"
        )
    }

    fn append(dir: &Path, text: &str) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(FILE))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn names(records: Vec<CallRecord>) -> Vec<String> {
        records.into_iter().filter_map(|r| r.name).collect()
    }

    #[test]
    fn a_half_written_line_is_read_once_its_newline_arrives() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &line("before"));
        let mut tail = Tail::at_end(dir.path());
        let whole = line("split");
        let (head, rest) = whole.split_at(30);
        append(dir.path(), head);
        assert!(tail.read().is_empty(), "half a line is no record yet");
        append(dir.path(), rest);
        assert_eq!(names(tail.read()), ["split"]);
        assert!(tail.read().is_empty());
    }

    #[test]
    fn a_rotation_is_followed_after_the_old_file_is_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &line("old"));
        let mut tail = Tail::at_start(dir.path());
        append(dir.path(), &line("last-in-old"));
        fs::rename(dir.path().join(FILE), dir.path().join(format!("{FILE}.1"))).unwrap();
        append(dir.path(), &line("new"));
        assert_eq!(names(tail.read()), ["old", "last-in-old", "new"]);
        assert_eq!(
            names(read_rotated(dir.path()).collect()),
            ["old", "last-in-old"]
        );
    }

    #[test]
    fn a_log_that_appears_later_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut tail = Tail::at_end(dir.path());
        assert!(tail.read().is_empty());
        append(dir.path(), &line("first"));
        assert_eq!(names(tail.read()), ["first"]);
    }

    #[test]
    fn an_endless_line_is_dropped_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut tail = Tail::at_end(dir.path());
        let junk = vec![b'x'; MAX_LINE + 10];
        assert!(tail.take_lines(&junk).is_empty());
        assert!(tail.partial.is_empty() && tail.skipping);
        let mut rest = b"more junk\n".to_vec();
        rest.extend_from_slice(line("after").as_bytes());
        assert_eq!(names(tail.take_lines(&rest)), ["after"]);
    }
}
