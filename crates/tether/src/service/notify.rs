//! Telling systemd how `tether serve` is doing, over its notify socket (`NOTIFY_SOCKET`, the
//! sd_notify protocol): `READY=1` once the vault is open and the proxy listens, `WATCHDOG=1`
//! about once a second from the proxy's own thread while it runs (so a wedged proxy stops
//! sending them and systemd restarts it after `WatchdogSec`), `STOPPING=1` on the way out.
//! Without a notify socket every call does nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The service manager's notify socket, if this process was started with one.
#[derive(Debug, Clone)]
pub struct Notifier {
    watchdog: Option<Duration>,
}

impl Notifier {
    /// `Some` when a service manager listens (`NOTIFY_SOCKET` is set).
    pub fn from_env() -> Option<Self> {
        std::env::var_os("NOTIFY_SOCKET")?;
        Some(Self {
            watchdog: sd_notify::watchdog_enabled(),
        })
    }

    /// The vault is open and the proxy listens: the service is up.
    pub fn ready(&self, status: &str) {
        send(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(status),
        ]);
    }

    pub fn stopping(&self) {
        send(&[sd_notify::NotifyState::Stopping]);
    }

    /// What the proxy calls from its own thread while it runs, when the manager asked for
    /// keep-alives (`WATCHDOG_USEC`).
    pub fn keep_alive(&self) -> Option<tether_proxy::Alive> {
        let every = self.watchdog?;
        tracing::info!(
            "watchdog: keep-alives every second, restarted after {} s without one",
            every.as_secs()
        );
        Some(Arc::new(|| send(&[sd_notify::NotifyState::Watchdog])))
    }
}

/// Whether the last message failed: a socket that stops taking keep-alives is logged once
/// when it starts failing and once when it works again, not once a second.
static FAILING: AtomicBool = AtomicBool::new(false);

fn send(states: &[sd_notify::NotifyState]) {
    match sd_notify::notify(states) {
        Err(e) if !FAILING.swap(true, Ordering::Relaxed) => {
            tracing::warn!("cannot notify the service manager: {e} (logged once until it works)");
        }
        Ok(()) if FAILING.swap(false, Ordering::Relaxed) => {
            tracing::info!("notifying the service manager works again");
        }
        _ => {}
    }
}
