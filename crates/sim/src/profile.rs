//! Provider profiles: each one a model of a real provider's token policy, with its
//! lifetimes, rotation rules and limits in one place.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::SimError;

/// Which provider's token policy the simulator reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    Linear,
    Github,
    Notion,
    Todoist,
    Atlassian,
    Generic,
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// What happens when a refresh token that was already rotated is presented again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReusePolicy {
    /// `invalid_grant`, nothing else (plain OAuth 2.1 rotation).
    Reject,
    /// `invalid_grant` and the whole grant family dies, newest tokens included
    /// (OAuth 2.1 §4.3.1 reuse detection).
    RevokeFamily,
}

/// How long an access token lives, in real (unscaled) seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessLife {
    Fixed(u64),
    /// Uniformly random in `[min, max]` for each token.
    Random(u64, u64),
}

/// The token policy of one profile. Lifetimes are real-world values; the server divides
/// them by the time scale.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Recognisable prefix of every secret this profile issues (`lin_at_…`).
    pub prefix: &'static str,
    pub access_life: AccessLife,
    /// `None`: no refresh token is ever issued.
    pub refresh: Option<RefreshPolicy>,
    /// Live access tokens allowed per (user, client); the oldest is evicted beyond it.
    pub max_live_access: Option<usize>,
    /// Dynamically registered clients expire after this long.
    pub client_life: Option<u64>,
    /// Clients registered with `none` are given a secret anyway (so that
    /// `client_secret_expires_at` means something) and told so in the response.
    pub force_client_secret: bool,
    pub scopes_supported: &'static [&'static str],
    /// The scope granted when the client asks for none, and named in 401 challenges.
    pub default_scope: &'static str,
    /// The device authorization grant (RFC 8628) is offered, as GitHub does.
    pub device_flow: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshPolicy {
    /// Lifetime of a refresh token in real seconds; `None` = until used or revoked.
    pub life: Option<u64>,
    pub reuse: ReusePolicy,
    /// A refresh token is only issued when the grant includes `offline_access`.
    pub needs_offline_access: bool,
    /// Token responses say how long the refresh token lives (`refresh_token_expires_in`),
    /// as GitHub Apps do.
    pub announce_life: bool,
}

const SCOPES_OFFLINE: &[&str] = &["mcp:read", "mcp:write", "mcp:admin", "offline_access"];
const SCOPES_PLAIN: &[&str] = &["mcp:read", "mcp:write", "mcp:admin"];

impl Profile {
    pub const ALL: [Profile; 6] = [
        Profile::Linear,
        Profile::Github,
        Profile::Notion,
        Profile::Todoist,
        Profile::Atlassian,
        Profile::Generic,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Profile::Linear => "linear",
            Profile::Github => "github",
            Profile::Notion => "notion",
            Profile::Todoist => "todoist",
            Profile::Atlassian => "atlassian",
            Profile::Generic => "generic",
        }
    }

    /// One line: the provider behaviour this profile reproduces.
    pub fn description(&self) -> &'static str {
        match self {
            Profile::Linear => {
                "single-use refresh tokens; reusing one revokes the whole grant (1 h access tokens)"
            }
            Profile::Github => {
                "at most 10 live tokens per user and app; the 11th silently revokes the oldest (8 h access tokens; 6-month refresh tokens, their lifetime announced); device flow offered"
            }
            Profile::Notion => {
                "dynamically registered clients expire after a day; their tokens then fail with invalid_client"
            }
            Profile::Todoist => "10-year access tokens and no refresh token at all",
            Profile::Atlassian => {
                "access tokens live a random 30-55 minutes; refresh tokens rotate and need offline_access"
            }
            Profile::Generic => "plain OAuth 2.1: 1 h access tokens, rotating refresh tokens",
        }
    }

    pub(crate) fn policy(&self) -> Policy {
        let rotate = |life, reuse| {
            Some(RefreshPolicy {
                life,
                reuse,
                needs_offline_access: false,
                announce_life: false,
            })
        };
        let base = Policy {
            prefix: "gen",
            access_life: AccessLife::Fixed(HOUR),
            refresh: rotate(None, ReusePolicy::Reject),
            max_live_access: None,
            client_life: None,
            force_client_secret: false,
            scopes_supported: SCOPES_OFFLINE,
            default_scope: "mcp:read mcp:write",
            device_flow: false,
        };
        match self {
            Profile::Linear => Policy {
                prefix: "lin",
                refresh: rotate(Some(30 * DAY), ReusePolicy::RevokeFamily),
                ..base
            },
            Profile::Github => Policy {
                prefix: "gh",
                access_life: AccessLife::Fixed(8 * HOUR),
                // GitHub's refresh tokens live six months, rotate on use, and the token
                // response says so (`refresh_token_expires_in`).
                refresh: Some(RefreshPolicy {
                    life: Some(184 * DAY),
                    reuse: ReusePolicy::Reject,
                    needs_offline_access: false,
                    announce_life: true,
                }),
                max_live_access: Some(10),
                scopes_supported: SCOPES_PLAIN,
                device_flow: true,
                ..base
            },
            Profile::Notion => Policy {
                prefix: "ntn",
                client_life: Some(DAY),
                force_client_secret: true,
                ..base
            },
            Profile::Todoist => Policy {
                prefix: "td",
                access_life: AccessLife::Fixed(3650 * DAY),
                refresh: None,
                scopes_supported: SCOPES_PLAIN,
                ..base
            },
            Profile::Atlassian => Policy {
                prefix: "atl",
                access_life: AccessLife::Random(30 * 60, 55 * 60),
                refresh: Some(RefreshPolicy {
                    life: Some(90 * DAY),
                    reuse: ReusePolicy::Reject,
                    needs_offline_access: true,
                    announce_life: false,
                }),
                default_scope: "mcp:read mcp:write offline_access",
                ..base
            },
            Profile::Generic => base,
        }
    }
}

impl Policy {
    /// A fresh access-token lifetime in real seconds.
    pub fn draw_access_life(&self) -> u64 {
        match self.access_life {
            AccessLife::Fixed(secs) => secs,
            AccessLife::Random(min, max) => rand::random_range(min..=max),
        }
    }

    pub fn grant_types(&self) -> Vec<&'static str> {
        match self.refresh {
            Some(_) => vec!["authorization_code", "refresh_token"],
            None => vec!["authorization_code"],
        }
    }
}

/// The device authorization grant's `grant_type` (RFC 8628 §3.4).
pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628's recommendations, in real seconds: GitHub's device codes live 15 minutes and
/// are polled every 5 seconds.
pub(crate) const DEVICE_CODE_LIFE: u64 = 900;
pub(crate) const DEVICE_POLL_INTERVAL: u64 = 5;

/// Divides a real-world lifetime by the time scale, like [`scaled`], but in whole seconds
/// of at least one, as the wire carries them.
pub(crate) fn scaled_secs(real_secs: u64, time_scale: f64) -> u64 {
    (scaled(real_secs, time_scale).as_millis() as u64 / 1000).max(1)
}

/// Divides a real-world lifetime by the time scale, keeping millisecond precision and
/// never going below one millisecond.
pub(crate) fn scaled(real_secs: u64, time_scale: f64) -> Duration {
    let ms = (real_secs as f64 * 1000.0 / time_scale).round();
    Duration::from_millis((ms as u64).max(1))
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| SimError::UnknownProfile(s.to_string()))
    }
}
