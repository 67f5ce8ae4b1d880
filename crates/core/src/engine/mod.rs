//! The engine owns connections at run time: one TokenManager per connection, the refresh
//! scheduler, the watcher that notices other processes' changes to the shared vault, and
//! the state and events front ends render. It knows no front end.

pub mod api;
mod away;
mod execute;
mod scheduler;
mod signin;
pub mod timing;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use api::*;
pub use signin::SignInStart;

use crate::calls::{CallsConfig, Collector, Recorder};
use crate::oauth::authorize::Browser;
use crate::oauth::refresh::{AuthError, Current, TokenManager, Trigger};
use crate::vault::{Stamp, StepUp, Store, Vault, VaultError};

/// How often the vault file is checked for changes made by other processes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How often the clients seen by this process's proxy are written to the vault, so a
/// terminal UI in another process shows them too.
const ACTIVITY_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Refresh tokens ahead of expiry in the background (off for one-shot commands).
    pub schedule: bool,
    /// How logins started from a front end reach the browser.
    pub browser: Browser,
    pub proxy: ProxyStatus,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            schedule: true,
            browser: Browser::System,
            proxy: ProxyStatus::Off {
                reason: "not started".to_string(),
            },
        }
    }
}

/// A running engine. Cheap to clone; [`Engine::shutdown`] stops its tasks.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    vault: Vault,
    http: reqwest::Client,
    options: EngineOptions,
    managers: RwLock<BTreeMap<String, Arc<TokenManager>>>,
    store: RwLock<Arc<Store>>,
    next_refresh: Mutex<BTreeMap<String, DateTime<Utc>>>,
    logins: Mutex<BTreeMap<String, LoginProgress>>,
    login_tasks: Mutex<BTreeMap<String, tokio::task::AbortHandle>>,
    /// Where a login in progress takes a pasted redirect address, by connection.
    login_pastes: Mutex<BTreeMap<String, mpsc::Sender<String>>>,
    traffic: Mutex<BTreeMap<String, BTreeMap<String, ClientTraffic>>>,
    /// Traffic changed since the last publish (published at most once per second).
    traffic_dirty: std::sync::atomic::AtomicBool,
    /// Refused endpoint secrets by connection named ("" for an unknown secret path).
    refused: Mutex<BTreeMap<String, u64>>,
    /// When each (connection, client) was last written to the vault as seen.
    activity_saved: Mutex<BTreeMap<(String, String), DateTime<Utc>>>,
    proxy: Mutex<ProxyStatus>,
    /// The calls through this process's proxy (see [`Engine::start_calls`]).
    calls: std::sync::OnceLock<(Arc<Collector>, Arc<Recorder>)>,
    /// Clients signing in to this process's proxy (see `local_auth`).
    consents: crate::local_auth::consent::Consents,
    /// Connections whose refresh waits for a store this process cannot reach, and why
    /// (shown as degraded; see [`Engine::show_degraded`]).
    waiting_for_store: Mutex<BTreeMap<String, String>>,
    state: watch::Sender<Arc<EngineState>>,
    events: broadcast::Sender<EngineEvent>,
    commands: mpsc::UnboundedSender<EngineCommand>,
    /// Poked after this process changed the vault, so the watcher reloads at once.
    changed: Arc<Notify>,
    /// The store as last loaded (see [`Stamp`]).
    loaded: Mutex<Option<Stamp>>,
    stop: CancellationToken,
}

impl Engine {
    /// Loads the vault, creates a token manager per connection and starts the watcher,
    /// the command loop and (if asked) the scheduler.
    pub async fn start(
        vault: Vault,
        http: reqwest::Client,
        options: EngineOptions,
    ) -> Result<Self, VaultError> {
        let stamp = vault.stamp();
        let store = Arc::new(vault.load_async().await?);
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(256);
        let initial = EngineState {
            store: store.clone(),
            next_refresh: BTreeMap::new(),
            proxy: options.proxy.clone(),
            key_source: vault.key_source().clone(),
            traffic: BTreeMap::new(),
            logins: BTreeMap::new(),
            calls: Arc::default(),
            consents: Vec::new(),
        };
        let (state, _) = watch::channel(Arc::new(initial));
        let engine = Self {
            inner: Arc::new(Inner {
                proxy: Mutex::new(options.proxy.clone()),
                vault,
                http,
                options,
                managers: RwLock::new(BTreeMap::new()),
                store: RwLock::new(store.clone()),
                next_refresh: Mutex::new(BTreeMap::new()),
                logins: Mutex::new(BTreeMap::new()),
                login_tasks: Mutex::new(BTreeMap::new()),
                login_pastes: Mutex::new(BTreeMap::new()),
                traffic: Mutex::new(BTreeMap::new()),
                traffic_dirty: std::sync::atomic::AtomicBool::new(false),
                refused: Mutex::new(BTreeMap::new()),
                activity_saved: Mutex::new(BTreeMap::new()),
                calls: std::sync::OnceLock::new(),
                consents: Default::default(),
                waiting_for_store: Mutex::default(),
                state,
                events,
                commands,
                changed: Arc::new(Notify::new()),
                loaded: Mutex::new(stamp),
                stop: CancellationToken::new(),
            }),
        };
        engine.sync_managers(&store);
        engine.publish();
        tokio::spawn(engine.clone().watch_vault());
        tokio::spawn(engine.clone().persist_client_activity());
        tokio::spawn(execute::run(engine.clone(), command_rx));
        if engine.inner.options.schedule {
            tokio::spawn(scheduler::run(engine.clone()));
        }
        Ok(engine)
    }

    pub fn handle(&self) -> EngineHandle {
        EngineHandle {
            state: self.inner.state.subscribe(),
            events: self.inner.events.clone(),
            commands: self.inner.commands.clone(),
        }
    }

    /// The vault as last seen: a cheap handle, for a hot path that needs no other state.
    pub fn store(&self) -> Arc<Store> {
        self.inner.state.borrow().store.clone()
    }

    pub fn vault(&self) -> &Vault {
        &self.inner.vault
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub fn shutdown(&self) {
        self.inner.stop.cancel();
        // The requests waiting in this process's proxy end with it.
        let _ = crate::local_auth::shared::withdraw(&crate::local_auth::shared::path_beside(
            self.inner.vault.location(),
        ));
        if let Some((collector, _)) = self.inner.calls.get() {
            collector.stop();
        }
        for task in self
            .inner
            .login_tasks
            .lock()
            .map(|t| t.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            task.abort();
        }
    }

    pub fn manager(&self, name: &str) -> Option<Arc<TokenManager>> {
        self.inner.managers.read().ok()?.get(name).cloned()
    }

    /// The credential for an upstream request to `name` (the proxy's hot path).
    pub async fn credential(&self, name: &str) -> Result<Arc<Current>, AuthError> {
        let manager = self
            .manager(name)
            .ok_or_else(|| AuthError::NotFound(name.to_string()))?;
        manager.credential().await
    }

    /// A fresh token after the upstream refused the one of generation `seen`: one refresh
    /// however many calls ask, and none if another already replaced that token.
    pub async fn refresh_rejected(&self, name: &str, seen: u64) -> Result<Arc<Current>, AuthError> {
        let manager = self
            .manager(name)
            .ok_or_else(|| AuthError::NotFound(name.to_string()))?;
        manager.refresh(Trigger::Rejected { seen }).await
    }

    /// Notes in the connection's history, in the background, that the upstream revoked a
    /// token well before its expiry (a per-user token cap evicted it).
    pub fn record_eviction(&self, name: &str, rejected: &Current, description: Option<&str>) {
        let event = crate::oauth::refresh::eviction_event(rejected, description);
        let (vault, name) = (self.inner.vault.clone(), name.to_string());
        tokio::spawn(async move { crate::oauth::refresh::record(&vault, &name, event).await });
    }

    /// The upstream refused the token of `generation` even after its refresh: the
    /// connection needs a sign-in, and `list`, `status` and the UI must say so.
    pub fn record_refused(&self, name: &str, generation: u64) {
        let (vault, name) = (self.inner.vault.clone(), name.to_string());
        tokio::spawn(async move {
            crate::oauth::refresh::record_refused(&vault, &name, generation).await;
        });
    }

    /// The upstream refused the connection's API key.
    pub fn record_key_rejected(&self, name: &str) {
        let (vault, name) = (self.inner.vault.clone(), name.to_string());
        tokio::spawn(
            async move { crate::oauth::refresh::record_key_rejected(&vault, &name).await },
        );
    }

    /// Counts a local client's refused endpoint secret (`connection`: an existing
    /// connection named in the path); the [`api::REFUSALS_TO_TELL`]th for one target is
    /// an event, once per run.
    pub fn record_refused_secret(&self, connection: Option<&str>) {
        let target = connection.unwrap_or_default();
        let count = match self.inner.refused.lock() {
            Ok(mut refused) => {
                let n = slot(&mut refused, target);
                *n += 1;
                *n
            }
            Err(_) => return,
        };
        if count == api::REFUSALS_TO_TELL {
            let _ = self.inner.events.send(EngineEvent::SecretRefused {
                connection: connection.map(str::to_string),
                count,
            });
        }
    }

    /// Records that a call needs more scope than the token has, so the next sign-in asks
    /// for it too.
    pub async fn want_scopes(
        &self,
        name: &str,
        needed: Vec<String>,
        description: Option<String>,
    ) -> Result<StepUp, VaultError> {
        crate::oauth::authorize::want_scopes(&self.inner.vault, name, needed, description).await
    }

    pub fn set_proxy(&self, status: ProxyStatus) {
        if let Ok(mut p) = self.inner.proxy.lock() {
            *p = status;
        }
        self.publish();
    }

    pub fn notice(&self, level: NoticeLevel, text: impl Into<String>) {
        let _ = self.inner.events.send(EngineEvent::Notice {
            level,
            text: text.into(),
        });
    }

    /// Counts one proxied request for a connection's client, and how long the upstream
    /// took to answer; front ends see it within a second, `/metrics` at once.
    pub fn record_traffic(&self, connection: &str, client: &str, ok: bool, latency: Duration) {
        // Whole seconds, read without a calendar conversion on every call.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let minute = now / 60;
        if let Ok(mut traffic) = self.inner.traffic.lock() {
            let t = slot(slot(&mut traffic, connection), client);
            t.requests += 1;
            t.errors += u64::from(!ok);
            t.latency.observe(latency);
            let last = t.last_seen.map(|at| at.timestamp());
            if last != Some(now) {
                t.last_seen = chrono::DateTime::from_timestamp(now, 0);
            }
            let last_minute = last.map(|at| at / 60);
            match last_minute {
                Some(m) if m == minute && !t.per_minute.is_empty() => {}
                Some(m) => {
                    // Empty minutes in between count as zero.
                    for _ in 0..(minute - m - 1).clamp(0, 60) {
                        t.per_minute.push_back(MinuteCount::default());
                    }
                    t.per_minute.push_back(MinuteCount::default());
                }
                None => t.per_minute.push_back(MinuteCount::default()),
            }
            while t.per_minute.len() > 60 {
                t.per_minute.pop_front();
            }
            if let Some(current) = t.per_minute.back_mut() {
                current.requests += 1;
                current.errors += u64::from(!ok);
            }
        }
        self.inner
            .traffic_dirty
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Starts recording the calls through this process's proxy (`[calls]`), into the
    /// audit log in `log_dir` when given, and into [`EngineState::calls`] when a front end
    /// of this process shows them (`rings`); once per engine, before the proxy starts.
    pub fn start_calls(
        &self,
        config: &CallsConfig,
        log_dir: Option<std::path::PathBuf>,
        rings: bool,
    ) {
        if self.inner.calls.get().is_some() {
            return;
        }
        if let Some(started) = Collector::start(config, log_dir, rings) {
            let _ = self.inner.calls.set(started);
        }
    }

    /// Where the proxy hands each call's draft: `None` when calls are not recorded.
    /// Clients signing in to this process's proxy and their codes (see `local_auth`).
    pub fn consents(&self) -> &crate::local_auth::consent::Consents {
        &self.inner.consents
    }

    /// Tells front ends that the sign-in requests changed: this process's, and, while it
    /// serves the proxy, other processes' through `consents.json` (`local_auth::shared`).
    pub fn consents_changed(&self) {
        self.publish();
        let serving = match self.inner.proxy.lock().map(|p| p.clone()) {
            Ok(ProxyStatus::Serving { addr }) => addr,
            _ => return,
        };
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let path = crate::local_auth::shared::path_beside(engine.inner.vault.location());
            if let Err(e) =
                crate::local_auth::shared::publish(&path, serving, &engine.inner.consents)
            {
                tracing::warn!(
                    "cannot share the waiting sign-ins in {}: {e}",
                    path.display()
                );
            }
        });
    }

    pub fn call_recorder(&self) -> Option<Arc<Recorder>> {
        self.inner.calls.get().map(|(_, recorder)| recorder.clone())
    }

    /// The traffic counted so far, by connection, then client.
    pub fn traffic(&self) -> BTreeMap<String, BTreeMap<String, ClientTraffic>> {
        self.inner
            .traffic
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Reloads the vault now and republishes (after this process changed it).
    pub async fn reload(&self) -> Result<(), VaultError> {
        let stamp = self.vault_stamp();
        let store = Arc::new(self.inner.vault.load_async().await?);
        if let Ok(mut loaded) = self.inner.loaded.lock() {
            *loaded = stamp;
        }
        self.sync_managers(&store);
        if let Ok(mut s) = self.inner.store.write() {
            *s = store;
        }
        self.publish();
        Ok(())
    }

    /// Keeps one manager per connection, and hands each the newest token the vault
    /// holds (another process may have refreshed it).
    fn sync_managers(&self, store: &Store) {
        let Ok(mut managers) = self.inner.managers.write() else {
            return;
        };
        managers.retain(|name, _| store.get(name).is_some());
        for c in store.connections() {
            match managers.get(c.name.as_str()) {
                Some(m) => m.observe(c),
                None => {
                    let m = TokenManager::new(
                        c,
                        self.inner.vault.clone(),
                        crate::http::token_client(),
                        self.inner.changed.clone(),
                    );
                    managers.insert(c.name.to_string(), Arc::new(m));
                }
            }
        }
    }

    /// Sends the current snapshot to every front end.
    fn publish(&self) {
        let inner = &self.inner;
        let state = EngineState {
            store: self.shown_store(),
            next_refresh: inner
                .next_refresh
                .lock()
                .map(|n| n.clone())
                .unwrap_or_default(),
            proxy: inner
                .proxy
                .lock()
                .map(|p| p.clone())
                .unwrap_or(ProxyStatus::Off {
                    reason: "unknown".to_string(),
                }),
            key_source: inner.vault.key_source().clone(),
            traffic: inner.traffic.lock().map(|t| t.clone()).unwrap_or_default(),
            logins: inner.logins.lock().map(|l| l.clone()).unwrap_or_default(),
            calls: Arc::new(
                inner
                    .calls
                    .get()
                    .map(|(collector, _)| collector.rings())
                    .unwrap_or_default(),
            ),
            consents: inner.consents.waiting(),
        };
        inner.state.send_replace(Arc::new(state));
    }

    /// Writes when each local client was last seen into the vault every
    /// [`ACTIVITY_INTERVAL`], while clients come (never on a request's path).
    async fn persist_client_activity(self) {
        loop {
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = tokio::time::sleep(ACTIVITY_INTERVAL) => {}
            }
            self.save_client_activity().await;
        }
    }

    /// Writes when each local client this process's proxy served was last seen into the
    /// vault — one small transaction, skipped when no client was seen since the last one —
    /// so a terminal UI in another process shows them too. Front ends call it once more
    /// as they stop.
    pub async fn save_client_activity(&self) {
        let seen: Vec<((String, String), DateTime<Utc>)> = {
            let (Ok(traffic), Ok(written)) =
                (self.inner.traffic.lock(), self.inner.activity_saved.lock())
            else {
                return;
            };
            traffic
                .iter()
                .flat_map(|(name, clients)| {
                    clients.iter().filter_map(|(label, t)| {
                        Some(((name.clone(), label.clone()), t.last_seen?))
                    })
                })
                .filter(|(key, at)| written.get(key).is_none_or(|w| w < at))
                .collect()
        };
        if seen.is_empty() {
            return;
        }
        let update = seen.clone();
        let result = self
            .inner
            .vault
            .transact_async(move |store: &mut Store| {
                for ((name, label), at) in &update {
                    let access = store
                        .get_mut(name)
                        .and_then(|c| c.access.iter_mut().find(|a| &a.label == label));
                    if let Some(a) = access {
                        a.last_seen = a.last_seen.max(Some(*at));
                    }
                }
                Ok::<_, VaultError>(())
            })
            .await;
        match result {
            Ok(()) => {
                if let Ok(mut written) = self.inner.activity_saved.lock() {
                    written.extend(seen);
                }
                self.inner.changed.notify_one();
            }
            Err(e) => tracing::warn!("could not record when local clients were seen: {e}"),
        }
    }

    /// Reloads when this process changed the vault, or when the file's modification time
    /// or size moved (another process wrote it).
    /// The vault file as it is now on disk.
    fn vault_stamp(&self) -> Option<Stamp> {
        self.inner.vault.stamp()
    }

    /// Whether the vault file changed since this engine last loaded it.
    fn vault_changed(&self) -> bool {
        let now = self.vault_stamp();
        self.inner
            .loaded
            .lock()
            .map_or(true, |loaded| *loaded != now)
    }

    /// Loads the vault now if another process changed it since the last load (the
    /// watcher would within a second): whether it did. For a caller that must not act on
    /// a view a second old — the proxy, before refusing a client secret it does not know,
    /// which `tether url` or `tether stdio` may have just created.
    pub async fn reload_if_changed(&self) -> bool {
        self.vault_changed() && self.reload().await.is_ok()
    }

    async fn watch_vault(self) {
        loop {
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = self.inner.changed.notified() => {}
                _ = tokio::time::sleep(WATCH_INTERVAL) => {
                    if !self.vault_changed() {
                        let traffic = self.inner.traffic_dirty.swap(false, std::sync::atomic::Ordering::Relaxed);
                        let calls = self.inner.calls.get().is_some_and(|(c, _)| c.take_changed());
                        if traffic || calls {
                            self.publish();
                        }
                        continue;
                    }
                }
            }
            if let Err(e) = self.reload().await {
                self.notice(NoticeLevel::Error, format!("cannot read the vault: {e}"));
            }
        }
    }
}

/// The value under `key`, inserted if missing; allocates only then (the proxy counts every
/// call this way).
pub fn slot<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}
