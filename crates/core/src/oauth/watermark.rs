//! The refresh high-water mark: the newest token generation each connection reached and
//! the refresh tokens tether has spent (as short hashes, never the tokens), kept beside the
//! refresh locks — outside the vault. A vault restored from an older backup, or otherwise
//! gone backwards, then holds a refresh token the mark says was spent, so the server's
//! `invalid_grant` is diagnosed as reuse instead of a mystery.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Spent refresh-token hashes kept per connection.
const SPENT_CAP: usize = 64;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Watermark {
    pub generation: u64,
    /// Hex of the first 8 bytes of SHA-256 of each spent refresh token, oldest first.
    #[serde(default)]
    pub spent: Vec<String>,
}

impl Watermark {
    /// Whether a vault holding `generation` and about to send a refresh token hashing to
    /// `hash` has gone backwards: the mark saw a newer token, or this one spent.
    pub fn shows_reuse(&self, generation: u64, hash: &[u8; 8]) -> bool {
        self.generation > generation || self.spent.contains(&crate::vault::Key::hex_of(hash))
    }
}

/// The mark's file for the refresh lock `lock_file` (`locks/<name>.lock` → `.mark`).
pub fn path(lock_file: &Path) -> PathBuf {
    lock_file.with_extension("mark")
}

/// Forgets the mark of a removed connection, so a new connection of the same name starts
/// afresh instead of looking like a vault gone backwards. A mark that cannot be removed
/// is logged: it could only make a later `invalid_grant` read as reuse.
pub fn forget(vault: &crate::vault::Vault, name: &str) {
    let path = path(&crate::oauth::refresh::lock_file(vault, name));
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!("could not remove {}: {e}", path.display());
        }
        _ => {}
    }
}

/// Moves the mark of a connection renamed from `from` to `to` (under both refresh locks),
/// so the renamed connection keeps its protection against a vault gone backwards.
pub fn carry(vault: &crate::vault::Vault, from: &str, to: &str) {
    let mark = |name| path(&crate::oauth::refresh::lock_file(vault, name));
    match std::fs::rename(mark(from), mark(to)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!("could not move the refresh mark of '{from}' to '{to}': {e}");
        }
        _ => {}
    }
}

pub async fn read(path: PathBuf) -> Option<Watermark> {
    let bytes = tokio::fs::read(path).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Raises the mark to `generation` and records `spent`; called under the connection's
/// refresh lock after the vault committed. Best effort: a failure only weakens a later
/// diagnosis, so it is logged, not returned.
pub async fn raise(path: PathBuf, generation: u64, spent: Option<[u8; 8]>) {
    let mut mark = read(path.clone()).await.unwrap_or_default();
    mark.generation = mark.generation.max(generation);
    if let Some(hash) = spent {
        mark.spent.push(crate::vault::Key::hex_of(&hash));
        let excess = mark.spent.len().saturating_sub(SPENT_CAP);
        mark.spent.drain(..excess);
    }
    let result = tokio::task::spawn_blocking(move || write(&path, &mark)).await;
    if !matches!(result, Ok(Ok(()))) {
        tracing::warn!("could not update the refresh high-water mark: {result:?}");
    }
}

fn write(path: &Path, mark: &Watermark) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".mark-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)?;
    temp.write_all(&serde_json::to_vec(mark).map_err(std::io::Error::other)?)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vault_gone_backwards_shows_reuse() {
        let mark = Watermark {
            generation: 5,
            spent: vec![crate::vault::Key::hex_of(&[1; 8])],
        };
        assert!(mark.shows_reuse(4, &[9; 8]), "older generation");
        assert!(mark.shows_reuse(5, &[1; 8]), "spent token");
        assert!(!mark.shows_reuse(5, &[9; 8]));
    }
}
