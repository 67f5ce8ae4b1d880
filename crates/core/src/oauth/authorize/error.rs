//! Why a login failed, each variant a sentence saying what to do next, and the diagnosis
//! code a front end files it under.

use std::time::Duration;

use crate::oauth::discovery::DiscoveryError;
use crate::oauth::registration::RegistrationError;
use crate::oauth::token::TokenError;
use crate::vault::{DiagnosisCode, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("no connection named '{0}'")]
    NotFound(String),
    #[error("'{0}' does not use OAuth: nothing to log in to")]
    NotOAuth(String),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    #[error(
        "the OAuth callback port {port} is busy ({reason}); the redirect URI {redirect_uri} is pinned in the client registration: free the port, or press R / run `tether login NAME --reregister` to register with a new one"
    )]
    PortBusy {
        port: u16,
        redirect_uri: String,
        reason: String,
    },
    #[error(
        "the registration's redirect URI '{0}' is not a loopback http URL tether can listen on: press R / run `tether login NAME --reregister`"
    )]
    BadRedirect(String),
    #[error("the authorization server answered the login with '{error}'{}: try again, or check the account's access", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error(
        "the login callback carried the wrong state: it did not come from this login; start the login again"
    )]
    StateMismatch,
    #[error(
        "the login callback's issuer {found:?} is not the authorization server {expected} (RFC 9207): refusing it"
    )]
    IssuerMismatch {
        expected: String,
        found: Option<String>,
    },
    #[error("the login callback carried no code: start the login again")]
    NoCode,
    #[error("no sign-in within {0:?} (browser or device): start the login again")]
    Timeout(Duration),
    #[error("the login was cancelled")]
    Cancelled,
    #[error("exchanging the authorization code failed: {0}")]
    Exchange(TokenError),
    #[error(
        "cannot open the browser ({0}): open the URL shown above by hand, or set BROWSER to your browser's command"
    )]
    Browser(String),
    #[error(
        "the authorization server {issuer} does not offer the device authorization grant (RFC 8628): sign in through a browser (`tether login NAME --no-browser --no-device` prints the URL and takes the pasted address)"
    )]
    DeviceUnsupported { issuer: String },
    #[error(
        "the authorization server refused to start a device sign-in: {0}; a client registered without the device grant needs `tether login NAME --reregister --device`"
    )]
    DeviceRefused(TokenError),
    #[error("the device code expired before the sign-in was approved: start the login again")]
    DeviceExpired,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Lock(#[from] crate::oauth::refresh::LockError),
}

impl LoginError {
    /// Whether the failure is one of the diagnoses (else the message says it all).
    pub fn is_diagnosed(&self) -> bool {
        matches!(
            self,
            LoginError::Discovery(_)
                | LoginError::Registration(_)
                | LoginError::Exchange(_)
                | LoginError::DeviceRefused(_)
        )
    }

    pub fn diagnosis(&self) -> DiagnosisCode {
        match self {
            LoginError::Discovery(e) => e.code(),
            LoginError::Registration(RegistrationError::Failed { .. }) => {
                DiagnosisCode::ClientRejected
            }
            LoginError::Exchange(e) | LoginError::DeviceRefused(e) => token_diagnosis(e),
            _ => DiagnosisCode::DiscoveryFailed,
        }
    }
}

/// What a token-endpoint (or device-endpoint) failure during a login means.
fn token_diagnosis(e: &TokenError) -> DiagnosisCode {
    match e.oauth_error() {
        // Reachable, but not where its metadata says: a metadata problem.
        _ if matches!(e, TokenError::Redirect { .. }) => DiagnosisCode::DiscoveryFailed,
        _ if e.is_transient() => DiagnosisCode::UpstreamUnreachable,
        Some("invalid_client" | "unauthorized_client") => DiagnosisCode::ClientRejected,
        Some("invalid_scope") => DiagnosisCode::InsufficientScope,
        _ => DiagnosisCode::DiscoveryFailed,
    }
}
