//! The client-files check: MCP clients on this machine that still reach an upstream
//! directly, beside tether (drift), and client files that cannot be read.

use tether_core::vault::DiagnosisCode;

use super::{Finding, Status};

/// The subject of findings about client files; not a valid connection name (it has a
/// space), so it never mixes with a connection's findings.
pub(super) const CLIENT_FILES: &str = "client files";

/// Client entries that reach a connection's upstream directly (drift), and client files
/// that cannot be read. Never writes a client's file.
pub(super) fn client_findings(
    store: &tether_core::vault::Store,
    only: Option<&str>,
) -> Vec<Finding> {
    use tether_core::clients::drift::{self, FileState};
    // Names, URLs and paths come from files anyone may have written.
    let shown = |text: &str| tether_core::printable::printable(text, 300);
    let Some(at) = tether_core::clients::Locations::from_env() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let folder = std::env::current_dir().ok();
    for report in drift::scan(&at, folder.as_deref(), store) {
        if report.state == FileState::Unreadable && only.is_none() {
            out.push(
                Finding::new(
                    CLIENT_FILES,
                    "readable",
                    Status::Warn,
                    format!("cannot read {}'s configuration", report.title),
                )
                .with("file", shown(&report.file))
                .with("error", shown(report.error.as_deref().unwrap_or_default())),
            );
        }
        for entry in report.drifting() {
            let connection = entry.connection.as_deref().unwrap_or_default();
            if only.is_some_and(|n| n != connection) {
                continue;
            }
            let mut f = Finding::new(
                connection,
                "clients",
                Status::Fail,
                format!(
                    "{} talks to the upstream directly, beside tether",
                    report.title
                ),
            )
            .with("client", report.client)
            .with("file", shown(&report.file))
            .with("entry", shown(&entry.name))
            .with("url", shown(&entry.target));
            f.diagnosis = Some(DiagnosisCode::ClientDrift);
            f.remedy = entry.remedy.as_deref().map(shown);
            out.push(f);
        }
    }
    out
}
