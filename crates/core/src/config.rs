//! `config.toml`: built-in defaults, then the file, then environment variables. Command-line
//! flags, where a command has them, win over all three.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::paths::Paths;

pub const KEY_SOURCE_ENV: &str = "TETHER_KEY_SOURCE";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub vault: VaultConfig,
    #[serde(default)]
    pub proxy: ProxyConfig,
    #[serde(default)]
    pub tui: TuiConfig,
    #[serde(default)]
    pub notifications: NotificationsConfig,
    #[serde(default)]
    pub calls: CallsConfig,
    #[serde(default)]
    pub store: StoreConfig,
}

pub const STORE_ENV: &str = "TETHER_STORE";

/// Where the vault lives: the encrypted file in the data folder (the default), or a
/// PostgreSQL database that several `tether serve` replicas share (`docs/deployment.md`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user@host:port/db?sslmode=require`, or `file` (the default). The
    /// database password may come from `PGPASSWORD` instead of the address.
    #[serde(default)]
    pub url: Option<String>,
    /// A PEM file of the certificate authorities that sign the database's certificate, when
    /// the system's own do not.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

pub const CALLS_CAPTURE_ENV: &str = "TETHER_CALLS_CAPTURE";

/// What is kept of each call through the proxy: the TUI's Calls view and the audit log
/// `logs/calls.jsonl` (`tether calls`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// `off`: counts only; `metadata`: a record per call, no bodies; `full`: with the
    /// request and response bodies up to `capture_max_bytes` each.
    pub capture: Capture,
    /// The most of each body kept with `capture = "full"`.
    pub capture_max_bytes: usize,
    /// The audit log is rotated once it would grow past this…
    pub log_max_bytes: u64,
    /// …keeping this many rotated files…
    pub log_keep: usize,
    /// …none older than this many days.
    pub log_max_age_days: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            capture: Capture::Metadata,
            capture_max_bytes: 64 * 1024,
            log_max_bytes: 10 * 1024 * 1024,
            log_keep: 5,
            log_max_age_days: 14,
        }
    }
}

/// How much of each proxied call is recorded (`[calls] capture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capture {
    Off,
    #[default]
    Metadata,
    Full,
}

impl FromStr for Capture {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Self::Off),
            "metadata" => Ok(Self::Metadata),
            "full" => Ok(Self::Full),
            other => Err(format!(
                "'{other}' is not a capture setting: use off, metadata or full"
            )),
        }
    }
}

pub const NOTIFICATIONS_ENV: &str = "TETHER_NOTIFICATIONS";

/// Desktop notifications from the tether that serves the proxy: a connection that needs a
/// new sign-in, a forecast within a week.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Unset: on for the service (`serve --service`), off for `serve` and the TUI.
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl NotificationsConfig {
    /// Whether to send them; `service`: this process runs as the service.
    pub fn on(&self, service: bool) -> bool {
        self.enabled.unwrap_or(service)
    }
}

pub const BIND_ENV: &str = "TETHER_BIND";

/// The local proxy: where it listens and what it lets in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Address to listen on; loopback unless you know why not.
    pub bind: std::net::SocketAddr,
    /// Host names besides loopback that requests may carry in `Host` (e.g. when tether
    /// sits behind a reverse proxy). Anything else gets 403 (DNS-rebinding protection).
    pub public_names: Vec<String>,
    /// Origins (`scheme://host[:port]`) allowed besides loopback ones; a request with any
    /// other `Origin` header gets 403.
    pub allowed_origins: Vec<String>,
    /// Request bodies larger than this get 413.
    pub max_body_bytes: usize,
    /// Give up on an upstream that sends nothing for this long.
    pub upstream_timeout_secs: u64,
    /// A client's request, once begun, must have arrived whole (head and body) within
    /// this long; a client trickling bytes gets 408 and its connection closed.
    pub request_timeout_secs: u64,
    /// A client connection with no request for this long is closed.
    pub idle_timeout_secs: u64,
    /// At most this many client connections are open at once; one more is answered 503.
    pub max_connections: usize,
    /// Whether `/metrics` shows every connection's and client's series to any caller;
    /// when not, a caller without an endpoint secret sees totals only, one with a secret
    /// its own connection's series.
    pub metrics_public: bool,
    /// A PEM certificate chain and its private key: the proxy then speaks HTTPS only
    /// (HTTP/1.1 and HTTP/2), for clients on other machines. Both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 7878)),
            public_names: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            upstream_timeout_secs: 120,
            request_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 512,
            metrics_public: false,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuiConfig {
    /// The TUI's colour theme by name: a built-in (`tether-dark`, `tether-light`,
    /// `high-contrast`, `catppuccin-mocha`, `gruvbox-dark`) or a file in the config
    /// folder's `themes/`. `--theme` wins over it.
    #[serde(default)]
    pub theme: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Where the vault key is kept; `auto` prefers the OS keyring.
    #[serde(default)]
    pub key_source: KeySourceChoice,
}

/// The user's choice of where the vault key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySourceChoice {
    /// `TETHER_VAULT_KEY` if set, else an existing key file, else the OS keyring, else a
    /// new key file (with a warning).
    #[default]
    Auto,
    /// Only the OS keyring; fail if it cannot be reached.
    Keyring,
    /// Only the key file beside the vault (mode 0600).
    File,
    /// Only the `TETHER_VAULT_KEY` environment variable.
    Env,
}

impl FromStr for KeySourceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "keyring" => Ok(Self::Keyring),
            "file" => Ok(Self::File),
            "env" => Ok(Self::Env),
            other => Err(format!(
                "'{other}' is not a key source: use auto, keyring, file or env"
            )),
        }
    }
}

impl fmt::Display for KeySourceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Keyring => "keyring",
            Self::File => "file",
            Self::Env => "env",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file '{path}': {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file '{path}' is not valid: {message}; fix the file or move it away")]
    Parse { path: PathBuf, message: String },
    #[error("{var} is not valid: {message}")]
    Env { var: &'static str, message: String },
}

impl Config {
    /// Defaults, overlaid with `config.toml` when it exists, then the environment.
    pub fn load(paths: &Paths) -> Result<Self, ConfigError> {
        let mut config = Self::from_file(&paths.config_file())?;
        if let Ok(value) = std::env::var(KEY_SOURCE_ENV) {
            config.vault.key_source = value.parse().map_err(|message| ConfigError::Env {
                var: KEY_SOURCE_ENV,
                message,
            })?;
        }
        if let Ok(value) = std::env::var(NOTIFICATIONS_ENV) {
            config.notifications.enabled = Some(match value.trim() {
                "1" | "true" | "on" => true,
                "0" | "false" | "off" => false,
                _ => {
                    return Err(ConfigError::Env {
                        var: NOTIFICATIONS_ENV,
                        message: format!("'{value}' is not on or off: use 1 or 0"),
                    });
                }
            });
        }
        if let Ok(value) = std::env::var(CALLS_CAPTURE_ENV) {
            config.calls.capture = value.trim().parse().map_err(|message| ConfigError::Env {
                var: CALLS_CAPTURE_ENV,
                message,
            })?;
        }
        if let Ok(value) = std::env::var(STORE_ENV)
            && !value.trim().is_empty()
        {
            config.store.url = Some(value.trim().to_string());
        }
        if let Ok(value) = std::env::var(BIND_ENV) {
            config.proxy.bind = value.parse().map_err(|_| ConfigError::Env {
                var: BIND_ENV,
                message: format!("'{value}' is not an address: use IP:PORT, e.g. 127.0.0.1:7878"),
            })?;
        }
        Ok(config)
    }

    /// `config.toml` alone, as a process that does not share this shell's environment (a
    /// desktop app's `tether stdio`) reads it.
    pub fn load_without_env(paths: &Paths) -> Result<Self, ConfigError> {
        Self::from_file(&paths.config_file())
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })
    }
}
