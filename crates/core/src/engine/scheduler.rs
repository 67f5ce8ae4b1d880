//! The refresh scheduler: refreshes every token ahead of expiry — also while no client
//! is connected, so refresh tokens with an idle timeout do not die overnight — and retries
//! transient failures with backoff. It recomputes every due time from the wall clock each
//! round. Its timers run on the monotonic clock, which stands still while the machine
//! sleeps, so every 2 s it compares the two: a suspend/resume (a wall-clock jump) makes it
//! re-check everything at once rather than when its timer ends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::timing::{backoff, jitter, refresh_at};
use super::{Engine, NoticeLevel};
use crate::oauth::refresh::{AuthError, TokenManager, Trigger};
use crate::vault::{Auth, Connection, ConnectionState};

const MAX_SLEEP: Duration = Duration::from_secs(30);
/// A gap this large between wall-clock and monotonic time means the machine slept.
const JUMP: Duration = Duration::from_secs(5);
/// How often a sleeping scheduler looks for such a gap.
const JUMP_CHECK: Duration = Duration::from_secs(2);
/// A connection is never started again sooner than this after its last start, whatever
/// its due time says (a failure that does not count toward backoff — the vault
/// unreadable, say — must not make the loop spin).
const MIN_GAP: Duration = Duration::from_secs(1);

pub async fn run(engine: Engine) {
    let in_flight: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    // Poked when a refresh this loop started ends: its next due time (a retry after a
    // failure) is computed then, not when some other timer happens to fire.
    let finished = Arc::new(tokio::sync::Notify::new());
    let mut state = engine.inner.state.subscribe();
    let mut started: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let gap = chrono::Duration::from_std(MIN_GAP).unwrap_or_default();
    loop {
        let now = Utc::now();
        let mut due = due_times(&engine, now);
        for (name, at) in due.iter_mut() {
            if let Some(last) = started.get(name) {
                *at = (*at).max(*last + gap);
            }
        }
        started.retain(|name, _| due.contains_key(name));
        let next = due.values().copied().filter(|at| *at > now).min();
        for (name, at) in &due {
            if *at <= now {
                start_refresh(&engine, name, &in_flight, &finished);
                started.insert(name.clone(), now);
            }
        }
        let changed = engine
            .inner
            .next_refresh
            .lock()
            .map(|mut n| {
                let changed = *n != due;
                *n = due;
                changed
            })
            .unwrap_or(false);
        if changed {
            engine.publish();
        }
        let sleep = next
            .and_then(|at| (at - now).to_std().ok())
            .unwrap_or(MAX_SLEEP)
            .clamp(Duration::from_millis(20), MAX_SLEEP);
        let (mono, wall) = (Instant::now(), Utc::now());
        let until = tokio::time::Instant::now() + sleep;
        let mut check = tokio::time::interval(JUMP_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        check.reset();
        let jump = loop {
            tokio::select! {
                _ = engine.inner.stop.cancelled() => return,
                _ = tokio::time::sleep_until(until) => break None,
                _ = state.changed() => break None,
                _ = finished.notified() => break None,
                _ = check.tick() => {
                    let jump = jumped(mono.elapsed(), (Utc::now() - wall).to_std().unwrap_or_default());
                    if jump.is_some() {
                        break jump;
                    }
                }
            }
        };
        if let Some(jump) = jump {
            engine.notice(
                NoticeLevel::Info,
                format!(
                    "the clock jumped {}s (suspend/resume?): re-checking every connection",
                    jump.as_secs()
                ),
            );
        }
    }
}

/// How far the wall clock ran ahead of the monotonic one (which stands still while the
/// machine sleeps), when that means the machine slept.
fn jumped(monotonic: Duration, wall: Duration) -> Option<Duration> {
    let gap = wall.saturating_sub(monotonic);
    (gap > JUMP).then_some(gap)
}

/// When each refreshable connection is next due.
fn due_times(engine: &Engine, now: DateTime<Utc>) -> BTreeMap<String, DateTime<Utc>> {
    let store = engine
        .inner
        .store
        .read()
        .map(|s| s.clone())
        .unwrap_or_default();
    let mut due = BTreeMap::new();
    for c in store.connections() {
        if let Some(manager) = engine.manager(c.name.as_str())
            && let Some(at) = due_time(c, &manager, now)
        {
            due.insert(c.name.to_string(), at);
        }
    }
    due
}

fn due_time(c: &Connection, manager: &TokenManager, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !matches!(c.auth, Auth::OAuth { .. }) {
        return None;
    }
    if matches!(
        c.state,
        ConnectionState::NeedsLogin
            | ConnectionState::NeedsReauth { .. }
            | ConnectionState::Disabled
    ) {
        return None;
    }
    c.token.as_ref()?.refresh_token.as_ref()?;
    // The manager's in-memory token is the newest this process knows; the published
    // store may lag a refresh that just finished.
    let current = manager.current()?;
    let expires = current.expires_at?;
    if let Some(b) = manager.backoff() {
        let wait = backoff(
            b.failures,
            jitter(c.name.as_str(), u64::from(b.failures)),
            b.retry_after,
        );
        let retry = b.at + chrono::Duration::from_std(wait).unwrap_or_default();
        // A retry never waits past expiry when the token is still usable until then.
        return Some(retry.min(expires.max(now)));
    }
    Some(refresh_at(
        current.obtained_at,
        expires,
        jitter(c.name.as_str(), current.generation),
    ))
}

fn start_refresh(
    engine: &Engine,
    name: &str,
    in_flight: &Arc<Mutex<BTreeSet<String>>>,
    finished: &Arc<tokio::sync::Notify>,
) {
    let Ok(mut flying) = in_flight.lock() else {
        return;
    };
    if !flying.insert(name.to_string()) {
        return;
    }
    let Some(manager) = engine.manager(name) else {
        flying.remove(name);
        return;
    };
    let in_flight = in_flight.clone();
    let finished = finished.clone();
    let name = name.to_string();
    let engine = engine.clone();
    tokio::spawn(async move {
        let result = manager.refresh(Trigger::Scheduled).await;
        match &result {
            // The store itself is away (a database down): the refresh waits for it, and
            // this process shows why, since the state it would record lives in the store.
            // It is tried again every second: the log says so once an outage.
            Err(e) if matches!(e, AuthError::Lock(_) | AuthError::Vault(_)) => {
                if engine.show_degraded(&name, format!("waiting for the store: {e}")) {
                    tracing::warn!(
                        connection = %name,
                        "the refresh waits for the store, tried again every second: {e}"
                    );
                } else {
                    tracing::debug!(connection = %name, "still waiting for the store: {e}");
                }
            }
            Err(e) => tracing::warn!(connection = %name, "scheduled refresh failed: {e}"),
            Ok(_) => {
                if engine.clear_degraded(&name) {
                    tracing::info!(connection = %name, "the store answers again");
                }
            }
        }
        if let Ok(mut flying) = in_flight.lock() {
            flying.remove(&name);
        }
        finished.notify_one();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_shows_as_the_wall_clock_running_ahead() {
        let s = Duration::from_secs;
        assert_eq!(jumped(s(2), s(2)), None);
        assert_eq!(jumped(s(2), s(6)), None, "scheduling noise is not a sleep");
        assert_eq!(jumped(s(2), s(3602)), Some(s(3600)), "an hour asleep");
        assert_eq!(jumped(s(10), s(3)), None, "the clock set back");
    }
}
