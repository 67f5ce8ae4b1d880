//! The PostgreSQL store: the vault in a database that several `tether serve` replicas share
//! (docs/deployment.md). The file vault stays the default; this backend is chosen by
//! `--store postgres://…`, `TETHER_STORE` or `[store] url`.
//!
//! - A row per connection. Everything secret lives in its `sealed` column: the connection
//!   encoded as in the vault file, sealed with AES-256-GCM under the vault key and bound to
//!   the row's name and the column, so a value copied to another row fails its check. The
//!   other columns (name, upstream, auth kind, state, generation, expiry) are plain, for
//!   operators.
//! - A transaction locks the vault's one row (`SELECT … FOR UPDATE`), reads, applies the
//!   change, writes the connections that changed, raises the revision and announces it with
//!   `NOTIFY tether_vault` — the same rules as the file (never across a network call).
//! - Every process follows the revisions with `LISTEN`; a load while the revision is the one
//!   last read costs no query, so the proxy's view follows other replicas within a moment
//!   and never waits on the database while its tokens are valid.
//! - The refresh lock across machines is a session advisory lock per connection, held in a
//!   session of its own: a replica that dies releases it with its session.

mod db;
mod rows;
mod schema;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

pub use self::db::redact;
use self::db::{Db, shown, tls, why};
use self::rows::{Change, binding};
use super::codec;
use super::crypto::{self, Key, OpenError};
use super::key::{KeyError, KeySource};
use super::model::{SCHEMA_VERSION, Store};
use super::{Backend, SharedLock, Stamp, VaultError};

/// The channel revisions are announced on.
const CHANNEL: &str = "tether_vault";

/// The wait before the refresh lock's session is connected again, when it ended.
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// Whether `url` names a PostgreSQL store (else it must be `file`).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

pub struct PostgresBackend {
    /// The store's address without its password, for messages.
    shown: String,
    /// The local vault file's path: what tether keeps beside it (refresh locks, the
    /// keyring entry's name) stays on this machine.
    local: PathBuf,
    key: Key,
    key_source: KeySource,
    db: Arc<Db>,
    /// The newest revision this process knows of: its own commits and the change feed's.
    revision: Arc<AtomicI64>,
    /// The store as last read or written, with its revision.
    warm: Mutex<Option<(i64, Store)>>,
    /// One transaction at a time on the shared session.
    writing: Mutex<()>,
    /// The session that holds this process's refresh locks.
    locks: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// Who commits: host and process id, recorded with each change.
    replica: String,
}

impl PostgresBackend {
    /// Connects to the store at `url`, brings its schema up to date, and seals it with the
    /// key `resolve` gives (told whether the store already holds a vault, so a key is only
    /// ever created for a new one). A store sealed with another key is refused.
    pub fn open(
        url: &str,
        ca_file: Option<&Path>,
        local: PathBuf,
        resolve: impl FnOnce(bool) -> Result<(Key, KeySource), KeyError>,
    ) -> Result<Self, VaultError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| VaultError::Store {
            store: redact(url),
            action: "use",
            reason: format!(
                "the address is not a PostgreSQL connection URL ({e}); use postgres://USER@HOST:PORT/DATABASE"
            ),
        })?;
        if config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            config.password(password);
        }
        if config.get_user().is_none()
            && let Ok(user) = whoami::username()
        {
            config.user(user);
        }
        let shown = shown(&config);
        let replica = replica();
        // Operators see which replica each session is (pg_stat_activity).
        config.application_name(format!("tether {replica}"));
        let fail = |action: &'static str| {
            let store = shown.clone();
            move |reason: String| VaultError::Store {
                store,
                action,
                reason,
            }
        };
        let tls = tls(&config, ca_file).map_err(fail("use"))?;
        let db = Db::start(config, tls).map_err(|e| fail("start the session of")(e.to_string()))?;
        let session = db.session().map_err(|e| fail("connect to")(why(&e)))?;
        let migrated = {
            let session = session.clone();
            db.block(async move { schema::migrate(&session).await })
        };
        match migrated {
            Ok(()) => {}
            Err(schema::SchemaError::Future { found }) => {
                return Err(VaultError::FutureVersion {
                    path: PathBuf::from(&shown),
                    what: "database schema",
                    found: found as u32,
                    supported: schema::VERSION as u32,
                });
            }
            Err(schema::SchemaError::Db(e)) => return Err(fail("set up the tables of")(why(&e))),
        }
        let found = {
            let session = session.clone();
            db.block(async move {
                session
                    .query_opt("SELECT key_id, revision FROM tether_vault", &[])
                    .await
            })
        }
        .map_err(|e| fail("read")(why(&e)))?;
        let (key, key_source) = resolve(found.is_some()).map_err(|e| match e {
            // The store is the vault here: say so, and where its key comes from.
            KeyError::MissingForExistingVault { looked, .. } => VaultError::Store {
                store: shown.clone(),
                action: "open",
                reason: format!(
                    "it holds a vault, but this machine has no key for it in {looked}: copy the vault key from a replica that has one (its key file, or TETHER_VAULT_KEY), as docs/deployment.md says"
                ),
            },
            other => other.into(),
        })?;
        let ours = crypto::hex(&key.id());
        let revision = match found {
            Some(row) => {
                let sealed_with: String = row.get(0);
                if sealed_with != ours {
                    return Err(VaultError::WrongKey {
                        path: PathBuf::from(&shown),
                        sealed_with,
                        hint: "the replica that created the store",
                        ours: key_source.describe(),
                        our_id: ours,
                    });
                }
                row.get(1)
            }
            None => {
                let (session, ours, replica) = (session.clone(), ours.clone(), replica.clone());
                db.block(async move {
                    session
                        .execute(
                            "INSERT INTO tether_vault (revision, key_id, store_version, updated_by)
                             VALUES (0, $1, $2, $3) ON CONFLICT DO NOTHING",
                            &[&ours, &(SCHEMA_VERSION as i32), &replica],
                        )
                        .await
                })
                .map_err(|e| fail("set up")(why(&e)))?;
                0
            }
        };
        let db = Arc::new(db);
        let revision = Arc::new(AtomicI64::new(revision));
        follow(&db, &revision);
        Ok(Self {
            shown,
            local,
            key,
            key_source,
            db,
            revision,
            warm: Mutex::new(None),
            writing: Mutex::new(()),
            locks: tokio::sync::Mutex::new(None),
            replica,
        })
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    fn error(&self, action: &'static str, e: &tokio_postgres::Error) -> VaultError {
        VaultError::Store {
            store: self.shown.clone(),
            action,
            reason: why(e),
        }
    }

    /// Reads every connection, each opened against its own row's binding.
    fn decode(
        &self,
        rows: &[tokio_postgres::Row],
        store_version: i32,
    ) -> Result<Store, VaultError> {
        if store_version as u32 > SCHEMA_VERSION {
            return Err(VaultError::FutureVersion {
                path: PathBuf::from(&self.shown),
                what: "schema version",
                found: store_version as u32,
                supported: SCHEMA_VERSION,
            });
        }
        let mut connections = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get("name");
            let sealed: &[u8] = row.get("sealed");
            let row_error = |reason: String| VaultError::Row {
                store: self.shown.clone(),
                name: name.clone(),
                reason,
            };
            let plain =
                crypto::open_bound(&self.key, sealed, &binding(&name)).map_err(|e| match e {
                    OpenError::WrongKey { sealed_with, hint } => VaultError::WrongKey {
                        path: PathBuf::from(format!("{} (connection '{name}')", self.shown)),
                        sealed_with: crypto::hex(&sealed_with),
                        hint: hint.describe(),
                        ours: self.key_source.describe(),
                        our_id: crypto::hex(&self.key.id()),
                    },
                    OpenError::Tampered => row_error(
                        "failed its integrity check (changed, or copied from another row)".into(),
                    ),
                    other => row_error(format!("is not a sealed connection ({other:?})")),
                })?;
            let connection = codec::decode_connection(&plain).map_err(row_error)?;
            if connection.name.as_str() != name {
                return Err(row_error(format!(
                    "holds the connection '{}'",
                    crate::printable::printable(connection.name.as_str(), 80)
                )));
            }
            connections.push(connection);
        }
        Ok(Store::from_connections(connections))
    }

    /// The newest committed store and its revision, read in one snapshot.
    fn read(&self) -> Result<(i64, Store), VaultError> {
        let _one = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let session = self
            .db
            .session()
            .map_err(|e| self.error("connect to", &e))?;
        let read = self.db.block(async move {
            session
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            let read = async {
                let head = session
                    .query_one("SELECT revision, store_version FROM tether_vault", &[])
                    .await?;
                let rows = session
                    .query(
                        "SELECT name, sealed FROM tether_connections ORDER BY position",
                        &[],
                    )
                    .await?;
                Ok::<_, tokio_postgres::Error>((head, rows))
            }
            .await;
            session.batch_execute("COMMIT").await?;
            read
        });
        let (head, rows) = read.map_err(|e| self.error("read", &e))?;
        let revision: i64 = head.get(0);
        Ok((revision, self.decode(&rows, head.get(1))?))
    }

    /// The rows a change writes: each connection that differs from before (or moved), and
    /// the names that are gone.
    fn changes(
        &self,
        before: &Store,
        after: &Store,
        revision: i64,
    ) -> Result<Vec<Change>, VaultError> {
        let mut changes = Vec::new();
        for (position, c) in after.connections().iter().enumerate() {
            let unchanged = before.position(c.name.as_str()) == Some(position)
                && before.get(c.name.as_str()) == Some(c);
            if unchanged {
                continue;
            }
            let plain = codec::encode_connection(c).map_err(|reason| VaultError::Corrupt {
                path: PathBuf::from(&self.shown),
                reason,
            })?;
            let name = c.name.as_str().to_string();
            let sealed =
                crypto::seal_bound(&self.key, self.key_source.hint(), &plain, &binding(&name));
            let token = c.token.as_ref();
            changes.push(Change::Put {
                position: position as i32,
                upstream: c.upstream.to_string(),
                auth: c.auth.kind().to_string(),
                state: c.state.word().to_string(),
                generation: token.map(|t| t.generation as i64),
                expires_at: token.and_then(|t| t.expires_at),
                sealed,
                revision,
                name,
            });
        }
        for c in before.connections() {
            if after.get(c.name.as_str()).is_none() {
                changes.push(Change::Delete(c.name.as_str().to_string()));
            }
        }
        Ok(changes)
    }

    /// The session holding this process's refresh locks, connected again if it died.
    async fn lock_session(&self) -> Result<Arc<Client>, String> {
        let mut slot = self.locks.lock().await;
        if let Some(client) = slot.as_ref()
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        let client = Arc::new(self.db.own_session().await.map_err(|e| why(&e))?);
        *slot = Some(client.clone());
        Ok(client)
    }
}

impl Backend for PostgresBackend {
    fn load(&self) -> Result<Store, VaultError> {
        let known = self.revision.load(Ordering::Acquire);
        if let Ok(warm) = self.warm.lock()
            && let Some((revision, store)) = warm.as_ref()
            && *revision >= known
        {
            return Ok(store.clone());
        }
        let (revision, store) = self.read()?;
        self.revision.fetch_max(revision, Ordering::AcqRel);
        if let Ok(mut warm) = self.warm.lock()
            && warm.as_ref().is_none_or(|(r, _)| *r <= revision)
        {
            *warm = Some((revision, store.clone()));
        }
        Ok(store)
    }

    fn update(&self, apply: &mut dyn FnMut(&mut Store) -> bool) -> Result<(), VaultError> {
        let _one = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let session = self
            .db
            .session()
            .map_err(|e| self.error("connect to", &e))?;
        let begun = {
            let session = session.clone();
            self.db.block(async move {
                session.batch_execute("BEGIN").await?;
                let head = session
                    .query_one(
                        "SELECT revision, store_version FROM tether_vault FOR UPDATE",
                        &[],
                    )
                    .await?;
                Ok::<_, tokio_postgres::Error>((head.get::<_, i64>(0), head.get::<_, i32>(1)))
            })
        };
        let rollback = || {
            let session = session.clone();
            self.db.block(async move {
                let _ = session.batch_execute("ROLLBACK").await;
            });
        };
        let (revision, store_version) = match begun {
            Ok(head) => head,
            Err(e) => {
                rollback();
                return Err(self.error("lock", &e));
            }
        };
        let warm = self
            .warm
            .lock()
            .ok()
            .and_then(|mut w| w.take())
            .filter(|(r, _)| *r == revision);
        let before = match warm {
            Some((_, store)) => store,
            None => {
                let rows = {
                    let session = session.clone();
                    self.db.block(async move {
                        session
                            .query(
                                "SELECT name, sealed FROM tether_connections ORDER BY position",
                                &[],
                            )
                            .await
                    })
                };
                let decoded = rows
                    .map_err(|e| self.error("read", &e))
                    .and_then(|rows| self.decode(&rows, store_version));
                match decoded {
                    Ok(store) => store,
                    Err(e) => {
                        rollback();
                        return Err(e);
                    }
                }
            }
        };
        let mut store = before.clone();
        if !apply(&mut store) {
            rollback();
            if let Ok(mut warm) = self.warm.lock() {
                *warm = Some((revision, before));
            }
            return Ok(());
        }
        store.version = SCHEMA_VERSION;
        let next = revision + 1;
        let changes = match self.changes(&before, &store, next) {
            Ok(changes) => changes,
            Err(e) => {
                rollback();
                return Err(e);
            }
        };
        let committed = {
            let (session, replica) = (session.clone(), self.replica.clone());
            self.db
                .block(async move { rows::commit(&session, &changes, next, &replica).await })
        };
        if let Err(e) = committed {
            rollback();
            return Err(self.error("write", &e));
        }
        self.revision.fetch_max(next, Ordering::AcqRel);
        if let Ok(mut warm) = self.warm.lock() {
            *warm = Some((next, store));
        }
        Ok(())
    }

    fn location(&self) -> &Path {
        &self.local
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn stamp(&self) -> Option<Stamp> {
        Some(Stamp::revision(self.revision.load(Ordering::Acquire)))
    }

    fn watched_file(&self) -> Option<&Path> {
        None
    }

    fn replica(&self) -> Option<&str> {
        Some(&self.replica)
    }

    fn shared_lock<'a>(
        &'a self,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<SharedLock>, String>> + Send + 'a>> {
        let key = lock_key(name);
        Box::pin(async move {
            let mut tries = 0;
            loop {
                tries += 1;
                let session = self.lock_session().await?;
                match session
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                    .await
                {
                    Ok(row) if row.get::<_, bool>(0) => {
                        return Ok(Some(SharedLock::new(AdvisoryLock {
                            session,
                            key,
                            db: self.db.clone(),
                        })));
                    }
                    // Another replica refreshes: wait in a session of our own, which the
                    // database hands the lock to the moment it is released.
                    Ok(_) => return self.wait_for_lock(key).await.map(Some),
                    Err(e) if session.is_closed() && tries < 3 => {
                        tracing::debug!(
                            "the refresh lock's session ended ({}); connecting again",
                            why(&e)
                        );
                        tokio::time::sleep(LOCK_RETRY).await;
                    }
                    Err(e) => return Err(why(&e)),
                }
            }
        })
    }
}

impl PostgresBackend {
    /// Blocks on `key` in a new session, held (and closed) with the lock.
    async fn wait_for_lock(&self, key: i64) -> Result<SharedLock, String> {
        let session = Arc::new(self.db.own_session().await.map_err(|e| why(&e))?);
        session
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| why(&e))?;
        Ok(SharedLock::new(AdvisoryLock {
            session,
            key,
            db: self.db.clone(),
        }))
    }
}

/// A held refresh lock; released when dropped (or when its session ends with the process).
struct AdvisoryLock {
    session: Arc<Client>,
    key: i64,
    db: Arc<Db>,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let (session, key) = (self.session.clone(), self.key);
        self.db.spawn(async move {
            if let Err(e) = session
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .await
            {
                tracing::debug!("could not release a refresh lock ({e}); its session will");
            }
        });
    }
}

/// Follows the change feed into `revision` for as long as the store lives.
fn follow(db: &Arc<Db>, revision: &Arc<AtomicI64>) {
    let (feed, mut revisions) = tokio::sync::mpsc::unbounded_channel();
    db.listen(CHANNEL, feed);
    let revision = Arc::downgrade(revision);
    db.spawn(async move {
        while let Some(seen) = revisions.recv().await {
            let Some(revision) = revision.upgrade() else {
                return;
            };
            revision.fetch_max(seen, Ordering::AcqRel);
        }
    });
}

/// The advisory lock id of connection `name`'s refresh.
fn lock_key(name: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"tether refresh lock v1\0")
        .chain_update(name.as_bytes())
        .finalize();
    i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// This process, as events and rows name it: host and process id.
fn replica() -> String {
    let host = whoami::hostname().unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}
