//! Sign-in from inside the chat (docs/architecture.md, "One proxied call"). While a
//! connection cannot authenticate until someone signs in — never signed in, a dead grant,
//! a step-up the refresh cannot give — its endpoint still speaks MCP: tether answers
//! `initialize` itself and lists one tool, `sign_in_<name>`, that starts the login on this
//! machine through the engine, as the terminal UI does. Streams the client opened meanwhile
//! are held; once the sign-in lands, each carries `notifications/tools/list_changed`, and
//! a session tether began is joined to the upstream on its next call, so the real tools
//! appear without restarting the client. Anything else gets the JSON-RPC auth error as
//! before.
//!
//! Reached only after the credential lookup every call makes has failed; a healthy call
//! pays one relaxed atomic load (`began_any`) for sessions tether may have begun.

mod join;
mod stream;
mod words;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use crate::Answer;
use crate::forward::own;
use crate::upstream::{Target, Upstream, UpstreamError};
use join::{SESSION, VERSION};
use tether_core::config::ProxyConfig;
use tether_core::engine::Engine;
use tether_core::engine::SignInStart;
use tether_core::oauth::refresh::{AuthError, Current};
use tether_core::vault::{Auth, Connection, Store};

/// How tether's own session ids begin, so a call tells them from an upstream's.
const PREFIX: &str = "tether-signin-";
/// At most this many sessions begun signed out are remembered (past it, the oldest go:
/// their clients meet a 404 and initialize again).
const SESSIONS_KEPT: usize = 1024;
/// At most this many streams are held per connection.
const HELD_PER_CONNECTION: usize = 64;
/// How long a started sign-in is waited on for what the user must do.
const START_PATIENCE: Duration = Duration::from_secs(20);
/// How often a waiting connection is looked at again without a change in the engine.
const RECHECK: Duration = Duration::from_secs(5);

/// The sign-in side of the proxy. Cheap to clone.
#[derive(Clone)]
pub struct SignIn {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    upstream: Upstream,
    /// Whether every client is on this machine: without `[proxy] public_names` the proxy
    /// listens on loopback only (the runtime refuses anything else) and accepts loopback
    /// Host names only. A sign-in on this machine is no answer to a client elsewhere.
    offered: bool,
    began_any: AtomicBool,
    sessions: Mutex<Sessions>,
    waiting: Mutex<HashMap<String, Waiting>>,
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, Arc<Began>>,
    order: std::collections::VecDeque<String>,
}

/// A session tether began while its connection was signed out.
struct Began {
    connection: String,
    /// The client's `initialize` parameters, sent upstream when the session is joined.
    initialize: Value,
    joined: tokio::sync::OnceCell<join::Joined>,
}

/// A connection's held streams, and the token generation they wait to see replaced.
struct Waiting {
    since: Option<u64>,
    held: Vec<stream::Held>,
}

impl SignIn {
    pub fn new(engine: &Engine, upstream: &Upstream, config: &ProxyConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine: engine.clone(),
                upstream: upstream.clone(),
                offered: config.public_names.is_empty(),
                began_any: AtomicBool::new(false),
                sessions: Mutex::new(Sessions::default()),
                waiting: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether any session was begun signed out (then calls may need [`Self::join`]).
    #[inline]
    pub fn began_any(&self) -> bool {
        self.inner.began_any.load(Ordering::Relaxed)
    }

    /// The answer to a call on `connection`, which cannot authenticate for `error`, when a
    /// sign-in from the chat is the answer; `None` when the call gets the auth error.
    pub async fn answer(
        &self,
        connection: &Connection,
        error: &AuthError,
        parts: &Parts,
        body: &Bytes,
    ) -> Option<Answer> {
        let helps = matches!(
            error,
            AuthError::NeedsLogin(_) | AuthError::NeedsReauth { .. }
        );
        if !self.inner.offered || !helps || !matches!(connection.auth, Auth::OAuth { .. }) {
            return None;
        }
        match parts.method {
            Method::POST => self.message(connection, error, parts, body).await,
            Method::GET => self.hold_session(connection, parts),
            Method::DELETE => self.end_session(parts),
            _ => None,
        }
    }

    async fn message(
        &self,
        connection: &Connection,
        error: &AuthError,
        parts: &Parts,
        body: &Bytes,
    ) -> Option<Answer> {
        let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        let method = message.get("method")?.as_str()?;
        let Some(id) = message.get("id").cloned() else {
            // A notification (`notifications/initialized`, a cancellation): nothing to do.
            return Some(own(StatusCode::ACCEPTED));
        };
        let name = connection.name.as_str();
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let reason = || words::reason(name, error);
        match method {
            "initialize" => Some(self.initialize(name, id, params, &reason())),
            "server/discover" => {
                let asked = parts.headers.get(VERSION).and_then(|v| v.to_str().ok());
                let version = words::negotiate(asked);
                let result = words::server_description(name, version, &reason());
                Some(reply(id, result))
            }
            "ping" => Some(reply(id, json!({}))),
            "tools/list" => Some(reply(id, json!({"tools": [words::tool(name, &reason())]}))),
            "tools/call"
                if params.get("name").and_then(Value::as_str) == Some(&words::tool_name(name)) =>
            {
                let start = self.inner.engine.start_sign_in(name, START_PATIENCE).await;
                Some(reply(id, words::started(name, &start)))
            }
            "subscriptions/listen" => {
                let tools = params.pointer("/notifications/toolsListChanged") == Some(&json!(true));
                let honoured = if tools {
                    json!({"toolsListChanged": true})
                } else {
                    json!({})
                };
                let ack = json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/subscriptions/acknowledged",
                    "params": {
                        "notifications": honoured,
                        "_meta": {"io.modelcontextprotocol/subscriptionId": id},
                    },
                });
                let (held, answer) = stream::hold(stream::Kind::Listen { id, tools }, Some(ack));
                self.wait(connection, held);
                Some(answer)
            }
            _ => None,
        }
    }

    /// tether's own `initialize` result; a session of its own for the revisions that have
    /// them, remembered with the client's parameters to join it upstream later.
    fn initialize(&self, name: &str, id: Value, params: Value, reason: &str) -> Answer {
        let asked = params.get("protocolVersion").and_then(Value::as_str);
        let version = words::negotiate(asked);
        let mut answer = reply(id, words::server_description(name, version, reason));
        if version < words::STATELESS_FROM {
            let session = new_session_id();
            if let Ok(value) = HeaderValue::from_str(&session) {
                answer.headers_mut().insert(SESSION, value);
            }
            let began = Began {
                connection: name.to_string(),
                initialize: params,
                joined: tokio::sync::OnceCell::new(),
            };
            if let Ok(mut sessions) = self.inner.sessions.lock() {
                sessions.by_id.insert(session.clone(), Arc::new(began));
                sessions.order.push_back(session);
                while sessions.order.len() > SESSIONS_KEPT {
                    if let Some(old) = sessions.order.pop_front() {
                        sessions.by_id.remove(&old);
                    }
                }
            }
            self.inner.began_any.store(true, Ordering::Relaxed);
        }
        answer
    }

    /// A 2025 session's GET stream, held until the sign-in. A session the upstream began
    /// (the connection was signed in when it started) hears at once that the tools changed:
    /// its client may still show the upstream's.
    fn hold_session(&self, connection: &Connection, parts: &Parts) -> Option<Answer> {
        let session = parts.headers.get(SESSION)?.to_str().ok()?;
        let ours = session.starts_with(PREFIX);
        if ours && self.began(session)?.connection != connection.name.as_str() {
            return None;
        }
        let (held, answer) = stream::hold(stream::Kind::Session, None);
        if !ours {
            held.announce();
        }
        self.wait(connection, held);
        Some(answer)
    }

    /// A client ending a session tether began.
    fn end_session(&self, parts: &Parts) -> Option<Answer> {
        let session = parts.headers.get(SESSION)?.to_str().ok()?;
        let mut sessions = self.inner.sessions.lock().ok()?;
        sessions.by_id.remove(session)?;
        sessions.order.retain(|s| s != session);
        Some(own(StatusCode::OK))
    }

    fn began(&self, session: &str) -> Option<Arc<Began>> {
        self.inner.sessions.lock().ok()?.by_id.get(session).cloned()
    }

    /// Holds `held` for `connection`, with a watcher for its sign-in if none runs.
    fn wait(&self, connection: &Connection, held: stream::Held) {
        let name = connection.name.as_str();
        let Ok(mut waiting) = self.inner.waiting.lock() else {
            return;
        };
        let first = !waiting.contains_key(name);
        let entry = waiting.entry(name.to_string()).or_insert_with(|| Waiting {
            since: connection.token.as_ref().map(|t| t.generation),
            held: Vec::new(),
        });
        entry.held.retain(stream::Held::open);
        if entry.held.len() >= HELD_PER_CONNECTION {
            entry.held.remove(0);
        }
        entry.held.push(held);
        if first {
            let this = self.clone();
            let name = name.to_string();
            tokio::spawn(async move { this.watch(&name).await });
        }
    }

    /// Waits for `name`'s sign-in — from this tool, the terminal UI or `tether login` — and
    /// then tells every held stream; stops when no client holds one any more.
    async fn watch(&self, name: &str) {
        let engine = &self.inner.engine;
        let mut state = engine.handle().state;
        loop {
            let since = {
                let Ok(mut waiting) = self.inner.waiting.lock() else {
                    return;
                };
                let Some(entry) = waiting.get_mut(name) else {
                    return;
                };
                entry.held.retain(stream::Held::open);
                if entry.held.is_empty() {
                    waiting.remove(name);
                    return;
                }
                entry.since
            };
            if generation(&engine.store(), name) > since && engine.credential(name).await.is_ok() {
                let held = self
                    .inner
                    .waiting
                    .lock()
                    .ok()
                    .and_then(|mut w| w.remove(name))
                    .map(|w| w.held)
                    .unwrap_or_default();
                tracing::info!(
                    "'{name}' is signed in: {} waiting client stream(s) told",
                    held.len()
                );
                for held in held {
                    held.signed_in();
                }
                return;
            }
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// The call's head with a session tether began replaced by the upstream's, the
    /// session joined upstream first if this is its first call since the sign-in; `None`
    /// for any other call.
    pub async fn join(
        &self,
        connection: &Connection,
        target: &Target,
        current: &Current,
        parts: &Parts,
    ) -> Result<Option<Parts>, UpstreamError> {
        let Some(session) = parts
            .headers
            .get(SESSION)
            .and_then(|v| v.to_str().ok())
            .filter(|s| s.starts_with(PREFIX))
        else {
            return Ok(None);
        };
        let Some(began) = self.began(session) else {
            return Ok(None);
        };
        if began.connection != connection.name.as_str() {
            return Ok(None);
        }
        let upstream = &self.inner.upstream;
        let joined = began
            .joined
            .get_or_try_init(|| join::join(upstream, target, current, &began.initialize))
            .await;
        let joined = match joined {
            Ok(joined) => joined,
            // The call goes on as it is and meets the refusal itself: the forwarder refreshes
            // once, and a connection still signed out answers from here again.
            Err(join::JoinError::Refused) => return Ok(None),
            Err(join::JoinError::Upstream(e)) => return Err(e),
        };
        if parts.method == Method::DELETE {
            self.end_session(parts);
        }
        let mut parts = parts.clone();
        match &joined.session {
            Some(id) => parts.headers.insert(SESSION, id.clone()),
            None => parts.headers.remove(SESSION),
        };
        if let Some(version) = &joined.version
            && parts.headers.contains_key(VERSION)
        {
            parts.headers.insert(VERSION, version.clone());
        }
        Ok(Some(parts))
    }
}

/// The generation of `name`'s token in `store`, if it has one.
fn generation(store: &Store, name: &str) -> Option<u64> {
    store.get(name)?.token.as_ref().map(|t| t.generation)
}

impl SignIn {
    /// A `tools/call` refused for scope the grant lacks (`insufficient_scope`, `wanted`
    /// recorded for the next sign-in): on this machine tether does the step-up itself — it
    /// starts the sign-in that asks for that scope, once while one waits — and answers the
    /// call with what the user must do, as a tool result the assistant shows; or, when the
    /// sign-in ended at once (a server that consents without asking), says so, for the call
    /// to be sent again.
    pub async fn step_up(&self, name: &str, wanted: &str, body: &Bytes) -> StepUp {
        if !self.inner.offered {
            return StepUp::NotHere;
        }
        let Ok(call) = serde_json::from_slice::<Value>(body) else {
            return StepUp::NotHere;
        };
        let (Some("tools/call"), Some(id)) =
            (call.get("method").and_then(Value::as_str), call.get("id"))
        else {
            return StepUp::NotHere;
        };
        let engine = &self.inner.engine;
        let start = if engine.signing_in(name) {
            None
        } else {
            Some(engine.start_sign_in(name, START_PATIENCE).await)
        };
        if start == Some(SignInStart::Finished) {
            return StepUp::SignedIn;
        }
        StepUp::Answer(Box::new(reply(
            id.clone(),
            words::stepped_up(name, wanted, start.as_ref()),
        )))
    }
}

/// What tether did about a call that needs more scope (see [`SignIn::step_up`]).
pub enum StepUp {
    /// Nothing: the client is told with the auth error.
    NotHere,
    /// The call's answer: a sign-in started, or one already waits.
    Answer(Box<Answer>),
    /// Signed in again already, with the scope asked for: send the call again.
    SignedIn,
}

fn reply(id: Value, result: Value) -> Answer {
    own(axum::Json(
        json!({"jsonrpc": "2.0", "id": id, "result": result}),
    ))
}

fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes[..]);
    let mut id = String::from(PREFIX);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}
