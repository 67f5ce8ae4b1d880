//! The TokenManager (docs/architecture.md, "The refresh path"): one per connection, the only holder of its token.
//!
//! The hot path — a valid token — reads an in-memory snapshot: no file, no lock. A refresh
//! is single-flight at two levels without ever holding the vault lock across the network:
//! the connection's async mutex in this process, then its own cross-process refresh lock
//! (an advisory lock on `locks/<name>.lock`). Under both, the vault is re-read (another
//! process may have refreshed already: adopt its token), a journal entry is written, the
//! token request goes out, and the result is stored — generation + 1, journal cleared —
//! before anything uses the new token. Refresh tokens are never dropped: a failure keeps
//! the old one; an answer without one keeps it too.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

mod behind;
mod classify;
mod current;
mod error;
mod history;
mod lock;
mod plan;
mod retry;
#[cfg(test)]
mod tests;

pub use behind::EXPIRED_WAIT;
pub use current::{Credential, CredentialHeader, Current};
pub use error::AuthError;
pub use lock::{LockError, RefreshLock, lock_dir, lock_file, lock_refresh};

use history::evidence_for;
pub use history::{eviction_event, mark_needs_reauth, record, record_key_rejected, record_refused};
use plan::{Plan, plan_for};

use super::token::{TokenError, TokenResponse};
use super::watermark;
use crate::secret::Secret;
use crate::vault::{
    Connection, ConnectionState, DiagnosisCode, Event, EventKind, RefreshJournal,
    RegistrationStatus, Store, TokenSet, Vault,
};
use classify::{RefreshFailure, classify_refresh};

/// Spent refresh-token hashes kept per connection.
const USED_HASHES_CAP: usize = 32;
/// Waiters that arrive within this long after a failed refresh share its answer instead
/// of each trying again.
const FAILURE_SHARE_WINDOW: Duration = Duration::from_secs(1);

/// Why a refresh was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A request found the token expired (or about to).
    Expired { seen: Option<u64> },
    /// The upstream answered 401 `invalid_token` to the token of generation `seen`.
    Rejected { seen: u64 },
    /// The scheduler: the token reached ~75% of its lifetime.
    Scheduled,
    /// The user asked (`tether refresh`, `r`): tries even a connection marked broken.
    Manual,
}

pub struct TokenManager {
    name: String,
    vault: Vault,
    http: crate::http::TokenClient,
    lock_file: PathBuf,
    current: ArcSwapOption<Current>,
    flight: tokio::sync::Mutex<Option<RecentFailure>>,
    /// A background refresh started by a call (see `behind`) is running.
    behind: AtomicBool,
    /// Consecutive transient failures, for backoff.
    failures: AtomicU32,
    /// The last transient failure: when, the server's `Retry-After`, and the generation
    /// it failed to refresh.
    last_transient: std::sync::Mutex<Option<Transient>>,
    changed: Arc<tokio::sync::Notify>,
}

#[derive(Clone, Copy)]
struct Transient {
    at: DateTime<Utc>,
    retry_after: Option<Duration>,
    generation: u64,
}

/// Where the scheduler's backoff stands for the token in use (see
/// [`TokenManager::backoff`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Consecutive transient failures refreshing this token.
    pub failures: u32,
    /// When the last one happened.
    pub at: DateTime<Utc>,
    /// The server's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
}

#[derive(Clone)]
struct RecentFailure {
    generation: Option<u64>,
    at: Instant,
    error: AuthError,
}

impl TokenManager {
    pub fn new(
        connection: &Connection,
        vault: Vault,
        http: crate::http::TokenClient,
        changed: Arc<tokio::sync::Notify>,
    ) -> Self {
        let lock_file = lock_file(&vault, connection.name.as_str());
        Self {
            name: connection.name.to_string(),
            vault,
            http,
            lock_file,
            current: ArcSwapOption::from(Current::of(connection).map(Arc::new)),
            flight: tokio::sync::Mutex::new(None),
            behind: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            last_transient: std::sync::Mutex::new(None),
            changed,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The token in memory, valid or not.
    pub fn current(&self) -> Option<Arc<Current>> {
        self.current.load_full()
    }

    /// Takes a newer token another process stored (seen on a vault reload).
    pub fn observe(&self, connection: &Connection) {
        let Some(new) = Current::of(connection) else {
            self.current.store(None);
            return;
        };
        let newer = self
            .current
            .load()
            .as_ref()
            .is_none_or(|c| new.generation > c.generation || c.generation == 0);
        if newer {
            self.current.store(Some(Arc::new(new)));
        }
    }

    /// The credential for an upstream request: the hot path when the token is valid. A
    /// valid token due for refresh is returned at once, the refresh running behind it.
    pub async fn credential(self: &Arc<Self>) -> Result<Arc<Current>, AuthError> {
        let now = Utc::now();
        let seen = match self.current.load_full() {
            Some(c) if c.expires_at.is_none() || c.is_fresh(now) => return Ok(c),
            Some(c) if c.is_valid(now) => {
                self.refresh_behind(c.generation);
                return Ok(c);
            }
            Some(c) => Some(c.generation),
            None => None,
        };
        // Boxed: the refresh's state is large and rarely needed, and every proxied call
        // awaits this.
        Box::pin(self.refresh_for_expired(seen)).await
    }

    /// Consecutive transient failures so far (0 when healthy), for backoff.
    pub fn failure_count(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The backoff for refreshing the token in use, while its refreshes keep failing
    /// transiently. `None` once the token has moved on — refreshed here, adopted from
    /// another process that refreshed meanwhile, or replaced by a sign-in — since those
    /// failures were about a token no longer in use: retrying on their schedule would
    /// refresh the newer token at once, a grant wasted per failure.
    pub fn backoff(&self) -> Option<Backoff> {
        let failures = self.failure_count();
        let last = self.last_transient.lock().ok().and_then(|g| *g)?;
        let current = self.current()?;
        (failures > 0 && last.generation == current.generation).then_some(Backoff {
            failures,
            at: last.at,
            retry_after: last.retry_after,
        })
    }

    /// Refreshes through the single-flight path (see the module docs).
    pub async fn refresh(&self, trigger: Trigger) -> Result<Arc<Current>, AuthError> {
        let seen = match trigger {
            Trigger::Expired { seen } => seen,
            Trigger::Rejected { seen } => Some(seen),
            Trigger::Scheduled | Trigger::Manual => self.current().map(|c| c.generation),
        };
        let mut recent = self.flight.lock().await;
        if let Some(done) = self.done_while_waiting(seen, trigger) {
            return Ok(done);
        }
        // Callers arriving together share one failure; the scheduler (which paces its
        // own retries with backoff) and a user asking explicitly always get a new try.
        if let Some(f) = recent.as_ref()
            && f.generation == seen
            && f.at.elapsed() < FAILURE_SHARE_WINDOW
            && !matches!(trigger, Trigger::Manual | Trigger::Scheduled)
        {
            return Err(f.error.clone());
        }
        let result = self.refresh_locked(trigger, seen).await;
        *recent = result.as_ref().err().map(|error| RecentFailure {
            generation: seen,
            at: Instant::now(),
            error: error.clone(),
        });
        self.changed.notify_one();
        result
    }

    /// A newer token than the one the caller saw, stored by another task meanwhile.
    fn done_while_waiting(&self, seen: Option<u64>, trigger: Trigger) -> Option<Arc<Current>> {
        let cur = self.current.load_full()?;
        let moved_on = seen.is_some_and(|s| cur.generation > s);
        match trigger {
            Trigger::Manual | Trigger::Scheduled => moved_on.then_some(cur),
            _ => (moved_on || cur.is_fresh(Utc::now()) && seen.is_none()).then_some(cur),
        }
    }

    async fn refresh_locked(
        &self,
        trigger: Trigger,
        seen: Option<u64>,
    ) -> Result<Arc<Current>, AuthError> {
        let _lock = self.cross_process_lock().await?;
        // Another process may have refreshed while we waited for its lock.
        let store = self.vault.load_async().await?;
        let connection = store
            .get(&self.name)
            .ok_or_else(|| AuthError::NotFound(self.name.clone()))?;
        if let Some(adopted) = self.adopt_if_newer(connection, seen) {
            return Ok(adopted);
        }
        if let Some(refusal) = refusal_without_asking(connection, trigger) {
            return Err(refusal);
        }
        // A token without a refresh token (Todoist) is fine until it expires: there is
        // nothing to refresh, and nothing is wrong.
        if let Some(token) = &connection.token
            && token.refresh_token.is_none()
            && let Some(current) = Current::of(connection).filter(|c| c.is_fresh(Utc::now()))
        {
            let current = Arc::new(current);
            self.current.store(Some(current.clone()));
            return Ok(current);
        }
        let mark = watermark::read(watermark::path(&self.lock_file)).await;
        let mut plan = match self.begin(mark).await? {
            Ok(plan) => plan,
            Err(refusal) => return Err(refusal),
        };
        let started = Instant::now();
        let result = retry::request(&self.http, &mut plan).await;
        let latency = started.elapsed();
        match result {
            Ok(response) => self.store_success(&plan, response, latency).await,
            Err(error) => Err(self.store_failure(&plan, &error, latency).await),
        }
    }

    /// Takes the vault's token when it is newer than the one the caller saw and still
    /// fresh: another process refreshed first.
    fn adopt_if_newer(&self, connection: &Connection, seen: Option<u64>) -> Option<Arc<Current>> {
        let token = connection.token.as_ref()?;
        if seen.is_some_and(|s| token.generation <= s) {
            return None;
        }
        let adopted = Arc::new(Current::of(connection)?);
        if !adopted.is_fresh(Utc::now()) {
            return None;
        }
        self.current.store(Some(adopted.clone()));
        // Earlier failures were about the token this one replaces.
        self.failures.store(0, Ordering::Relaxed);
        Some(adopted)
    }

    /// Writes the journal entry (or records why no request can be made).
    async fn begin(
        &self,
        mark: Option<watermark::Watermark>,
    ) -> Result<Result<Plan, AuthError>, AuthError> {
        let name = self.name.clone();
        let now = Utc::now();
        self.vault
            .transact_async(move |store: &mut Store| {
                let c = store
                    .get_mut(&name)
                    .ok_or_else(|| AuthError::NotFound(name.clone()))?;
                let plan = match plan_for(c, mark.as_ref()) {
                    Ok(plan) => plan,
                    Err((code, detail, evidence)) => {
                        mark_needs_reauth(c, code, &detail, evidence, now);
                        return Ok(Err(AuthError::NeedsReauth {
                            name: name.clone(),
                            diagnosis: code,
                            detail,
                        }));
                    }
                };
                // A journal left for this generation means an earlier attempt never
                // reported back: its request may have rotated the token already.
                let suspect = c
                    .journal
                    .as_ref()
                    .is_some_and(|j| j.generation == plan.generation);
                c.journal = Some(RefreshJournal {
                    generation: plan.generation,
                    client_id: plan.auth.client_id.clone(),
                    started_at: now,
                    pid: std::process::id(),
                    suspect,
                });
                Ok(Ok(Plan { suspect, ..plan }))
            })
            .await
    }

    async fn store_success(
        &self,
        plan: &Plan,
        response: TokenResponse,
        latency: Duration,
    ) -> Result<Arc<Current>, AuthError> {
        let name = self.name.clone();
        let generation = plan.generation;
        let old_hash = refresh_hash(&plan.refresh_token);
        let rotated_away = response
            .refresh_token
            .as_ref()
            .is_some_and(|new| new.expose() != plan.refresh_token.expose());
        let now = Utc::now();
        // Where several replicas share the store, the history says which one refreshed.
        let by = self
            .vault
            .replica()
            .map(|r| format!(" by {r}"))
            .unwrap_or_default();
        let stored = self
            .vault
            .transact_async(move |store: &mut Store| {
                let c = store
                    .get_mut(&name)
                    .ok_or_else(|| AuthError::NotFound(name.clone()))?;
                let Some(old) = c.token.clone() else {
                    return Err(AuthError::NeedsLogin(name.clone()));
                };
                let token = rotated(old, response, old_hash, now);
                let mut event = Event::new(
                    now,
                    EventKind::Refreshed,
                    format!(
                        "refreshed: generation {generation} → {}{by}",
                        token.generation
                    ),
                );
                event.latency_ms = Some(latency.as_millis() as u64);
                c.token = Some(token);
                c.journal = None;
                c.state = ConnectionState::Healthy;
                c.record(event);
                Current::of(c).ok_or_else(|| AuthError::NeedsLogin(name.clone()))
            })
            .await;
        match stored {
            Ok(current) => {
                self.failures.store(0, Ordering::Relaxed);
                watermark::raise(
                    watermark::path(&self.lock_file),
                    current.generation,
                    rotated_away.then_some(old_hash),
                )
                .await;
                let current = Arc::new(current);
                self.current.store(Some(current.clone()));
                Ok(current)
            }
            // The server has rotated but the vault refused the new token: the journal
            // stays, so the next attempt is diagnosed as a lost response if it fails.
            Err(e) => Err(e),
        }
    }

    async fn store_failure(&self, plan: &Plan, error: &TokenError, latency: Duration) -> AuthError {
        let name = self.name.clone();
        let now = Utc::now();
        let transient = error.is_transient();
        let diagnosis = if transient {
            DiagnosisCode::UpstreamUnreachable
        } else {
            classify_refresh(&RefreshFailure {
                error,
                suspect_lost: plan.suspect,
                sent_spent_token: plan.spent,
            })
        };
        let evidence = evidence_for(error, &plan.auth.client_id, plan.generation);
        let detail = error.to_string();
        let keep_journal = transient && error.maybe_processed();
        let client_id = plan.auth.client_id.clone();
        // The server ended the grant itself (not a token tether spent twice, nor one lost
        // in transit): how long it lasted tells the next forecast.
        let grant_ended =
            error.is_invalid_grant() && diagnosis == DiagnosisCode::InvalidGrantExpiredOrRevoked;
        let failures = self.failures.fetch_add(transient as u32, Ordering::Relaxed) + 1;
        if transient && let Ok(mut last) = self.last_transient.lock() {
            *last = Some(Transient {
                at: now,
                retry_after: error.retry_after(),
                generation: plan.generation,
            });
        }
        let result = self
            .vault
            .transact_async({
                let detail = detail.clone();
                move |store: &mut Store| {
                    let c = store
                        .get_mut(&name)
                        .ok_or_else(|| AuthError::NotFound(name.clone()))?;
                    if !keep_journal {
                        c.journal = None;
                    }
                    let mut event = Event::new(now, EventKind::RefreshFailed, detail.clone());
                    event.latency_ms = Some(latency.as_millis() as u64);
                    event.diagnosis = Some(diagnosis);
                    event.evidence = evidence.clone();
                    c.record(event);
                    if transient {
                        c.state = ConnectionState::Degraded {
                            why: format!("refresh failed ({failures} in a row): {detail}"),
                        };
                    } else {
                        if diagnosis == DiagnosisCode::ClientRejected {
                            for r in c.clients.iter_mut().filter(|r| r.client_id == client_id) {
                                r.status = RegistrationStatus::Rejected;
                            }
                        }
                        if grant_ended {
                            c.note_grant_ended(now);
                        }
                        mark_needs_reauth(c, diagnosis, &detail, evidence, now);
                    }
                    Ok::<_, AuthError>(())
                }
            })
            .await;
        if let Err(e) = result {
            return e;
        }
        if transient {
            AuthError::Unavailable {
                name: self.name.clone(),
                detail,
            }
        } else {
            AuthError::NeedsReauth {
                name: self.name.clone(),
                diagnosis,
                detail,
            }
        }
    }

    async fn cross_process_lock(&self) -> Result<RefreshLock, AuthError> {
        Ok(lock_refresh(&self.vault, &self.name).await?)
    }
}

/// States in which asking the server is pointless unless the user insists.
fn refusal_without_asking(connection: &Connection, trigger: Trigger) -> Option<AuthError> {
    let name = connection.name.to_string();
    match (&connection.state, trigger) {
        (_, Trigger::Manual) => None,
        (ConnectionState::NeedsReauth { diagnosis, detail }, _) => Some(AuthError::NeedsReauth {
            name,
            diagnosis: *diagnosis,
            detail: detail.clone(),
        }),
        (ConnectionState::NeedsLogin, _) => Some(AuthError::NeedsLogin(name)),
        _ => None,
    }
}

/// The next token set: generation + 1; a refresh token that did not come back is kept;
/// the spent one is remembered by hash.
fn rotated(
    old: TokenSet,
    response: TokenResponse,
    old_hash: [u8; 8],
    now: DateTime<Utc>,
) -> TokenSet {
    let rotated = response
        .refresh_token
        .as_ref()
        .is_some_and(|new| old.refresh_token.as_ref() != Some(new));
    let mut used = old.used_refresh_hashes;
    if rotated {
        used.push(old_hash);
        if used.len() > USED_HASHES_CAP {
            used.remove(0);
        }
    }
    // A refresh token that came back brings its own lifetime; one that did not keeps
    // the old one's.
    let refresh_expires_at = match &response.refresh_token {
        Some(_) => response.refresh_expires_at(now),
        None => old.refresh_expires_at,
    };
    TokenSet {
        client_id: old.client_id,
        issuer: old.issuer,
        expires_at: response.expires_at(now),
        access_token: response.access_token,
        refresh_token: response.refresh_token.or(old.refresh_token),
        scope: response.scope.or(old.scope),
        obtained_at: now,
        generation: old.generation + 1,
        used_refresh_hashes: used,
        granted_at: old.granted_at,
        refresh_expires_at,
    }
}

pub fn refresh_hash(token: &Secret) -> [u8; 8] {
    let digest = Sha256::digest(token.expose().as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}
