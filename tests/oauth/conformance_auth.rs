//! The MCP conformance suite's client authorization scenarios, run against tether's own
//! login and token engine (`examples/conformance_client.rs`) with both pinned releases of
//! `@modelcontextprotocol/conformance`: 0.1.16 (the 2025-11-25 spec) and 0.2.0-alpha.12
//! (adds the 2026-07-28 scenarios: `iss`, issuer mismatch, server migration).
//!
//! Each release runs its `auth` suite, then every other client `auth/` scenario it lists
//! (back-compat, draft and 2026-07-28 ones; extensions left out); each is compared with
//! [`EXPECTED`]. A scenario listed as passing must pass; one
//! listed as failing must still fail (so this table, and the README's, stay true). The
//! suites need Node 22 and the packages from `tests/peers/install.sh`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::support::peers;

/// What a scenario does with tether, per release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Every check passed, no warnings.
    Pass,
    /// Fails or warns, for the reason given in the table.
    Fail,
    /// The release does not have this scenario.
    Absent,
}
use Outcome::*;

struct Expected {
    scenario: &'static str,
    v01: Outcome,
    v02: Outcome,
    /// Why it fails, where it does (also in the README's conformance table).
    note: &'static str,
}

const fn e(scenario: &'static str, v01: Outcome, v02: Outcome, note: &'static str) -> Expected {
    Expected {
        scenario,
        v01,
        v02,
        note,
    }
}

const EXPECTED: &[Expected] = &[
    e("auth/metadata-default", Pass, Pass, ""),
    e("auth/metadata-var1", Pass, Pass, ""),
    e("auth/metadata-var2", Pass, Pass, ""),
    e("auth/metadata-var3", Pass, Pass, ""),
    e(
        "auth/basic-cimd",
        Fail,
        Fail,
        "warning: tether registers with DCR; it uses a Client ID Metadata Document only for a \
         URL the user gives (which it fetches to check), and the suite's URL is unresolvable",
    ),
    e("auth/scope-from-www-authenticate", Pass, Pass, ""),
    e("auth/scope-from-scopes-supported", Pass, Pass, ""),
    e("auth/scope-omitted-when-undefined", Pass, Pass, ""),
    e(
        "auth/scope-step-up",
        Pass,
        Fail,
        "0.2 warning: the server opens initialize and names the scope tools/list needs only in \
         a 401 to a tokenless tools/list; tether logs in before any call, with the resource's \
         scopes_supported (mcp:profile), so it never sees that 401",
    ),
    e("auth/scope-retry-limit", Pass, Pass, ""),
    e("auth/token-endpoint-auth-basic", Pass, Pass, ""),
    e("auth/token-endpoint-auth-post", Pass, Pass, ""),
    e("auth/token-endpoint-auth-none", Pass, Pass, ""),
    e("auth/pre-registration", Pass, Pass, ""),
    e(
        "auth/2025-03-26-oauth-metadata-backcompat",
        Fail,
        Pass,
        "0.1.16's mock publishes metadata at the origin whose issuer names another URL \
         (.../oauth); tether refuses metadata whose issuer differs (RFC 8414 §3.3); 0.2 fixed \
         the mock",
    ),
    e("auth/2025-03-26-oauth-endpoint-fallback", Pass, Pass, ""),
    e("auth/resource-mismatch", Pass, Pass, ""),
    e("auth/offline-access-scope", Pass, Pass, ""),
    e("auth/offline-access-not-supported", Pass, Pass, ""),
    e("auth/authorization-server-migration", Absent, Pass, ""),
    e("auth/iss-supported", Absent, Pass, ""),
    e("auth/iss-not-advertised", Absent, Pass, ""),
    e("auth/iss-supported-missing", Absent, Pass, ""),
    e("auth/iss-wrong-issuer", Absent, Pass, ""),
    e("auth/iss-unexpected", Absent, Pass, ""),
    e("auth/iss-normalized", Absent, Pass, ""),
    e("auth/metadata-issuer-mismatch", Absent, Pass, ""),
];

/// The pinned releases: (version, package alias under `tests/peers/node_modules`).
const RELEASES: [(&str, &str); 2] = [
    ("0.1.16", "conformance-0.1"),
    ("0.2.0-alpha.12", "conformance-0.2"),
];

#[derive(Debug, Clone, Copy)]
struct Counts {
    passed: u32,
    failed: u32,
    warnings: u32,
}

impl Counts {
    fn outcome(&self) -> Outcome {
        if self.failed == 0 && self.warnings == 0 && self.passed > 0 {
            Pass
        } else {
            Fail
        }
    }
}

/// The adapter the suite drives: built beside this test by `cargo test`, or on demand.
fn adapter() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--locked", "--example", "conformance_client"]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let out = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo build --example conformance_client");
    assert!(
        out.status.success(),
        "building the conformance adapter failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let adapter = profile_dir.join("examples/conformance_client");
    assert!(adapter.exists(), "{} is missing", adapter.display());
    adapter
}

/// `✓ auth/metadata-default: 13 passed, 0 failed` (`, 1 warnings` when any).
fn parse_summary(stdout: &str) -> BTreeMap<String, Counts> {
    let mut out = BTreeMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("✓ ").or_else(|| line.strip_prefix("✗ ")) else {
            continue;
        };
        let Some((name, counts)) = rest.split_once(": ") else {
            continue;
        };
        let number = |word: &str| -> u32 {
            counts
                .split(", ")
                .find_map(|part| part.strip_suffix(word))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        out.insert(
            name.to_string(),
            Counts {
                passed: number(" passed"),
                failed: number(" failed"),
                warnings: number(" warnings"),
            },
        );
    }
    out
}

/// `Passed: 13/13, 0 failed, 1 warnings`, the result of a single-scenario run.
fn parse_single(stdout: &str) -> Option<Counts> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("Passed: "))?;
    let mut parts = line.split(", ");
    let passed = parts.next()?.split('/').next()?.trim().parse().ok()?;
    let failed = parts.next()?.strip_suffix(" failed")?.trim().parse().ok()?;
    let warnings = parts
        .next()?
        .strip_suffix(" warnings")?
        .trim()
        .parse()
        .ok()?;
    Some(Counts {
        passed,
        failed,
        warnings,
    })
}

/// One release of the suite, run by the pinned Node 22.
struct Release {
    node: PathBuf,
    cli: PathBuf,
    adapter: PathBuf,
}

impl Release {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.node);
        cmd.arg(&self.cli);
        cmd
    }

    /// Every client `auth/` scenario of the release, extensions (client credentials,
    /// enterprise and DPoP profiles, which tether does not claim) left out.
    fn auth_scenarios(&self) -> Vec<String> {
        let out = self
            .command()
            .arg("list")
            .output()
            .expect("conformance list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- "))
            .filter(|l| l.starts_with("auth/") && !l.contains("extension"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }

    /// `--suite auth`: the scenarios the release groups as its auth suite, in parallel.
    fn auth_suite(&self) -> BTreeMap<String, Counts> {
        let out = self
            .command()
            .args([
                "client",
                "--suite",
                "auth",
                "--timeout",
                "60000",
                "--command",
            ])
            .arg(&self.adapter)
            .output()
            .expect("run the conformance suite");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let results = parse_summary(&stdout);
        assert!(
            !results.is_empty(),
            "--suite auth reported nothing:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        results
    }

    fn scenario(&self, name: &str) -> Counts {
        let out = self
            .command()
            .args([
                "client",
                "--scenario",
                name,
                "--timeout",
                "60000",
                "--command",
            ])
            .arg(&self.adapter)
            .output()
            .expect("run a conformance scenario");
        // A single scenario reports on stderr; read both, in case that moves.
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        parse_single(&text).unwrap_or_else(|| panic!("{name} reported nothing:\n{text}"))
    }

    /// Every auth scenario: the auth suite, then the rest (back-compat and the
    /// 2026-07-28 ones) one by one, in parallel. The whole `draft` suite is not run: its
    /// non-auth scenarios judge a general MCP client and wait out their timeouts.
    fn run(&self) -> BTreeMap<String, Counts> {
        let mut results = self.auth_suite();
        let rest: Vec<String> = self
            .auth_scenarios()
            .into_iter()
            .filter(|s| !results.contains_key(s))
            .collect();
        let counted: Vec<(String, Counts)> = std::thread::scope(|scope| {
            let runs: Vec<_> = rest
                .iter()
                .map(|name| scope.spawn(move || (name.clone(), self.scenario(name))))
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        results.extend(counted);
        results
    }
}

#[test]
fn client_auth_scenarios_of_both_releases_match_the_table() {
    let Some(node) = peers::require(&["conformance-0.1", "conformance-0.2"]) else {
        return;
    };
    let adapter = adapter();
    let mut problems = Vec::new();
    for (index, (version, package)) in RELEASES.iter().enumerate() {
        let release = Release {
            node: node.clone(),
            cli: peers::dir()
                .join("node_modules")
                .join(package)
                .join("dist/index.js"),
            adapter: adapter.clone(),
        };
        let results = release.run();
        let (mut passed, mut total) = (0, 0);
        for expected in EXPECTED {
            let want = if index == 0 {
                expected.v01
            } else {
                expected.v02
            };
            let got = results.get(expected.scenario);
            let outcome = got.map_or(Absent, Counts::outcome);
            if let Some(c) = got {
                total += 1;
                passed += (outcome == Pass) as u32;
                println!(
                    "{version:>15}  {:<44} {:?}: {} passed, {} failed, {} warnings",
                    expected.scenario, outcome, c.passed, c.failed, c.warnings
                );
            }
            if outcome != want {
                problems.push(format!(
                    "{version} {}: expected {want:?}, got {outcome:?} {got:?}{}",
                    expected.scenario,
                    if expected.note.is_empty() {
                        String::new()
                    } else {
                        format!(" (table note: {})", expected.note)
                    }
                ));
            }
        }
        for (name, c) in &results {
            if !EXPECTED.iter().any(|e| e.scenario == name) {
                problems.push(format!(
                    "{version} {name}: not in the table ({c:?}); add it with its outcome"
                ));
            }
        }
        println!("{version}: {passed}/{total} auth scenarios pass");
    }
    assert!(
        problems.is_empty(),
        "the conformance results moved; fix tether or update EXPECTED and the README:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_summary_lines_are_read() {
    let s = parse_summary(
        "Running auth suite\n✓ auth/a: 13 passed, 0 failed\n✗ auth/b: 13 passed, 0 failed, 1 warnings\n\
         ✗ auth/c: 0 passed, 2 failed\nTotal: 26 passed, 2 failed, 1 warnings\n",
    );
    assert_eq!(s["auth/a"].outcome(), Pass);
    assert_eq!(s["auth/b"].outcome(), Fail);
    assert_eq!(s["auth/c"].failed, 2);
    assert_eq!(s.len(), 3);
    let one = parse_single("Test Results:\nPassed: 13/13, 0 failed, 1 warnings\n").unwrap();
    assert_eq!((one.passed, one.failed, one.warnings), (13, 0, 1));
    assert_eq!(one.outcome(), Fail);
}
