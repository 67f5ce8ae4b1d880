//! `tether calls`: the calls through the proxy, read from the audit log
//! (`<state>/logs/calls.jsonl`) whichever tether — the service, `serve`, the terminal UI, a
//! stdio bridge — wrote it; `--follow` keeps reading as calls come, across rotations.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Local};
use tether_core::calls::{CallRecord, log};
use tether_core::paths::Paths;

use super::CallsArgs;
use crate::errors::bad_input;

/// How often `--follow` looks for new lines.
const POLL: Duration = Duration::from_millis(200);

pub async fn calls(args: CallsArgs) -> anyhow::Result<()> {
    let since = args.since.as_deref().map(since).transpose()?;
    let dir = Paths::discover()?.log_dir();
    let filter = Filter {
        name: args.name,
        client: args.client,
        errors: args.errors,
        since_ms: since.map(|ago| chrono::Utc::now().timestamp_millis() - ago),
    };
    let mut shown: Vec<CallRecord> = log::read_all(&dir)
        .into_iter()
        .filter(|r| filter.keeps(r))
        .collect();
    shown.sort_by_key(|r| r.at_ms);
    let mut table = Table::default();
    for r in &shown {
        table.print(r, args.json)?;
    }
    if args.follow {
        follow(&dir, &filter, &mut table, args.json).await?;
    }
    Ok(())
}

struct Filter {
    name: Option<String>,
    client: Option<String>,
    errors: bool,
    since_ms: Option<i64>,
}

impl Filter {
    fn keeps(&self, r: &CallRecord) -> bool {
        self.name.as_ref().is_none_or(|n| *n == r.connection)
            && self.client.as_ref().is_none_or(|c| *c == r.client)
            && (!self.errors || r.is_error())
            && self.since_ms.is_none_or(|at| r.at_ms >= at)
    }
}

/// `30s`, `10m`, `2h`, `7d` in milliseconds.
fn since(text: &str) -> anyhow::Result<i64> {
    let bad = || {
        bad_input(format!(
            "--since '{text}' is not a duration: use a number and s, m, h or d, e.g. 10m"
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_ms).ok_or_else(bad)
}

/// Reads the current log file from its end as it grows; a rotation (a new file under the
/// name) is noticed by its inode, the old file read to its end first.
async fn follow(dir: &Path, filter: &Filter, table: &mut Table, json: bool) -> anyhow::Result<()> {
    let path = dir.join(log::FILE);
    let mut open = open_at_end(&path);
    loop {
        tokio::time::sleep(POLL).await;
        let now = std::fs::metadata(&path).map(|m| m.ino()).ok();
        if let Some((reader, _)) = &mut open {
            print_new(reader, filter, table, json)?;
        }
        let moved = match (&open, now) {
            (Some((_, ino)), Some(now)) => *ino != now,
            (None, Some(_)) => true,
            _ => false,
        };
        if moved {
            // Rotated (or created): whatever the new file holds is new.
            open = File::open(&path)
                .ok()
                .and_then(|f| Some((BufReader::new(f), now?)));
            if let Some((reader, _)) = &mut open {
                print_new(reader, filter, table, json)?;
            }
        }
    }
}

fn print_new(
    reader: &mut BufReader<File>,
    filter: &Filter,
    table: &mut Table,
    json: bool,
) -> anyhow::Result<()> {
    for r in log::read_lines(reader) {
        if filter.keeps(&r) {
            table.print(&r, json)?;
        }
    }
    Ok(())
}

fn open_at_end(path: &Path) -> Option<(BufReader<File>, u64)> {
    let mut file = File::open(path).ok()?;
    let ino = file.metadata().ok()?.ino();
    file.seek(SeekFrom::End(0)).ok()?;
    Some((BufReader::new(file), ino))
}

/// Aligned columns; a column grows to fit, so a follow stays aligned but for what is wider.
#[derive(Default)]
struct Table {
    widths: [usize; 4],
}

impl Table {
    fn print(&mut self, r: &CallRecord, json: bool) -> anyhow::Result<()> {
        if json {
            tether_core::say!("{}", serde_json::to_string(r)?);
            return Ok(());
        }
        let time = DateTime::from_timestamp_millis(r.at_ms)
            .map(|t| {
                t.with_timezone(&Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        let outcome = match (r.error_code, &r.error_message) {
            (Some(code), _) => format!("{} {code}", r.status),
            (None, Some(_)) => format!("{} !", r.status),
            _ => r.status.to_string(),
        };
        let texts = [r.connection.clone(), r.client.clone(), r.what(), outcome];
        for (w, t) in self.widths.iter_mut().zip(&texts) {
            *w = (*w).max(t.chars().count());
        }
        let [w0, w1, w2, w3] = self.widths;
        let ms = r.total_us as f64 / 1000.0;
        let mut line = format!(
            "{time}  {:w0$}  {:w1$}  {:w2$}  {:w3$}  {ms:>8.1} ms  {:>7} B → {:>7} B",
            texts[0], texts[1], texts[2], texts[3], r.bytes_in, r.bytes_out
        );
        if let Some(message) = &r.error_message {
            line.push_str("  ");
            line.push_str(message);
        }
        tether_core::say!("{line}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::since("10m").unwrap(), 600_000);
        assert_eq!(super::since("2d").unwrap(), 172_800_000);
        assert!(super::since("10").is_err());
        assert!(super::since("m").is_err());
        assert!(super::since("5w").is_err());
    }
}
