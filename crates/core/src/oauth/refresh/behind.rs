//! Refreshing without making calls wait: while the token in hand is still valid, a call
//! never waits for a refresh — an authorization server that hangs would hang every call
//! behind it. The call goes on with the valid token and a refresh runs in the background
//! (one at a time; the single-flight path still decides whether it asks the server). Only a
//! call whose token has expired waits for the refresh, and for at most [`EXPIRED_WAIT`]:
//! the refresh itself runs in a task of its own, so a caller that gives up never cancels
//! a token request half-way (which would leave the journal suspecting a lost response).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{AuthError, Current, TokenManager, Trigger};

/// How long a call whose token has expired waits for the refresh in flight. Authorization
/// servers answer within a second or two when they answer at all; ten seconds is well past
/// that, and well under the request timeouts of MCP clients (commonly 30–60 s), so the
/// client hears that the refresh is still running instead of timing out on its own.
pub const EXPIRED_WAIT: Duration = Duration::from_secs(10);

impl TokenManager {
    /// Starts a refresh in the background unless one this way is already running.
    pub(super) fn refresh_behind(self: &Arc<Self>, seen: u64) {
        if self.behind.swap(true, Ordering::AcqRel) {
            return;
        }
        let manager = self.clone();
        tokio::spawn(async move {
            let result = manager.refresh(Trigger::Expired { seen: Some(seen) }).await;
            manager.behind.store(false, Ordering::Release);
            if let Err(e) = result {
                tracing::warn!(connection = %manager.name, "background refresh failed: {e}");
            }
        });
    }

    /// Refreshes for a caller whose token has expired, waiting at most [`EXPIRED_WAIT`].
    pub(super) async fn refresh_for_expired(
        self: &Arc<Self>,
        seen: Option<u64>,
    ) -> Result<Arc<Current>, AuthError> {
        let manager = self.clone();
        let flight = tokio::spawn(async move { manager.refresh(Trigger::Expired { seen }).await });
        match tokio::time::timeout(EXPIRED_WAIT, flight).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(AuthError::Stopped {
                name: self.name.clone(),
                detail: join.to_string(),
            }),
            Err(_) => Err(AuthError::StillRefreshing {
                name: self.name.clone(),
                waited_secs: EXPIRED_WAIT.as_secs(),
            }),
        }
    }
}
