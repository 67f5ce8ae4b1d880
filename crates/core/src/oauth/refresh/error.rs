//! Why a connection has no usable credential: the errors a refresh (or a request waiting on
//! one) reports, each a sentence the user can act on.

use std::sync::Arc;

use super::lock::LockError;
use crate::vault::{DiagnosisCode, VaultError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("no connection named '{0}'")]
    NotFound(String),
    #[error("'{0}' is not authorized yet: run `tether login {0}`")]
    NeedsLogin(String),
    #[error("{}", crate::diagnosis::explain(*diagnosis).sentence_for(name))]
    NeedsReauth {
        name: String,
        diagnosis: DiagnosisCode,
        detail: String,
    },
    #[error(
        "'{name}' cannot refresh right now ({detail}); tether keeps the refresh token and retries"
    )]
    Unavailable { name: String, detail: String },
    #[error(
        "'{name}': its token expired and the refresh started for it is still running after {waited_secs} s (the authorization server is slow to answer); tether keeps the refresh token — try again shortly"
    )]
    StillRefreshing { name: String, waited_secs: u64 },
    #[error("the refresh of '{name}' stopped unexpectedly: {detail}")]
    Stopped { name: String, detail: String },
    /// Shared (`Arc`): one failed refresh answers every call that waited on it.
    #[error("{0}")]
    Vault(Arc<VaultError>),
    #[error("{0}")]
    Lock(Arc<LockError>),
}

impl From<VaultError> for AuthError {
    fn from(e: VaultError) -> Self {
        AuthError::Vault(Arc::new(e))
    }
}

impl From<LockError> for AuthError {
    fn from(e: LockError) -> Self {
        AuthError::Lock(Arc::new(e))
    }
}

impl AuthError {
    pub fn diagnosis(&self) -> Option<DiagnosisCode> {
        match self {
            AuthError::NeedsReauth { diagnosis, .. } => Some(*diagnosis),
            AuthError::Unavailable { .. } | AuthError::StillRefreshing { .. } => {
                Some(DiagnosisCode::UpstreamUnreachable)
            }
            _ => None,
        }
    }
}
