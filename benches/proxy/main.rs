//! The local proxy against the reference general-purpose proxy, side by side on loopback:
//! the same fast upstream reached directly, through nginx (keep-alive upstream, buffering
//! off), through the floor (a proxy made of hyper alone, `floor.rs`: what hyper's server
//! and client cost before a proxy does anything) and through `tether serve` (a `--no-auth`
//! connection, a client secret in the path).
//! For each: requests/s at concurrency 1, 16 and 64; added p50/p99 latency at concurrency 1;
//! time to the first event and to the end of a 1,000-event SSE stream; upstream requests
//! per client call; tether's resident memory idle and under load. The load generator runs
//! on CPU 0, the upstream and the proxy under test on CPU 1 (`taskset`); direct, nginx,
//! the floor and tether take turns within each round, and every figure is the median of
//! the rounds.
//!
//! Run: `cargo bench --profile dist -p tether --bench proxy` (the shipped build: `-p tether`
//! keeps the other crates' test-only features, tokio's `test-util` among them, out of the
//! tether it measures; needs `taskset`; nginx from `apt-get install nginx`,
//! without it the rest is measured). `TETHER_BENCH_ROUNDS` (default 3) and
//! `TETHER_BENCH_SECS` (measured seconds per run, default 4) trade time for steadiness;
//! `TETHER_BENCH_BIN=path/to/tether` measures another build of tether;
//! `TETHER_CALLS_CAPTURE=off` (or `full`) passes to the tether under test, which records
//! every call with `metadata` otherwise. While it records, the same tether with
//! `capture = "off"` (column "rec. off") takes its turn in every round too, and the cost of
//! recording is printed as the median of the rounds' differences.

mod floor;
mod load;
mod peers;
mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use load::Target;
use peers::Memory;

const CONCURRENCY: [usize; 3] = [1, 16, 64];
const WARMUP: Duration = Duration::from_secs(1);
const STREAM_WARMUP: usize = 3;
const STREAMS: usize = 20;
/// How often a proxy's memory is sampled while it is under load.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// Targets from the product's issue.
const ADDED_P50_US: f64 = 60.0;
const FIRST_EVENT_US: f64 = 1_000.0;
const IDLE_RSS_BYTES: u64 = 15_000_000;
/// Most that recording calls (`capture = "metadata"`) may take off requests/s.
const RECORDING_COST_PCT: f64 = 3.0;

/// The column of the tether that does not record calls (`capture = "off"`).
const UNRECORDED: &str = "rec. off";

struct Settings {
    rounds: usize,
    measure: Duration,
}

impl Settings {
    fn from_env() -> Self {
        let number = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .unwrap_or(default)
        };
        Self {
            rounds: number("TETHER_BENCH_ROUNDS", 3.0) as usize,
            measure: Duration::from_secs_f64(number("TETHER_BENCH_SECS", 4.0)),
        }
    }
}

/// One target's figures, one entry per round.
#[derive(Default)]
struct Figures {
    rate: [Vec<f64>; CONCURRENCY.len()],
    p50_us: Vec<f64>,
    p99_us: Vec<f64>,
    first_event_us: Vec<f64>,
    stream_ms: Vec<f64>,
    /// Client calls answered, and the upstream requests they caused.
    calls: u64,
    upstream_requests: u64,
    errors: u64,
    short_streams: usize,
    /// The proxy's CPU time per call at concurrency 16, in microseconds.
    cpu_us: Vec<f64>,
    idle: Option<Memory>,
    loaded_rss: u64,
    end: Option<Memory>,
}

struct Measured {
    target: Target,
    /// The processes whose memory is this target's (none for the upstream alone).
    pids: Vec<u32>,
    figures: Figures,
}

fn main() {
    match std::env::var(upstream::ROLE_ENV).as_deref() {
        Ok(upstream::ROLE) => return upstream::run(),
        Ok(floor::ROLE) => return floor::run(),
        _ => {}
    }
    let settings = Settings::from_env();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (load_cpu, server_cpu) = match cpus {
        1 => (None, None),
        _ => match peers::pin_self(0) {
            Ok(()) => (Some(0), Some(1)),
            Err(e) => {
                println!("warning: not pinned ({e}); figures will include scheduling noise");
                (None, None)
            }
        },
    };
    let load_before = load_average();
    let up = peers::upstream(server_cpu);
    let nginx = peers::nginx(server_cpu, up.addr);
    let floor = peers::floor(server_cpu, up.addr);
    let tether = peers::tether(server_cpu, up.addr, None);
    // The same tether not recording calls, taking its turn in every round: the cost of
    // recording is the difference of the two, paired by round.
    let recording = std::env::var("TETHER_CALLS_CAPTURE").map_or(true, |c| c != "off");
    let unrecorded = recording.then(|| peers::tether(server_cpu, up.addr, Some("off")));
    // Let both finish starting before the idle reading.
    std::thread::sleep(Duration::from_secs(1));

    let mut measured = vec![Measured {
        target: Target {
            name: "direct",
            addr: up.addr,
            path: "/mcp".to_string(),
        },
        pids: vec![],
        figures: Figures::default(),
    }];
    match &nginx {
        Ok(n) => measured.push(Measured {
            target: Target {
                name: "nginx",
                addr: n.addr,
                path: "/mcp".to_string(),
            },
            pids: n.process.pids(),
            figures: Figures::default(),
        }),
        Err(why) => println!("{why}: measuring direct and tether only"),
    }
    measured.push(Measured {
        target: Target {
            name: "floor",
            addr: floor.addr,
            path: "/mcp".to_string(),
        },
        pids: vec![floor.pid()],
        figures: Figures::default(),
    });
    if let Some(off) = &unrecorded {
        measured.push(Measured {
            target: Target {
                name: UNRECORDED,
                addr: off.addr,
                path: off.path.clone(),
            },
            pids: vec![off.process.pid()],
            figures: Figures::default(),
        });
    }
    measured.push(Measured {
        target: Target {
            name: "tether",
            addr: tether.addr,
            path: tether.path.clone(),
        },
        pids: vec![tether.process.pid()],
        figures: Figures::default(),
    });
    for m in &mut measured {
        m.figures.idle = (!m.pids.is_empty()).then(|| peers::memory(&m.pids));
    }

    println!(
        "proxy bench: {} round(s) x {:.0?} per run after {WARMUP:?} warm-up, load generator on CPU {}, upstream + proxy on CPU {}",
        settings.rounds,
        settings.measure,
        load_cpu.map_or("any".to_string(), |c| c.to_string()),
        server_cpu.map_or("any".to_string(), |c| c.to_string()),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("load runtime");
    runtime.block_on(measure(&mut measured, up.addr, &settings));
    for m in &mut measured {
        m.figures.end = (!m.pids.is_empty()).then(|| peers::memory(&m.pids));
    }
    let load_after = load_average();

    report(&measured);
    report_recording(&measured);
    println!();
    println!(
        "machine: {cpus} CPU(s), load average {load_before} before and {load_after} after the run{}",
        nginx
            .as_ref()
            .map(|n| format!("; nginx {}", n.version))
            .unwrap_or_default()
    );
    drop(tether);
    drop(unrecorded);
    drop(nginx);
    // Not a speed target but the proxy's contract: a client call is one upstream request.
    for m in &measured {
        assert_eq!(
            m.figures.upstream_requests, m.figures.calls,
            "{}: upstream requests must equal client calls",
            m.target.name
        );
    }
}

/// The order the targets take their turns in, in `round`: as listed, but the last two (tether
/// not recording, then tether) swap places every other round, so neither is always the one
/// that follows the other.
fn turns(count: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    if round.is_multiple_of(2) && count >= 2 {
        order.swap(count - 2, count - 1);
    }
    order
}

async fn measure(measured: &mut [Measured], upstream: SocketAddr, settings: &Settings) {
    for round in 1..=settings.rounds {
        let order = turns(measured.len(), round);
        for (i, &concurrency) in CONCURRENCY.iter().enumerate() {
            for &at in &order {
                let m = &mut measured[at];
                let before = load::upstream_calls(upstream).await;
                let cpu_before = peers::cpu_time(&m.pids);
                let (phase, loaded_rss) = tokio::join!(
                    load::phase(&m.target, concurrency, WARMUP, settings.measure),
                    peak_rss(&m.pids, WARMUP + settings.measure),
                );
                let cpu = peers::cpu_time(&m.pids) - cpu_before;
                let after = load::upstream_calls(upstream).await;
                let f = &mut m.figures;
                if concurrency == 16 && !m.pids.is_empty() {
                    f.cpu_us
                        .push(cpu.as_secs_f64() * 1e6 / phase.answered.max(1) as f64);
                }
                f.calls += phase.answered;
                f.upstream_requests += after - before;
                f.errors += phase.errors;
                f.loaded_rss = f.loaded_rss.max(loaded_rss);
                f.rate[i].push(phase.rate());
                if concurrency == 1 {
                    f.p50_us.push(phase.quantile_us(0.50));
                    f.p99_us.push(phase.quantile_us(0.99));
                }
                println!(
                    "  round {round}: {:<6} c={concurrency:<2} {:>9} r/s  p50 {:>7.1} µs  p99 {:>7.1} µs{}",
                    m.target.name,
                    thousands(phase.rate()),
                    phase.quantile_us(0.50),
                    phase.quantile_us(0.99),
                    match phase.errors {
                        0 => String::new(),
                        n => format!("  {n} failed"),
                    }
                );
            }
        }
        for &at in &order {
            let m = &mut measured[at];
            let before = load::upstream_calls(upstream).await;
            let streams = load::streams(&m.target, STREAM_WARMUP, STREAMS).await;
            let after = load::upstream_calls(upstream).await;
            let f = &mut m.figures;
            let streams = match streams {
                Ok(s) => s,
                Err(e) => {
                    f.errors += 1;
                    println!("  round {round}: {:<6} SSE failed: {e}", m.target.name);
                    continue;
                }
            };
            f.calls += (STREAM_WARMUP + streams.len()) as u64;
            f.upstream_requests += after - before;
            f.short_streams += streams
                .iter()
                .filter(|s| s.events != upstream::EVENTS)
                .count();
            let first: Vec<f64> = streams
                .iter()
                .map(|s| s.first_event.as_secs_f64() * 1e6)
                .collect();
            let total: Vec<f64> = streams
                .iter()
                .map(|s| s.total.as_secs_f64() * 1e3)
                .collect();
            f.first_event_us.push(median(&first));
            f.stream_ms.push(median(&total));
            println!(
                "  round {round}: {:<6} SSE first event {:>7.1} µs, {} events in {:.2} ms",
                m.target.name,
                median(&first),
                upstream::EVENTS,
                median(&total)
            );
        }
    }
}

/// The most resident memory `pids` hold, sampled while a run of length `during` goes on.
async fn peak_rss(pids: &[u32], during: Duration) -> u64 {
    if pids.is_empty() {
        return 0;
    }
    let end = tokio::time::Instant::now() + during;
    let mut peak = 0;
    while tokio::time::Instant::now() < end {
        peak = peak.max(peers::memory(pids).rss);
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    peak
}

fn report(measured: &[Measured]) {
    let direct = &measured[0].figures;
    let nginx = measured
        .iter()
        .find(|m| m.target.name == "nginx")
        .map(|m| &m.figures);
    let tether = &measured[measured.len() - 1].figures;
    let added = |f: &Figures, of: fn(&Figures) -> &Vec<f64>| {
        let pairs: Vec<f64> = of(f).iter().zip(of(direct)).map(|(a, d)| a - d).collect();
        median(&pairs)
    };
    fn p50(f: &Figures) -> &Vec<f64> {
        &f.p50_us
    }
    fn p99(f: &Figures) -> &Vec<f64> {
        &f.p99_us
    }
    fn first(f: &Figures) -> &Vec<f64> {
        &f.first_event_us
    }

    let rate16 = |f: &Figures| median(&f.rate[1]);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let rate_target = match nginx {
        Some(n) => format!("tether ≥ nginx: {}", verdict(rate16(tether) >= rate16(n))),
        None => "tether ≥ nginx: no nginx".to_string(),
    };
    let p50_added = added(tether, p50);
    let first_added = added(tether, first);
    let idle = tether.idle.map_or(0, |m| m.rss);
    let per_call = |f: &Figures| f.upstream_requests as f64 / f.calls.max(1) as f64;
    let one_each = measured
        .iter()
        .all(|m| m.figures.upstream_requests == m.figures.calls);

    println!();
    print!("{:<40}", "median of rounds");
    for m in measured {
        print!("{:>12}", m.target.name);
    }
    println!("   target (tether)");
    let row = |label: &str, cell: &dyn Fn(&Measured) -> String, target: &str| {
        print!("{label:<40}");
        for m in measured {
            print!("{:>12}", cell(m));
        }
        println!("   {target}");
    };
    for (i, c) in CONCURRENCY.iter().enumerate() {
        row(
            &format!("requests/s, concurrency {c}"),
            &|m| thousands(median(&m.figures.rate[i])),
            if *c == 16 { &rate_target } else { "" },
        );
    }
    row(
        "proxy CPU per call, concurrency 16 (µs)",
        &|m| match m.pids.is_empty() {
            true => "-".to_string(),
            false => format!("{:.1}", median(&m.figures.cpu_us)),
        },
        "",
    );
    row(
        "latency p50, concurrency 1 (µs)",
        &|m| format!("{:.1}", median(&m.figures.p50_us)),
        "",
    );
    row(
        "latency p99, concurrency 1 (µs)",
        &|m| format!("{:.1}", median(&m.figures.p99_us)),
        "",
    );
    let vs_direct = |m: &Measured, of: fn(&Figures) -> &Vec<f64>| match m.pids.is_empty() {
        true => "-".to_string(),
        false => format!("{:+.1}", added(&m.figures, of)),
    };
    row(
        "added p50 vs direct (µs)",
        &|m| vs_direct(m, p50),
        &format!(
            "≤ {ADDED_P50_US:.0} µs: {}",
            verdict(p50_added <= ADDED_P50_US)
        ),
    );
    row("added p99 vs direct (µs)", &|m| vs_direct(m, p99), "");
    row(
        "SSE first event (µs)",
        &|m| format!("{:.1}", median(&m.figures.first_event_us)),
        "",
    );
    row(
        "SSE first event vs direct (µs)",
        &|m| vs_direct(m, first),
        &format!(
            "≤ {FIRST_EVENT_US:.0} µs: {}",
            verdict(first_added <= FIRST_EVENT_US)
        ),
    );
    row(
        &format!(
            "SSE {} events, total (ms)",
            thousands(upstream::EVENTS as f64)
        ),
        &|m| format!("{:.2}", median(&m.figures.stream_ms)),
        "",
    );
    row(
        "upstream requests per client call",
        &|m| format!("{:.3}", per_call(&m.figures)),
        &format!("= 1: {}", verdict(one_each)),
    );
    let mb =
        |bytes: Option<u64>| bytes.map_or("-".to_string(), |b| format!("{:.1}", b as f64 / 1e6));
    row(
        "RSS idle (MB, VmRSS)",
        &|m| mb(m.figures.idle.map(|i| i.rss)),
        &format!(
            "< {} MB: {}",
            IDLE_RSS_BYTES / 1_000_000,
            verdict(idle > 0 && idle < IDLE_RSS_BYTES)
        ),
    );
    row(
        "RSS under load (MB, max VmRSS)",
        &|m| mb((!m.pids.is_empty()).then_some(m.figures.loaded_rss)),
        "",
    );
    row(
        "RSS peak (MB, VmHWM)",
        &|m| mb(m.figures.end.map(|e| e.peak)),
        "",
    );
    row(
        "failed calls / short SSE streams",
        &|m| format!("{} / {}", m.figures.errors, m.figures.short_streams),
        "",
    );
}

/// What recording calls costs: tether against itself with `capture = "off"`, each figure
/// the median of the rounds' differences (the two ran back to back in every round, so what
/// the machine did meanwhile moves both alike).
fn report_recording(measured: &[Measured]) {
    let Some(off) = measured.iter().find(|m| m.target.name == UNRECORDED) else {
        return;
    };
    let on = &measured[measured.len() - 1];
    let change = |of: &dyn Fn(&Figures) -> &Vec<f64>| {
        let pairs: Vec<f64> = of(&on.figures)
            .iter()
            .zip(of(&off.figures))
            .map(|(on, off)| (on / off - 1.0) * 100.0)
            .collect();
        (median(&pairs), pairs)
    };
    let rounds = |pairs: &[f64]| {
        let each: Vec<String> = pairs.iter().map(|p| format!("{p:+.1}")).collect();
        each.join(", ")
    };
    let capture = std::env::var("TETHER_CALLS_CAPTURE").unwrap_or_else(|_| "metadata".into());
    println!();
    println!(
        "recording calls (capture {capture}) against the same tether with capture off, median of the rounds' differences:"
    );
    // The concurrencies where the CPU is the limit: the budget is for those.
    let mut worst = f64::INFINITY;
    for (i, c) in CONCURRENCY.iter().enumerate() {
        let (median, pairs) = change(&|f| &f.rate[i]);
        if *c > 1 {
            worst = worst.min(median);
        }
        println!(
            "  requests/s, concurrency {c:<2}        {median:+5.1} %   (rounds: {})",
            rounds(&pairs)
        );
    }
    let (cpu, pairs) = change(&|f| &f.cpu_us);
    println!(
        "  proxy CPU per call, concurrency 16 {cpu:+5.1} %   (rounds: {})",
        rounds(&pairs)
    );
    println!(
        "  target: requests/s at concurrency 16 and 64 within {RECORDING_COST_PCT:.0} %: {}",
        if worst >= -RECORDING_COST_PCT {
            "met"
        } else {
            "MISSED"
        }
    );
}

fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_string();
    }
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}
