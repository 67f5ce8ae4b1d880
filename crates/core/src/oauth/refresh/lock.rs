//! The cross-process refresh lock: one advisory-locked file per connection beside the vault,
//! so two tether processes never spend the same refresh token at once — and, where the
//! store is shared by several machines (PostgreSQL), the store's own lock as well, taken
//! after the file's, so processes on one machine queue on the file and only one of them
//! waits on the database.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::vault::{SharedLock, Vault};

/// The refresh lock could not be taken: the folder or file cannot be made or locked, or
/// the store's lock cannot be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot take the refresh lock {}: {source}", path.display())]
pub struct LockError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A held refresh lock: released when dropped, or when the process dies.
pub struct RefreshLock {
    _file: File,
    _shared: Option<SharedLock>,
}

/// Takes connection `name`'s refresh lock: the file beside the vault (a blocking wait on
/// the blocking pool), then the store's own where it has one.
pub async fn lock_refresh(vault: &Vault, name: &str) -> Result<RefreshLock, LockError> {
    let path = lock_file(vault, name);
    let file = lock_file_only(path.clone()).await?;
    let shared = vault.shared_lock(name).await.map_err(|reason| LockError {
        path,
        source: std::io::Error::other(format!("the store's lock: {reason}")),
    })?;
    Ok(RefreshLock {
        _file: file,
        _shared: shared,
    })
}

async fn lock_file_only(path: PathBuf) -> Result<File, LockError> {
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
