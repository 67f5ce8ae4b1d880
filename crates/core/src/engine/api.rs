//! The engine's face toward its front ends (the TUI, `serve`, the CLI): the state it
//! publishes, the events it emits and the commands it accepts. A front end holds an
//! [`EngineHandle`] and never touches the network or the vault directly.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, watch};

pub use crate::oauth::authorize::{LoginStep, StepOutcome};
use crate::secret::Secret;
use crate::vault::{KeySource, Store};

/// What a front end holds.
#[derive(Clone)]
pub struct EngineHandle {
    /// The latest published state; `changed()` wakes a front end when it moves.
    pub state: watch::Receiver<Arc<EngineState>>,
    /// Transient events (notices, login progress, endpoints); `subscribe()` to listen.
    pub events: broadcast::Sender<EngineEvent>,
    pub commands: mpsc::UnboundedSender<EngineCommand>,
}

impl EngineHandle {
    /// Sends a command; a stopped engine just drops it.
    pub fn send(&self, command: EngineCommand) {
        let _ = self.commands.send(command);
    }
}

/// Everything a front end draws, as one snapshot.
#[derive(Debug, Clone)]
pub struct EngineState {
    /// The vault as last seen, whether this process or another one changed it.
    pub store: Arc<Store>,
    /// When the scheduler will next refresh each connection's token.
    pub next_refresh: BTreeMap<String, DateTime<Utc>>,
    pub proxy: ProxyStatus,
    pub key_source: KeySource,
    /// Per connection, per downstream client label.
    pub traffic: BTreeMap<String, BTreeMap<String, ClientTraffic>>,
    /// Connections with a login in progress in this process.
    pub logins: BTreeMap<String, LoginProgress>,
    /// The newest calls through this process's proxy, per connection, newest last.
    pub calls: Arc<crate::calls::Rings>,
    /// Clients signing in to this process's proxy, waiting for the user's consent.
    pub consents: Vec<crate::local_auth::consent::Request>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyStatus {
    /// This process serves the local endpoints.
    Serving { addr: SocketAddr },
    /// Another tether process already serves them; this one watches the shared vault.
    /// `service` names the service manager that runs it (`systemd`, `launchd`), if one does.
    ServedElsewhere {
        addr: SocketAddr,
        service: Option<String>,
    },
    /// No proxy (e.g. a CLI command), with the reason.
    Off { reason: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTraffic {
    pub requests: u64,
    pub errors: u64,
    pub last_seen: Option<DateTime<Utc>>,
    /// Requests and errors per minute, oldest first, the current minute last (≤ 60).
    pub per_minute: VecDeque<MinuteCount>,
    /// How long the upstream took to answer (to its response headers).
    pub latency: Latency,
}

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// A latency histogram: calls per bucket of [`LATENCY_BUCKETS`] (slower ones in none)
/// and the sum of all latencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latency {
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub sum_micros: u64,
}

impl Latency {
    pub fn observe(&mut self, latency: std::time::Duration) {
        self.sum_micros = self
            .sum_micros
            .saturating_add(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        let secs = latency.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteCount {
    pub requests: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginProgress {
    pub steps: Vec<(LoginStep, StepOutcome)>,
}

#[derive(Debug, Clone)]
pub enum EngineEvent {
    Notice {
        level: NoticeLevel,
        text: String,
    },
    /// One step of a login moved on (also reflected in `EngineState::logins`).
    LoginStep {
        connection: String,
        step: LoginStep,
        outcome: StepOutcome,
    },
    /// A downstream client's endpoint, created or shown again (the secret URL is shown
    /// to the user only, never logged).
    Endpoint {
        connection: String,
        label: String,
        url: Secret,
    },
    /// A local client keeps presenting an endpoint secret the proxy refuses (revoked,
    /// mistyped, another connection's): said once per target, at the
    /// [`REFUSALS_TO_TELL`]th refusal. `connection`: the one named in the path
    /// (`/c/<name>/mcp`), `None` for a secret path (`/s/<secret>/mcp`) tether does not know.
    SecretRefused {
        connection: Option<String>,
        count: u64,
    },
}

/// Refusals of one target's endpoint secrets before [`EngineEvent::SecretRefused`] says so.
pub const REFUSALS_TO_TELL: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone)]
pub enum EngineCommand {
    Add {
        name: String,
        url: String,
        auth: AddAuth,
    },
    /// Authorize (or re-authorize) with the current client registration.
    Login {
        name: String,
    },
    /// Register a new client (keeping the old one as legacy), then authorize.
    Reauthorize {
        name: String,
    },
    CancelLogin {
        name: String,
    },
    /// The address a browser on another machine ended on, for the login in progress
    /// (it carries the authorization code: masked when printed).
    PasteRedirect {
        name: String,
        address: Secret,
    },
    Refresh {
        name: String,
    },
    /// The user's answer to a client signing in to tether itself.
    Consent {
        id: String,
        allow: bool,
    },
    Remove {
        name: String,
    },
    /// Remove a connection only while it has never been authorized (no token): the add
    /// wizard, cancelled, sends it, even before its `Add` shows in the state it sees.
    Abandon {
        name: String,
    },
    CleanOrphans {
        name: String,
    },
    /// Create, or show again, a downstream client's endpoint.
    ClientEndpoint {
        name: String,
        label: String,
    },
    RevokeClient {
        name: String,
        label: String,
    },
}

pub use crate::connections::AddAuth;
