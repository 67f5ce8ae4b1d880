//! Which tether serves this vault's endpoints, and where: the process that serves the proxy
//! writes `serving.json` beside the vault (address, pid, version, start time, whether a
//! service manager runs it) and removes it when it stops. `tether url`, `tether config`,
//! `tether service status` and the TUI read it, and believe it only after the address
//! proves it holds this vault (`presence`), so a stale or forged file changes nothing.
//! It holds no secret.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use tether_core::presence::{self, Presence};
use tether_core::vault::Vault;

const FILE: &str = "serving.json";

/// What the serving process says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub addr: SocketAddr,
    pub pid: u32,
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// The service manager that runs it (`systemd`, `launchd`), if one does.
    pub service: Option<String>,
    /// The binary that serves.
    pub binary: Option<PathBuf>,
}

fn path(vault: &Vault) -> PathBuf {
    vault
        .location()
        .parent()
        .map_or_else(|| PathBuf::from(FILE), |dir| dir.join(FILE))
}

impl Record {
    /// This process, serving on `addr`.
    pub fn this_process(addr: SocketAddr, service: Option<String>) -> Self {
        Self {
            addr,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: Utc::now(),
            service,
            binary: std::env::current_exe().ok(),
        }
    }

    /// Writes the record for other processes (atomically; a failure is logged: the proxy
    /// serves anyway, and others fall back to the configured address).
    pub fn publish(&self, vault: &Vault) {
        let path = path(vault);
        let written = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                let dir = path.parent().unwrap_or(std::path::Path::new("."));
                let mut file = tempfile::NamedTempFile::new_in(dir)?;
                std::io::Write::write_all(&mut file, &json)?;
                file.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
        if let Err(e) = written {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }

    /// Removes the record if it is still this process's.
    pub fn withdraw(vault: &Vault) {
        let path = path(vault);
        if read(vault).is_some_and(|r| r.pid == std::process::id()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The record as written, whether or not that process still serves.
pub fn read(vault: &Vault) -> Option<Record> {
    let text = std::fs::read(path(vault)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The tether that serves this vault right now, proved by its answer to a challenge.
pub async fn running(vault: &Vault) -> Option<Record> {
    let record = read(vault)?;
    (presence::probe(record.addr, vault).await == Presence::Ours).then_some(record)
}

/// The address clients should use: the running tether's; else the service's, which a
/// service manager will start again there; else the configured one (where the next
/// `tether serve` or the TUI will listen).
pub async fn address(vault: &Vault, configured: SocketAddr) -> SocketAddr {
    if let Some(r) = running(vault).await {
        return r.addr;
    }
    read(vault)
        .filter(|r| r.service.is_some())
        .map_or(configured, |r| r.addr)
}
