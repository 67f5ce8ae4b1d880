//! `/metrics` in the Prometheus text format: requests, errors and a latency histogram per
//! connection and client, and refreshes per connection — or, for a caller who may not
//! learn connection names, the same added up (see [`Scope`]).

use std::collections::BTreeMap;
use std::fmt::Write;

use tether_core::engine::{ClientTraffic, LATENCY_BUCKETS};
use tether_core::vault::Store;

/// Which series a `/metrics` caller is shown. Connection and client names are shown only
/// to a caller that could name them anyway: one holding an endpoint secret sees its own
/// connection's, and everyone sees all of them only where `[proxy] metrics_public` says
/// so; anyone else sees totals, which name nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    All,
    Connection(&'a str),
    Totals,
}

/// The metrics text for `traffic` (by connection, then client) and `store`'s refreshes,
/// as `scope` allows.
pub fn render(
    traffic: &BTreeMap<String, BTreeMap<String, ClientTraffic>>,
    store: &Store,
    scope: Scope<'_>,
) -> String {
    let shown = |connection: &str| match scope {
        Scope::All | Scope::Totals => true,
        Scope::Connection(name) => name == connection,
    };
    let mut series: Vec<(String, ClientTraffic)> = traffic
        .iter()
        .filter(|(c, _)| shown(c))
        .flat_map(|(c, clients)| {
            clients
                .iter()
                .map(move |(l, t)| (format!("connection=\"{c}\",client=\"{l}\""), t.clone()))
        })
        .collect();
    if scope == Scope::Totals {
        series = vec![(String::new(), sum(series.iter().map(|(_, t)| t)))];
    }
    // `name{labels}`, or `name` alone for the totals.
    let with = |labels: &str, more: &str| match (labels.is_empty(), more.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!("{{{more}}}"),
        (false, true) => format!("{{{labels}}}"),
        (false, false) => format!("{{{labels},{more}}}"),
    };
    let mut out = String::new();
    out += "# HELP tether_requests_total MCP requests proxied, per connection and client.\n# TYPE tether_requests_total counter\n";
    for (k, s) in &series {
        let _ = writeln!(out, "tether_requests_total{} {}", with(k, ""), s.requests);
    }
    out += "# HELP tether_errors_total Proxied requests that failed.\n# TYPE tether_errors_total counter\n";
    for (k, s) in &series {
        let _ = writeln!(out, "tether_errors_total{} {}", with(k, ""), s.errors);
    }
    out += "# HELP tether_request_duration_seconds Time until the upstream's response headers.\n# TYPE tether_request_duration_seconds histogram\n";
    for (k, s) in &series {
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(s.latency.buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "tether_request_duration_seconds_bucket{} {cumulative}",
                with(k, &format!("le=\"{bound}\""))
            );
        }
        let _ = writeln!(
            out,
            "tether_request_duration_seconds_bucket{} {}\ntether_request_duration_seconds_sum{} {}\ntether_request_duration_seconds_count{} {}",
            with(k, "le=\"+Inf\""),
            s.requests,
            with(k, ""),
            s.latency.sum_micros as f64 / 1e6,
            with(k, ""),
            s.requests
        );
    }
    out += "# HELP tether_refreshes_total Token refreshes since each connection was added.\n# TYPE tether_refreshes_total counter\n";
    type Count = fn(&tether_core::vault::Connection) -> u64;
    let kinds: [(Count, &str); 2] = [
        (|c| c.counters().refreshes_ok, "ok"),
        (|c| c.counters().refreshes_failed, "failed"),
    ];
    for (count, result) in kinds {
        if scope == Scope::Totals {
            let n: u64 = store.connections().iter().map(count).sum();
            let _ = writeln!(out, "tether_refreshes_total{{result=\"{result}\"}} {n}");
            continue;
        }
        for c in store
            .connections()
            .iter()
            .filter(|c| shown(c.name.as_str()))
        {
            let _ = writeln!(
                out,
                "tether_refreshes_total{{connection=\"{}\",result=\"{result}\"}} {}",
                c.name,
                count(c)
            );
        }
    }
    out += &refresh_in_flight(store, chrono::Utc::now(), scope);
    out
}

/// A gauge per connection whose refresh runs past its token's expiry (the same signal
/// `tether list` shows as "refreshing for N s"); absent while none does. Totals show the
/// longest, naming no connection.
fn refresh_in_flight(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
    scope: Scope<'_>,
) -> String {
    let mut out = "# HELP tether_refresh_in_flight_seconds How long a refresh has been running past its token's expiry.\n# TYPE tether_refresh_in_flight_seconds gauge\n".to_string();
    let overdue = store.connections().iter().filter_map(|c| {
        let seconds = tether_core::summary::overdue_refresh(c, now)?.seconds(now);
        Some((c.name.as_str(), seconds))
    });
    match scope {
        Scope::Totals => {
            if let Some(longest) = overdue.map(|(_, s)| s).max() {
                let _ = writeln!(out, "tether_refresh_in_flight_seconds {longest}");
            }
        }
        Scope::All | Scope::Connection(_) => {
            for (name, seconds) in overdue {
                if scope == Scope::All || scope == Scope::Connection(name) {
                    let _ = writeln!(
                        out,
                        "tether_refresh_in_flight_seconds{{connection=\"{name}\"}} {seconds}"
                    );
                }
            }
        }
    }
    out
}

/// Every client's traffic added up.
fn sum<'a>(all: impl Iterator<Item = &'a ClientTraffic>) -> ClientTraffic {
    let mut total = ClientTraffic::default();
    for t in all {
        total.requests += t.requests;
        total.errors += t.errors;
        total.latency.sum_micros = total
            .latency
            .sum_micros
            .saturating_add(t.latency.sum_micros);
        for (into, from) in total.latency.buckets.iter_mut().zip(t.latency.buckets) {
            *into += from;
        }
    }
    total
}
