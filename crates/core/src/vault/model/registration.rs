//! The OAuth clients a connection has used (registered dynamically, by metadata document or
//! by hand) and whether each is still good.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::secret::Secret;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientRegistration {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    pub issuer: String,
    pub method: RegistrationMethod,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(with = "crate::vault::time::ts")]
    pub registered_at: DateTime<Utc>,
    #[serde(default, with = "crate::vault::time::ts_opt")]
    pub secret_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub registration_access_token: Option<Secret>,
    #[serde(default)]
    pub registration_client_uri: Option<Url>,
    pub status: RegistrationStatus,
    /// How this client authenticates at the token endpoint, as the server registered it:
    /// `none`, `client_secret_post` or `client_secret_basic`.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
}

impl ClientRegistration {
    /// A client the user registered by hand; its issuer is bound at the first login.
    pub fn preregistered(
        client_id: String,
        client_secret: Option<Secret>,
        redirect_uri: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            client_id,
            client_secret,
            issuer: String::new(),
            method: RegistrationMethod::Preregistered,
            redirect_uri: Some(redirect_uri),
            registered_at: now,
            secret_expires_at: None,
            registration_access_token: None,
            registration_client_uri: None,
            status: RegistrationStatus::Active,
            token_endpoint_auth_method: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMethod {
    Dcr,
    Preregistered,
    Cimd,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    Active,
    Legacy,
    Orphan,
    Rejected,
}
