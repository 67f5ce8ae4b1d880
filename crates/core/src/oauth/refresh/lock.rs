//! The cross-process refresh lock: one advisory-locked file per connection beside the vault,
//! so two tether processes never spend the same refresh token at once.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::vault::Vault;

/// The refresh lock could not be taken: the folder or file cannot be made or locked.
#[derive(Debug, thiserror::Error)]
#[error("cannot take the refresh lock {}: {source}", path.display())]
pub struct LockError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Takes a connection's cross-process refresh lock (blocking wait on the blocking pool);
/// released when the returned file is dropped, or when the process dies.
pub async fn lock_refresh(path: PathBuf) -> Result<File, LockError> {
    let at = path.clone();
    tokio::task::spawn_blocking(move || {
        let fail = |source| LockError {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            crate::paths::ensure_private_dir(dir).map_err(|e| fail(std::io::Error::other(e)))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(fail)?;
        file.lock().map_err(fail)?;
        Ok(file)
    })
    .await
    .map_err(|e| LockError {
        path: at,
        source: std::io::Error::other(e),
    })?
}

/// Where the per-connection refresh locks live: beside the vault.
pub fn lock_dir(vault: &Vault) -> PathBuf {
    vault
        .location()
        .parent()
        .map(|p| p.join("locks"))
        .unwrap_or_else(|| PathBuf::from("locks"))
}

/// The refresh lock of connection `name`.
pub fn lock_file(vault: &Vault, name: &str) -> PathBuf {
    lock_dir(vault).join(format!("{name}.lock"))
}
