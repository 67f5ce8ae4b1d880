//! `/metrics` in the Prometheus text format: requests, errors and a latency histogram per
//! connection and client, and refreshes per connection.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::vault::{EventKind, Store};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    /// By connection, then client.
    series: Mutex<BTreeMap<String, BTreeMap<String, Series>>>,
}

/// The value under `key`, inserted if missing; allocates only then (the proxy counts every
/// call this way).
pub fn slot<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

#[derive(Default, Clone)]
struct Series {
    requests: u64,
    errors: u64,
    buckets: [u64; BUCKETS.len()],
    sum: f64,
}

impl Metrics {
    pub fn observe(&self, connection: &str, client: &str, ok: bool, latency: Duration) {
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        let s = slot(slot(&mut series, connection), client);
        let secs = latency.as_secs_f64();
        s.requests += 1;
        s.errors += u64::from(!ok);
        s.sum += secs;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i] += 1;
        }
    }

    pub fn render(&self, store: &Store) -> String {
        let series: BTreeMap<(String, String), Series> = self
            .series
            .lock()
            .map(|s| {
                s.iter()
                    .flat_map(|(c, clients)| {
                        clients
                            .iter()
                            .map(|(l, s)| ((c.clone(), l.clone()), s.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut out = String::new();
        let labels = |(c, l): &(String, String)| format!("connection=\"{c}\",client=\"{l}\"");
        out += "# HELP tether_requests_total MCP requests proxied, per connection and client.\n# TYPE tether_requests_total counter\n";
        for (k, s) in &series {
            let _ = writeln!(out, "tether_requests_total{{{}}} {}", labels(k), s.requests);
        }
        out += "# HELP tether_errors_total Proxied requests that failed.\n# TYPE tether_errors_total counter\n";
        for (k, s) in &series {
            let _ = writeln!(out, "tether_errors_total{{{}}} {}", labels(k), s.errors);
        }
        out += "# HELP tether_request_duration_seconds Time until the upstream's response headers.\n# TYPE tether_request_duration_seconds histogram\n";
        for (k, s) in &series {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(s.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "tether_request_duration_seconds_bucket{{{},le=\"{bound}\"}} {cumulative}",
                    labels(k)
                );
            }
            let _ = writeln!(
                out,
                "tether_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\ntether_request_duration_seconds_sum{{{}}} {}\ntether_request_duration_seconds_count{{{}}} {}",
                labels(k),
                s.requests,
                labels(k),
                s.sum,
                labels(k),
                s.requests
            );
        }
        out += "# HELP tether_refreshes_total Token refreshes kept in each connection's history.\n# TYPE tether_refreshes_total counter\n";
        for c in store.connections() {
            for (kind, result) in [
                (EventKind::Refreshed, "ok"),
                (EventKind::RefreshFailed, "failed"),
            ] {
                let n = c.history.iter().filter(|e| e.kind == kind).count();
                let _ = writeln!(
                    out,
                    "tether_refreshes_total{{connection=\"{}\",result=\"{result}\"}} {n}",
                    c.name
                );
            }
        }
        out
    }
}
