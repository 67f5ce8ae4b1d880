//! Who else on this machine might hold a connection's grant — listed when a dead grant is
//! shown (`tether status`, `tether doctor`), never scanned during a refresh. These are
//! candidates, not causes: an MCP client configured with the server directly usually holds
//! a grant of its own, and a copy of the vault elsewhere (another tether home, a backup in
//! use) cannot be seen from here at all. Only evidence from the server or tether's own
//! records names a cause.

use super::{Locations, drift};
use crate::vault::{Connection, DiagnosisCode, Store};

/// The diagnoses that mean "the grant died under tether", for which candidates help.
pub fn relevant(code: DiagnosisCode) -> bool {
    matches!(
        code,
        DiagnosisCode::InvalidGrantRotatedElsewhere
            | DiagnosisCode::InvalidGrantExpiredOrRevoked
            | DiagnosisCode::InvalidGrantReused
    )
}

/// Other possible holders of `c`'s grant found on this machine, one line each.
pub fn candidates(store: &Store, c: &Connection) -> Vec<String> {
    let mut out: Vec<String> = Locations::from_env()
        .map(|at| {
            let folder = std::env::current_dir().ok();
            drift::sharing(&at, folder.as_deref(), store, c.name.as_str())
        })
        .unwrap_or_default()
        .into_iter()
        .map(|client| format!("{client} (configured with the server directly)"))
        .collect();
    // An import leaves mcp-remote's own copy of the grant in place, and mcp-remote
    // refreshes with it whenever a client still launches it.
    if let Some(import) = c
        .history
        .iter()
        .rev()
        .find(|e| e.detail.starts_with("imported from mcp-remote"))
    {
        out.push(format!(
            "mcp-remote's store: this grant was {}",
            crate::printable::printable(&import.detail, 200)
        ));
    }
    out
}
