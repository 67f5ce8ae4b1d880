//! `/metrics` in the Prometheus text format: requests, errors and a latency histogram per
//! connection and client, and refreshes per connection.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::engine::{ClientTraffic, LATENCY_BUCKETS};
use crate::vault::{EventKind, Store};

/// The value under `key`, inserted if missing; allocates only then (the proxy counts every
/// call this way).
pub fn slot<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// The metrics text for `traffic` (by connection, then client) and `store`'s refreshes.
pub fn render(
    traffic: &BTreeMap<String, BTreeMap<String, ClientTraffic>>,
    store: &Store,
) -> String {
    let series: Vec<((&str, &str), &ClientTraffic)> = traffic
        .iter()
        .flat_map(|(c, clients)| {
            clients
                .iter()
                .map(move |(l, t)| ((c.as_str(), l.as_str()), t))
        })
        .collect();
    let mut out = String::new();
    let labels = |(c, l): &(&str, &str)| format!("connection=\"{c}\",client=\"{l}\"");
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
        for (bound, count) in LATENCY_BUCKETS.iter().zip(s.latency.buckets) {
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
            s.latency.sum_micros as f64 / 1e6,
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
    out += &refresh_in_flight(store, chrono::Utc::now());
    out
}

/// A gauge per connection whose refresh runs past its token's expiry (the same signal
/// `tether list` shows as "refreshing for N s"); absent while none does.
fn refresh_in_flight(store: &Store, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = "# HELP tether_refresh_in_flight_seconds How long a refresh has been running past its token's expiry.\n# TYPE tether_refresh_in_flight_seconds gauge\n".to_string();
    for c in store.connections() {
        if let Some(overdue) = crate::view::overdue_refresh(c, now) {
            let _ = writeln!(
                out,
                "tether_refresh_in_flight_seconds{{connection=\"{}\"}} {}",
                c.name,
                overdue.seconds(now)
            );
        }
    }
    out
}
