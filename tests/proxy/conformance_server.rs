//! The MCP conformance suite's server scenarios that judge a proxy's own behaviour —
//! DNS-rebinding protection, several concurrent SSE streams, SSE polling (a stream the
//! server closes mid-call, resumed with `Last-Event-ID`), the session lifecycle and
//! SEP-2243 header validation — run with both pinned releases against the simulator
//! serving MCP with no sign-in, first directly (so the upstream is known to pass) and then
//! through `tether serve` in front of it. Through tether every scenario must pass as it
//! does directly: no failure, no warning.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Home, Serve, Sim, peers, secret_for};

/// The scenarios each release has of those the proxy must pass.
const SCENARIOS: &[(&str, &[&str])] = &[
    (
        "conformance-0.1",
        &[
            "dns-rebinding-protection",
            "server-sse-multiple-streams",
            "server-sse-polling",
        ],
    ),
    (
        "conformance-0.2",
        &[
            "dns-rebinding-protection",
            "server-sse-multiple-streams",
            "server-sse-polling",
            "server-session-lifecycle",
            "http-header-validation",
        ],
    ),
];

/// `Passed: 3/3, 0 failed, 0 warnings` → (passed, failed, warnings).
fn summary(text: &str) -> Option<(u32, u32, u32)> {
    let line = text
        .lines()
        .find_map(|l| l.split_once("Passed: ").map(|(_, r)| r))?;
    let mut parts = line.split(", ");
    let passed = parts.next()?.split('/').next()?.trim().parse().ok()?;
    let failed = parts.next()?.strip_suffix(" failed")?.trim().parse().ok()?;
    let warnings = parts
        .next()?
        .trim()
        .strip_suffix(" warnings")?
        .parse()
        .ok()?;
    Some((passed, failed, warnings))
}

/// Runs one scenario against `url`; `Err` carries the suite's report when it did not pass
/// cleanly.
fn run(node: &Path, cli: &Path, scenario: &str, url: &str) -> Result<u32, String> {
    let out = Command::new(node)
        .arg(cli)
        .args(["server", "--url", url, "--scenario", scenario])
        .output()
        .expect("run the conformance suite");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match summary(&text) {
        Some((passed, 0, 0)) if passed > 0 => Ok(passed),
        _ => Err(text),
    }
}

/// Every scenario of every release against `url`, in parallel; the failures, described.
fn failures(node: &Path, url: &str, via: &str) -> Vec<String> {
    let jobs: Vec<(PathBuf, &str, &str)> = SCENARIOS
        .iter()
        .flat_map(|(package, names)| {
            let cli = peers::dir()
                .join("node_modules")
                .join(package)
                .join("dist/index.js");
            names.iter().map(move |n| (cli.clone(), *package, *n))
        })
        .collect();
    std::thread::scope(|scope| {
        let runs: Vec<_> = jobs
            .iter()
            .map(|(cli, package, name)| {
                scope.spawn(move || {
                    let result = run(node, cli, name, url);
                    match &result {
                        Ok(n) => println!("{via:>8}  {package}  {name}: {n} checks passed"),
                        Err(_) => println!("{via:>8}  {package}  {name}: FAILED"),
                    }
                    result
                        .err()
                        .map(|report| format!("{via} {package} {name}:\n{report}"))
                })
            })
            .collect();
        runs.into_iter().filter_map(|r| r.join().unwrap()).collect()
    })
}

#[test]
fn the_proxy_passes_the_server_scenarios_its_upstream_passes() {
    let Some(node) = peers::require(&["conformance-0.1", "conformance-0.2"]) else {
        return;
    };
    let sim = Sim::start_with("generic", "1", &["--no-auth"]);
    let direct = failures(&node, &sim.mcp_url, "direct");
    assert!(
        direct.is_empty(),
        "the upstream itself fails:\n{}",
        direct.join("\n")
    );

    let home = Home::new();
    home.run(&["add", "open", &sim.mcp_url, "--no-auth"]).ok();
    let secret = secret_for(&home, "open", "conformance");
    let serve = Serve::start(&home);
    let through = failures(&node, &format!("{}/s/{secret}/mcp", serve.base), "tether");
    assert!(through.is_empty(), "{}", through.join("\n"));
    let log = serve.stop();
    assert!(
        !log.contains(&secret),
        "the endpoint secret reached the log"
    );
}
