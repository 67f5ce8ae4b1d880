//! `tether calls`: the calls through the proxy, read from the audit log
//! (`<state>/logs/calls.jsonl`) whichever tether — the service, `serve`, the terminal UI, a
//! stdio bridge — wrote it; `--follow` keeps reading as calls come, across rotations
//! (`calls/tail.rs`).

use std::time::Duration;

use chrono::{DateTime, Local};
use tether_core::calls::tail::{self, Tail};
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
    // Followed, the tail is opened before the log is read, so no call falls between what
    // is printed first and what comes.
    let mut tail = args.follow.then(|| Tail::at_start(&dir));
    let all = match &mut tail {
        Some(tail) => {
            let mut all: Vec<CallRecord> = tail::read_rotated(&dir).collect();
            loop {
                let more = tail.read();
                if more.is_empty() {
                    break all;
                }
                all.extend(more);
            }
        }
        None => log::read_all(&dir),
    };
    let mut shown: Vec<CallRecord> = all.into_iter().filter(|r| filter.keeps(r)).collect();
    shown.sort_by_key(|r| r.at_ms);
    let mut table = Table::default();
    for r in &shown {
        table.print(r, args.json)?;
    }
    if let Some(tail) = tail {
        follow(tail, &filter, &mut table, args.json).await?;
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

/// Prints the calls written after the start, as they come: the log's tail follows its
/// rotations and keeps a half-written line until its newline arrives.
async fn follow(
    mut tail: Tail,
    filter: &Filter,
    table: &mut Table,
    json: bool,
) -> anyhow::Result<()> {
    loop {
        tokio::time::sleep(POLL).await;
        loop {
            let (back, records) = tokio::task::spawn_blocking(move || {
                let records = tail.read();
                (tail, records)
            })
            .await?;
            tail = back;
            if records.is_empty() {
                break;
            }
            for r in records.iter().filter(|r| filter.keeps(r)) {
                table.print(r, json)?;
            }
        }
    }
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
