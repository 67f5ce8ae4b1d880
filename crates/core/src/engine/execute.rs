//! Carrying out what front ends ask: each command runs as its own task, so a slow
//! authorization server never holds up the next key press; results come back as state
//! and notices.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Engine, EngineCommand, EngineEvent, LoginProgress, NoticeLevel};
use crate::access::AccessError;
use crate::connections::{self, ConnectionError};
use crate::diagnosis::explain;
use crate::oauth::authorize::{self, LoginOptions, LoginStep, StepOutcome};
use crate::oauth::refresh::{AuthError, Trigger};
use crate::oauth::registration::{self, Cleanup};
use crate::vault::{Auth, RegistrationStatus, Store, VaultError};

/// Why a command from a front end failed; shown to the user as a notice.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Refresh(#[from] AuthError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("that sign-in request is no longer waiting (answered, or older than 10 minutes)")]
    ConsentGone,
    #[error(transparent)]
    ConsentElsewhere(#[from] crate::local_auth::shared::AnswerError),
}

pub async fn run(engine: Engine, mut commands: mpsc::UnboundedReceiver<EngineCommand>) {
    loop {
        let command = tokio::select! {
            _ = engine.inner.stop.cancelled() => return,
            c = commands.recv() => match c { Some(c) => c, None => return },
        };
        let engine = engine.clone();
        match command {
            EngineCommand::Login { name } => engine.start_login(name, false),
            EngineCommand::Reauthorize { name } => engine.start_login(name, true),
            EngineCommand::CancelLogin { name } => engine.cancel_login(&name),
            EngineCommand::PasteRedirect { name, address } => engine.paste(&name, address),
            // Changes to the vault alone are carried out in the order sent: a Login sent
            // right after its Add finds the connection, an Abandon after an Add finds it.
            local @ (EngineCommand::Add { .. }
            | EngineCommand::Remove { .. }
            | EngineCommand::Abandon { .. }) => {
                if let Err(e) = engine.execute(local).await {
                    engine.notice(NoticeLevel::Error, e.to_string());
                }
            }
            other => {
                tokio::spawn(async move {
                    if let Err(e) = engine.execute(other).await {
                        engine.notice(NoticeLevel::Error, e.to_string());
                    }
                });
            }
        }
    }
}

impl Engine {
    async fn execute(&self, command: EngineCommand) -> Result<(), CommandError> {
        match command {
            EngineCommand::Add { name, url, auth } => {
                connections::add(&self.inner.vault, &name, &url, auth).await?;
                self.reload().await?;
                Ok(())
            }
            EngineCommand::Consent { id, allow } => {
                if self.inner.consents.decide(&id, allow) {
                    self.consents_changed();
                    return Ok(());
                }
                // A request waiting in the proxy another tether serves is answered there.
                let elsewhere = match self.inner.proxy.lock().map(|p| p.clone()) {
                    Ok(super::ProxyStatus::ServedElsewhere { addr, .. }) => addr,
                    _ => return Err(CommandError::ConsentGone),
                };
                crate::local_auth::shared::answer_elsewhere(
                    &self.inner.vault,
                    elsewhere,
                    &id,
                    allow,
                )
                .await?;
                Ok(())
            }
            EngineCommand::Refresh { name } => {
                let manager = self.manager(&name).ok_or_else(|| not_found(&name))?;
                let current = manager.refresh(Trigger::Manual).await?;
                self.notice(
                    NoticeLevel::Info,
                    format!("'{name}' refreshed (generation {})", current.generation),
                );
                Ok(())
            }
            EngineCommand::Remove { name } => {
                self.cancel_login(&name);
                connections::remove(&self.inner.vault, &name).await?;
                self.inner.changed.notify_one();
                self.notice(NoticeLevel::Info, format!("'{name}' removed"));
                Ok(())
            }
            EngineCommand::Abandon { name } => {
                self.cancel_login(&name);
                let n = name.clone();
                let removed = self
                    .inner
                    .vault
                    .transact_async(move |store: &mut Store| {
                        let unauthorized = store.get(&n).is_some_and(|c| {
                            c.token.is_none() && matches!(c.auth, Auth::OAuth { .. })
                        });
                        if unauthorized {
                            store.remove(&n);
                        }
                        Ok::<_, VaultError>(unauthorized)
                    })
                    .await?;
                if removed {
                    crate::oauth::watermark::forget(&self.inner.vault, &name);
                    self.inner.changed.notify_one();
                    self.notice(
                        NoticeLevel::Info,
                        format!("'{name}' was not added: its sign-in was cancelled"),
                    );
                }
                Ok(())
            }
            EngineCommand::CleanOrphans { name } => self.clean_orphans(&name).await,
            EngineCommand::ClientEndpoint { name, label } => {
                let (secret, _) =
                    crate::access::endpoint_secret(&self.inner.vault, &name, &label).await?;
                let url =
                    crate::access::path_endpoint(&format!("http://{}", self.proxy_addr()), &secret);
                let _ = self.inner.events.send(EngineEvent::Endpoint {
                    connection: name,
                    label,
                    url: crate::secret::Secret::new(url),
                });
                self.inner.changed.notify_one();
                Ok(())
            }
            EngineCommand::RevokeClient { name, label } => {
                crate::access::revoke(&self.inner.vault, &name, &label).await?;
                self.inner.changed.notify_one();
                self.notice(
                    NoticeLevel::Info,
                    format!("client '{label}' can no longer use '{name}'"),
                );
                Ok(())
            }
            EngineCommand::Login { .. }
            | EngineCommand::Reauthorize { .. }
            | EngineCommand::CancelLogin { .. }
            | EngineCommand::PasteRedirect { .. } => Ok(()),
        }
    }

    /// Where local clients reach the proxy: this process's, another tether's, or the
    /// default address.
    fn proxy_addr(&self) -> std::net::SocketAddr {
        match self.inner.proxy.lock().map(|p| p.clone()) {
            Ok(
                super::ProxyStatus::Serving { addr }
                | super::ProxyStatus::ServedElsewhere { addr, .. },
            ) => addr,
            _ => crate::config::ProxyConfig::default().bind,
        }
    }

    pub(super) fn start_login(&self, name: String, reregister: bool) {
        self.cancel_login(&name);
        if let Ok(mut logins) = self.inner.logins.lock() {
            logins.insert(name.clone(), LoginProgress::default());
        }
        self.publish();
        // A browser on another machine (SSH) ends on an address this one cannot receive:
        // the user pastes it, and it is checked like the callback.
        let (paste, pasted) = mpsc::channel(4);
        if let Ok(mut pastes) = self.inner.login_pastes.lock() {
            pastes.insert(name.clone(), paste);
        }
        let engine = self.clone();
        let task_name = name.clone();
        let task = tokio::spawn(async move {
            let progress_engine = engine.clone();
            let connection = task_name.clone();
            let progress: authorize::Progress =
                Arc::new(move |step: LoginStep, outcome: StepOutcome| {
                    progress_engine.login_step(&connection, step, outcome);
                });
            let options = LoginOptions {
                browser: engine.inner.options.browser,
                reregister,
                pasted: Some(pasted),
                ..LoginOptions::default()
            };
            let result = authorize::login(
                &engine.inner.http,
                &engine.inner.vault,
                &task_name,
                options,
                progress,
            )
            .await;
            match result {
                Ok(outcome) => engine.notice(
                    NoticeLevel::Info,
                    format!(
                        "'{task_name}' authorized (generation {})",
                        outcome.generation
                    ),
                ),
                Err(e) => engine.notice(
                    NoticeLevel::Error,
                    format!("'{task_name}': {e} — {}", explain(e.diagnosis()).remedy),
                ),
            }
            if let Ok(mut tasks) = engine.inner.login_tasks.lock() {
                tasks.remove(&task_name);
            }
            if let Ok(mut pastes) = engine.inner.login_pastes.lock() {
                pastes.remove(&task_name);
            }
            let _ = engine.reload().await;
        });
        if let Ok(mut tasks) = self.inner.login_tasks.lock() {
            tasks.insert(name, task.abort_handle());
        }
    }

    /// Hands a pasted redirect address to `name`'s login in progress.
    fn paste(&self, name: &str, address: crate::secret::Secret) {
        let sent = self
            .inner
            .login_pastes
            .lock()
            .ok()
            .and_then(|pastes| pastes.get(name).cloned())
            .map(|paste| paste.try_send(address.expose().to_string()).is_ok());
        if sent != Some(true) {
            self.notice(
                NoticeLevel::Warning,
                format!("no sign-in of '{name}' is waiting for an address: press l to start one"),
            );
        }
    }

    fn cancel_login(&self, name: &str) {
        let task = self
            .inner
            .login_tasks
            .lock()
            .ok()
            .and_then(|mut t| t.remove(name));
        if let Ok(mut pastes) = self.inner.login_pastes.lock() {
            pastes.remove(name);
        }
        if let Some(task) = task {
            task.abort();
            if let Ok(mut logins) = self.inner.logins.lock() {
                logins.remove(name);
            }
            self.publish();
        }
    }

    fn login_step(&self, connection: &str, step: LoginStep, outcome: StepOutcome) {
        if let Ok(mut logins) = self.inner.logins.lock() {
            let progress = logins.entry(connection.to_string()).or_default();
            match progress.steps.iter_mut().find(|(s, _)| same_step(s, &step)) {
                Some(entry) => *entry = (step.clone(), outcome.clone()),
                None => progress.steps.push((step.clone(), outcome.clone())),
            }
        }
        let _ = self.inner.events.send(EngineEvent::LoginStep {
            connection: connection.to_string(),
            step,
            outcome,
        });
        self.publish();
    }

    async fn clean_orphans(&self, name: &str) -> Result<(), CommandError> {
        let store = self.inner.vault.load_async().await?;
        let c = connections::find(&store, name)?;
        let mut gone = Vec::new();
        let mut kept = Vec::new();
        for r in c
            .clients
            .iter()
            .filter(|r| r.status == RegistrationStatus::Orphan)
        {
            match registration::delete(&self.inner.http, r).await {
                Cleanup::Kept(why) => kept.push(why),
                _ => gone.push(r.client_id.clone()),
            }
        }
        let count = gone.len();
        let n = name.to_string();
        self.inner
            .vault
            .transact_async(move |store: &mut Store| {
                if let Some(c) = store.get_mut(&n) {
                    c.clients.retain(|r| {
                        !(gone.contains(&r.client_id) && r.status == RegistrationStatus::Orphan)
                    });
                }
                Ok::<_, VaultError>(())
            })
            .await?;
        self.inner.changed.notify_one();
        let mut text = format!("'{name}': {count} orphaned registration(s) cleaned");
        if !kept.is_empty() {
            text += &format!(", {} kept ({})", kept.len(), kept.join("; "));
        }
        self.notice(NoticeLevel::Info, text);
        Ok(())
    }
}

fn not_found(name: &str) -> ConnectionError {
    ConnectionError::NotFound {
        name: name.to_string(),
        known: "it may have just been removed".to_string(),
    }
}

fn same_step(a: &LoginStep, b: &LoginStep) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}
