//! The vault: one encrypted file that cannot lose a token (docs/architecture.md, "The vault").
//!
//! Every change is a transaction: take the cross-process lock → read the newest file →
//! apply the change → write a temp file in the same folder → fsync → rename over the old
//! file → fsync the folder → release. Readers never take the lock: a rename is atomic, so
//! they see the old file or the new one, never a torn one. A file that fails to decrypt
//! or parse is an error naming the file; it is never overwritten.
//!
//! The vault is a leaf: it knows no protocol, no engine and no screen.

mod codec;
mod crypto;
mod file;
mod key;
pub mod model;
pub mod postgres;
mod time;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

pub use crypto::{Key, KeyHint};
pub use file::FileBackend;
pub use key::{KEY_ENV, KeyError, KeySource, found_without_env};
pub use model::*;
pub use postgres::PostgresBackend;

use crate::config::Config;
use crate::paths::{Paths, PathsError};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot {action} '{path}': {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "vault '{path}' is truncated ({len} bytes): restore it from a backup; tether left it untouched"
    )]
    Truncated { path: PathBuf, len: usize },
    #[error(
        "'{path}' is not a tether vault (unknown file signature): move it away or point TETHER_HOME elsewhere; tether left it untouched"
    )]
    NotAVault { path: PathBuf },
    #[error(
        "vault '{path}' was written by a newer tether ({what} {found}, this build knows {supported}): upgrade tether; tether left it untouched"
    )]
    FutureVersion {
        path: PathBuf,
        what: &'static str,
        found: u32,
        supported: u32,
    },
    #[error(
        "vault '{path}' was sealed with a different key (key id {sealed_with}, sealed from {hint}) than the one from {ours} (key id {our_id}): use the matching key; tether left the vault untouched"
    )]
    WrongKey {
        path: PathBuf,
        sealed_with: String,
        hint: &'static str,
        ours: String,
        our_id: String,
    },
    #[error(
        "vault '{path}' failed its integrity check: the file was damaged or modified. Restore it from a backup; tether left it untouched"
    )]
    Tampered { path: PathBuf },
    #[error(
        "vault '{path}' decrypted but its contents are not valid ({reason}): restore it from a backup; tether left it untouched"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("the vault transaction could not run: {0}")]
    Task(String),
    #[error(
        "cannot {action} the store '{store}': {reason}. Check that PostgreSQL runs there and the address, user and password (PGPASSWORD) are right; tether changed nothing"
    )]
    Store {
        store: String,
        action: &'static str,
        reason: String,
    },
    #[error(
        "the store '{store}' holds a row for connection '{name}' that {reason}: restore the row from a backup, or remove the connection with `tether remove {name}`; tether left it untouched"
    )]
    Row {
        store: String,
        name: String,
        reason: String,
    },
}

/// One committed version of the store, as cheap to take as the backend allows: compared
/// with the last one loaded, it says whether another process changed the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp([u64; 3]);

impl Stamp {
    /// A file's version: its modification time, length and inode (a transaction replaces
    /// the file, so each write changes the inode and nearly always the rest).
    pub fn of_file(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Self([
            m.mtime() as u64 ^ ((m.mtime_nsec() as u64) << 34),
            m.len(),
            m.ino(),
        ]))
    }

    /// A database's version: the revision its last commit announced.
    pub fn revision(revision: i64) -> Self {
        Self([revision as u64, 0, 0])
    }

    /// The first part: the whole of a database's stamp.
    pub fn first(&self) -> u64 {
        self.0[0]
    }
}

/// A refresh lock the store itself holds across machines (the PostgreSQL store's advisory
/// lock); released when dropped.
pub struct SharedLock(#[allow(dead_code)] Box<dyn Send + Sync>);

impl SharedLock {
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self(Box::new(guard))
    }
}

/// A place the store lives. The file backend is the one users have; a database backend
/// with a row lock per connection can take its place for several replicas.
pub trait Backend: Send + Sync {
    /// The newest committed store, without taking the lock.
    fn load(&self) -> Result<Store, VaultError>;

    /// Runs `apply` on the newest store under the exclusive lock and commits the result
    /// when `apply` returns true; returns nothing is written when it returns false.
    fn update(&self, apply: &mut dyn FnMut(&mut Store) -> bool) -> Result<(), VaultError>;

    /// The local vault file: tether's own files beside it (refresh locks, marks, the
    /// keyring entry's name) are named after it, whatever the backend.
    fn location(&self) -> &Path;

    /// Where the store lives, for messages.
    fn describe(&self) -> String {
        self.location().display().to_string()
    }

    /// The store's current version (see [`Stamp`]).
    fn stamp(&self) -> Option<Stamp> {
        Stamp::of_file(self.location())
    }

    /// This process as the store names it to other replicas (host and process id), for a
    /// store several machines share.
    fn replica(&self) -> Option<&str> {
        None
    }

    /// The file to watch for other processes' changes, when the store is one.
    fn watched_file(&self) -> Option<&Path> {
        Some(self.location())
    }

    /// The store's own lock on refreshing `name`, for stores that several machines share
    /// (the file store has none: its processes share the lock file beside it).
    fn shared_lock<'a>(
        &'a self,
        _name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<SharedLock>, String>> + Send + 'a>> {
        Box::pin(async { Ok(None) })
    }
}

/// The handle the rest of tether uses: cheap to clone, safe to share across tasks.
#[derive(Clone)]
pub struct Vault {
    backend: Arc<dyn Backend>,
    key_source: KeySource,
    /// Derived from the vault key: proves to another tether process that this one holds
    /// the same vault (see `presence`).
    presence_key: Arc<Key>,
}

/// What the presence key is derived for; changing it makes every running tether a stranger.
const PRESENCE_PURPOSE: &str = "proxy presence";

impl Vault {
    /// Opens (or, on first use, creates) the vault under `paths`, resolving its key as
    /// `config` says. Nothing is written until the first transaction.
    pub fn open(paths: &Paths, config: &Config) -> Result<Self, VaultError> {
        paths.ensure_data_dir()?;
        match config.store.url.as_deref().map(str::trim) {
            None | Some("" | "file") => {}
            Some(url) if postgres::is_postgres(url) => {
                let choice = config.vault.key_source;
                let backend = PostgresBackend::open(
                    url,
                    config.store.ca_file.as_deref(),
                    paths.vault_file(),
                    |exists| {
                        key::resolve_for(choice, &paths.vault_file(), &paths.key_file(), exists)
                    },
                )?;
                let (key, key_source) = (backend.key().clone(), backend.key_source().clone());
                return Ok(Self::with_backend(Arc::new(backend), &key, key_source));
            }
            Some(url) => {
                return Err(VaultError::Store {
                    store: postgres::redact(url),
                    action: "use",
                    reason: "tether stores its vault in a file or in PostgreSQL: use `file` or postgres://USER@HOST:PORT/DATABASE".into(),
                });
            }
        }
        let (key, key_source) = key::resolve(
            config.vault.key_source,
            &paths.vault_file(),
            &paths.key_file(),
        )?;
        let presence_key = Arc::new(key.derive(PRESENCE_PURPOSE));
        let backend = FileBackend::new(paths, key, key_source.clone());
        Ok(Self {
            backend: Arc::new(backend),
            key_source,
            presence_key,
        })
    }

    /// A vault over another backend sealed with `key`.
    pub fn with_backend(backend: Arc<dyn Backend>, key: &Key, key_source: KeySource) -> Self {
        Self {
            backend,
            key_source,
            presence_key: Arc::new(key.derive(PRESENCE_PURPOSE)),
        }
    }

    /// The key a running tether proves it holds this vault with.
    pub fn presence_key(&self) -> &Key {
        &self.presence_key
    }

    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    pub fn location(&self) -> &Path {
        self.backend.location()
    }

    /// Where the store lives, for messages: the vault file, or the database's address.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// The store's current version; compare with an earlier one to see a change.
    pub fn stamp(&self) -> Option<Stamp> {
        self.backend.stamp()
    }

    /// This process's name among the store's replicas, where several share it.
    pub fn replica(&self) -> Option<&str> {
        self.backend.replica()
    }

    /// The file to watch for changes, when the store is a file.
    pub fn watched_file(&self) -> Option<&Path> {
        self.backend.watched_file()
    }

    /// The store's own lock on refreshing `name`, where the store has one.
    pub async fn shared_lock(&self, name: &str) -> Result<Option<SharedLock>, String> {
        self.backend.shared_lock(name).await
    }

    pub fn load(&self) -> Result<Store, VaultError> {
        self.backend.load()
    }

    /// Applies `change` to the newest store and commits it, atomically and under the
    /// cross-process lock. When `change` fails nothing is written and its error returns.
    /// Blocking: from async code use [`Vault::transact_async`].
    pub fn transact<T, E>(&self, change: impl FnOnce(&mut Store) -> Result<T, E>) -> Result<T, E>
    where
        E: From<VaultError>,
    {
        let mut change = Some(change);
        let mut outcome = None;
        self.backend.update(&mut |store| {
            let Some(change) = change.take() else {
                return false;
            };
            let result = change(store);
            let commit = result.is_ok();
            outcome = Some(result);
            commit
        })?;
        outcome.unwrap_or_else(|| Err(VaultError::Task("the change did not run".into()).into()))
    }

    /// [`Vault::transact`] on the blocking pool, so the lock wait and the fsync never
    /// stall a runtime worker.
    pub async fn transact_async<T, E>(
        &self,
        change: impl FnOnce(&mut Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<VaultError> + Send + 'static,
    {
        let vault = self.clone();
        tokio::task::spawn_blocking(move || vault.transact(change))
            .await
            .unwrap_or_else(|e| Err(VaultError::Task(e.to_string()).into()))
    }

    pub async fn load_async(&self) -> Result<Store, VaultError> {
        let vault = self.clone();
        tokio::task::spawn_blocking(move || vault.load())
            .await
            .unwrap_or_else(|e| Err(VaultError::Task(e.to_string())))
    }
}
