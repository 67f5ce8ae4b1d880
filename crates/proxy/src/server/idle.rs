//! When a kept-alive client connection has waited too long for its next request: one
//! timer per connection, set once and moved only when it fires, so a busy connection
//! costs a clock read per request rather than a timer.

use std::future::Future;
use std::task::Context;

use super::Client;

impl Client {
    /// Whether the connection has had no request for `idle_within` (since `idle_since`);
    /// if not, `cx` is woken when it might have.
    pub(super) fn idle_over(&mut self, cx: &mut Context<'_>) -> bool {
        let due = self.idle_since + self.idle_within;
        let timer = self
            .idle_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if tokio::time::Instant::now() >= due {
                return true;
            }
            // Requests came since it was set: wait for the rest of the new period.
            timer.as_mut().reset(due);
        }
    }
}
