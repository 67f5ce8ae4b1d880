//! Connections whose refresh waits for a store this process cannot reach (a PostgreSQL
//! store that is down): shown as degraded in this process's view, without writing them,
//! since the state they would record lives in the store that is away.

use std::sync::Arc;

use super::Engine;
use crate::vault::{ConnectionState, Store};

impl Engine {
    /// Shows connection `name` as degraded in this process's view, without writing it:
    /// for a refresh that waits on a store it cannot reach (the state it would record
    /// lives in that store). Until [`Engine::clear_degraded`]. Whether it was not shown
    /// so before: the first time of an outage.
    pub(crate) fn show_degraded(&self, name: &str, why: String) -> bool {
        let before = self
            .inner
            .waiting_for_store
            .lock()
            .map(|mut marks| marks.insert(name.to_string(), why.clone()));
        let Ok(before) = before else {
            return false;
        };
        if before.as_ref() != Some(&why) {
            self.publish();
        }
        before.is_none()
    }

    /// The refresh of `name` reached the store again; whether it had been shown waiting.
    pub(crate) fn clear_degraded(&self, name: &str) -> bool {
        let removed = self
            .inner
            .waiting_for_store
            .lock()
            .is_ok_and(|mut marks| marks.remove(name).is_some());
        if removed {
            self.publish();
        }
        removed
    }

    /// The store to show: the one loaded, with the connections waiting for the store
    /// marked degraded.
    pub(super) fn shown_store(&self) -> Arc<Store> {
        let store = self
            .inner
            .store
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        let Ok(marks) = self.inner.waiting_for_store.lock() else {
            return store;
        };
        if marks.is_empty() {
            return store;
        }
        let mut shown = Store::clone(&store);
        for (name, why) in marks.iter() {
            if let Some(c) = shown.get_mut(name) {
                c.state = ConnectionState::Degraded { why: why.clone() };
            }
        }
        Arc::new(shown)
    }
}
