//! Desktop notifications from the tether that serves the proxy (the service, `serve`, the
//! TUI): it watches the engine's state and events and says each alert of
//! `tether_core::alerts` once — a connection that needs a new sign-in, a forecast within a
//! week, a client that keeps sending a refused endpoint secret — through the
//! freedesktop notification service on the session D-Bus. Only the process that serves
//! the proxy sends them, so a TUI watching the service's vault never repeats the
//! service's. Elsewhere than Linux nothing is sent (see docs/configuration.md).

use std::collections::HashSet;
use std::time::Duration;

use tether_core::alerts::Alert;
use tether_core::engine::{EngineEvent, EngineHandle, ProxyStatus};
use tokio::sync::broadcast::error::RecvError;

/// How often forecasts are looked at again when nothing changed: they cross into a
/// warning by the clock alone.
const RECHECK: Duration = Duration::from_secs(60);

/// At most this many causes are remembered; past it the oldest are forgotten (and could
/// be said again, once).
const REMEMBERED: usize = 1024;

/// Watches `handle`'s state until the engine stops, sending each new alert once.
pub fn spawn(handle: EngineHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut state = handle.state.clone();
        let mut events = handle.events.subscribe();
        let mut said = Said::default();
        let mut bus = bus::Bus::default();
        let mut recheck = tokio::time::interval(RECHECK);
        loop {
            let mut alerts = Vec::new();
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                _ = recheck.tick() => {}
                event = events.recv() => match event {
                    Ok(EngineEvent::SecretRefused { connection, count }) => {
                        alerts.push(tether_core::alerts::refused_secret(connection.as_deref(), count));
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
            }
            let snapshot = state.borrow_and_update().clone();
            if !matches!(snapshot.proxy, ProxyStatus::Serving { .. }) {
                continue;
            }
            alerts.extend(tether_core::alerts::due(
                &snapshot.store,
                chrono::Utc::now(),
            ));
            for alert in alerts {
                if said.first_time(&alert.key) {
                    tracing::info!(connection = %alert.connection, key = %alert.key, "desktop notification");
                    bus.send(&alert).await;
                }
            }
        }
    })
}

/// The causes already said, oldest first.
#[derive(Default)]
struct Said {
    keys: HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl Said {
    fn first_time(&mut self, key: &str) -> bool {
        if !self.keys.insert(key.to_string()) {
            return false;
        }
        self.order.push_back(key.to_string());
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.keys.remove(&old);
        }
        true
    }
}

#[cfg(target_os = "linux")]
mod bus {
    use std::collections::HashMap;

    use super::Alert;

    /// The session bus, opened at the first notification; `Unreachable` once opening it
    /// failed (said once in the log, not retried).
    #[derive(Default)]
    pub enum Bus {
        #[default]
        Unopened,
        Open(zbus::Connection),
        Unreachable,
    }

    impl Bus {
        pub async fn send(&mut self, alert: &Alert) {
            if matches!(self, Bus::Unopened) {
                *self = match zbus::Connection::session().await {
                    Ok(c) => Bus::Open(c),
                    Err(e) => {
                        tracing::warn!(
                            "no desktop notifications: the session D-Bus cannot be reached ({e})"
                        );
                        Bus::Unreachable
                    }
                };
            }
            let Bus::Open(connection) = self else { return };
            let hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
            let actions: Vec<&str> = Vec::new();
            // org.freedesktop.Notifications.Notify(app_name, replaces_id, app_icon,
            // summary, body, actions, hints, expire_timeout).
            let sent = connection
                .call_method(
                    Some("org.freedesktop.Notifications"),
                    "/org/freedesktop/Notifications",
                    Some("org.freedesktop.Notifications"),
                    "Notify",
                    &(
                        "tether",
                        0u32,
                        "",
                        alert.summary.as_str(),
                        alert.body.as_str(),
                        actions,
                        hints,
                        -1i32,
                    ),
                )
                .await;
            if let Err(e) = sent {
                tracing::warn!("a desktop notification was not shown: {e}");
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod bus {
    use super::Alert;

    /// No notification service is built for this system: alerts go to the log only.
    #[derive(Default)]
    pub struct Bus;

    impl Bus {
        pub async fn send(&mut self, alert: &Alert) {
            tracing::warn!("{}: {}", alert.summary, alert.body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once_and_memory_is_bounded() {
        let mut said = Said::default();
        assert!(said.first_time("a"));
        assert!(!said.first_time("a"));
        for n in 0..REMEMBERED {
            assert!(said.first_time(&n.to_string()));
        }
        assert_eq!(said.keys.len(), REMEMBERED);
        assert!(said.first_time("a"), "the oldest was forgotten");
    }
}
