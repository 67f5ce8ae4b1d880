//! `tether calls --follow` when a writer is caught mid-line: the follower has read half a
//! record (its read position, from `/proc`, says so) before the rest is appended, and the
//! record comes out once, whole — not dropped, not garbled. Also across a rotation.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use support::Home;

fn record(name: &str) -> String {
    format!(
        "{{\"at_ms\":1773480000000,\"connection\":\"linear\",\"client\":\"cursor\",\"http\":\"POST\",\"method\":\"tools/call\",\"name\":\"{name}\",\"status\":200,\"first_byte_us\":900,\"total_us\":1200,\"bytes_in\":120,\"bytes_out\":860}}\n"
    )
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// `tether calls --follow --json` and its output, a line at a time.
struct Follower {
    child: Child,
    lines: Receiver<String>,
}

impl Follower {
    fn start(home: &Home) -> Self {
        let mut child = home
            .cmd()
            .args(["calls", "--follow", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    /// The next record's tool name; the bound is generous, not a target.
    fn next_name(&self) -> String {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the follower printed nothing");
        let record: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        record["name"].as_str().unwrap_or_default().to_string()
    }

    /// Waits until the follower's open descriptor on `file` has read up to `len` bytes.
    fn wait_read_to(&self, file: &Path, len: u64) {
        let fds = PathBuf::from(format!("/proc/{}/fd", self.child.id()));
        let start = Instant::now();
        loop {
            let at = std::fs::read_dir(&fds)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to == file))
                .filter_map(|fd| {
                    let info = format!(
                        "/proc/{}/fdinfo/{}",
                        self.child.id(),
                        fd.file_name().to_string_lossy()
                    );
                    let info = std::fs::read_to_string(info).ok()?;
                    info.lines()
                        .find_map(|l| l.strip_prefix("pos:"))
                        .and_then(|p| p.trim().parse::<u64>().ok())
                })
                .max();
            if at == Some(len) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the follower never read {len} bytes of {} (at {at:?})",
                file.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_half_written_line_comes_out_once_whole() {
    let home = Home::new();
    let logs = home.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("calls.jsonl");
    append(&log, &record("before"));
    let follower = Follower::start(&home);
    assert_eq!(follower.next_name(), "before");

    let whole = record("split_across_writes");
    let (head, rest) = whole.split_at(whole.len() / 2);
    append(&log, head);
    let len = std::fs::metadata(&log).unwrap().len();
    follower.wait_read_to(&log.canonicalize().unwrap(), len);
    append(&log, rest);
    append(&log, &record("after"));
    assert_eq!(follower.next_name(), "split_across_writes");
    assert_eq!(follower.next_name(), "after");

    // Rotated while a line is half written in the new file: the same.
    std::fs::rename(&log, logs.join("calls.jsonl.1")).unwrap();
    let whole = record("in_the_new_file");
    let (head, rest) = whole.split_at(40);
    append(&log, head);
    follower.wait_read_to(&log.canonicalize().unwrap(), 40);
    append(&log, rest);
    assert_eq!(follower.next_name(), "in_the_new_file");
}
