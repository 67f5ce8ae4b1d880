//! The simulated MCP server's tools (`echo`, `progress`, `whoami`, `admin_report`) and
//! how their outcome goes back: JSON, an SSE stream, or a 403 step-up challenge.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admin;
use super::mcp::{Accepts, Caller, challenge};
use super::server::Shared;
use super::sse;

/// The scope `admin_report` needs, and what the 403 challenge asks for.
const ADMIN_SCOPE: &str = "mcp:admin";
const STEP_UP_SCOPE: &str = "mcp:read mcp:write mcp:admin";

pub(crate) enum Outcome {
    Result(Value),
    Error(i64, String),
    /// The token lacks a scope: HTTP 403 `insufficient_scope`.
    Forbidden,
    Progress {
        steps: u64,
        delay: Duration,
        token: Option<Value>,
        /// The final result carries `resultType` (2026-07-28).
        typed: bool,
    },
    /// `test_reconnection`: the result comes after the client reconnects (SEP-1699), where
    /// the session and the client's `Accept` allow; otherwise at once.
    Reconnect(Value),
}

impl Outcome {
    /// The 2026-07-28 shape: every result says `resultType`, and a cacheable one (a
    /// list) carries its caching hints (SEP-2549).
    pub(crate) fn typed(self, cacheable: bool) -> Self {
        let stamp = |mut result: Value| {
            result["resultType"] = json!("complete");
            if cacheable {
                result["ttlMs"] = json!(60_000);
                result["cacheScope"] = json!("public");
            }
            result
        };
        match self {
            Outcome::Result(r) => Outcome::Result(stamp(r)),
            Outcome::Reconnect(r) => Outcome::Reconnect(stamp(r)),
            Outcome::Progress {
                steps,
                delay,
                token,
                ..
            } => Outcome::Progress {
                steps,
                delay,
                token,
                typed: true,
            },
            other => other,
        }
    }
}

pub(crate) fn list() -> Value {
    // The first tool needs no arguments: generic checkers call it with none.
    json!({ "tools": [
        {
            "name": "whoami",
            "description": "Names the OAuth client and scope of the token used.",
            "inputSchema": { "type": "object", "properties": {} },
        },
        {
            "name": "echo",
            "description": "Returns its text argument unchanged.",
            "inputSchema": {
                "type": "object",
                "properties": { "text": { "type": "string" } },
                "required": ["text"],
            },
        },
        {
            "name": "progress",
            "description": "Reports progress in steps over SSE, then returns.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "steps": { "type": "integer", "minimum": 1, "maximum": 50 },
                    "delay_ms": { "type": "integer", "minimum": 0, "maximum": 5000 },
                },
            },
        },
        {
            "name": "test_reconnection",
            "description": "Closes its SSE stream before answering; the answer comes on the \
                            GET stream the client reopens with Last-Event-ID (SEP-1699).",
            "inputSchema": { "type": "object", "properties": {} },
        },
        {
            "name": "admin_report",
            "description": "Server counters; needs the mcp:admin scope.",
            "inputSchema": { "type": "object", "properties": {} },
        },
    ]})
}

fn text(s: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": s.into() }], "isError": false })
}

pub(crate) fn call(shared: &Shared, caller: &Caller, params: &Value) -> Outcome {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    match name {
        "echo" => match args.get("text").and_then(Value::as_str) {
            Some(t) => Outcome::Result(text(t)),
            None => Outcome::Error(-32602, "echo needs a string argument 'text'".into()),
        },
        "progress" => {
            let steps = args.get("steps").and_then(Value::as_u64).unwrap_or(3);
            let delay = args.get("delay_ms").and_then(Value::as_u64).unwrap_or(100);
            Outcome::Progress {
                steps: steps.clamp(1, 50),
                delay: Duration::from_millis(delay.min(5000)),
                token: params
                    .get("_meta")
                    .and_then(|m| m.get("progressToken"))
                    .cloned(),
                typed: false,
            }
        }
        "whoami" => {
            // Names the client and scope only: the token itself never leaves the store.
            let who = json!({
                "client_id": caller.client_id,
                "scope": caller.scope,
                "profile": shared.cfg.profile.as_str(),
            });
            let mut result = text(who.to_string());
            result["structuredContent"] = who;
            Outcome::Result(result)
        }
        "admin_report" => {
            if !caller.scope.split(' ').any(|s| s == ADMIN_SCOPE) {
                return Outcome::Forbidden;
            }
            let totals = serde_json::to_value(admin::snapshot(shared).totals).unwrap_or_default();
            let mut result = text(totals.to_string());
            result["structuredContent"] = totals;
            Outcome::Result(result)
        }
        "test_reconnection" => {
            Outcome::Reconnect(text("reconnected: the answer survived the closed stream"))
        }
        other => Outcome::Error(-32602, format!("unknown tool '{other}'")),
    }
}

pub(crate) fn message(id: &Value, outcome: Result<Value, (i64, String)>) -> Value {
    match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err((code, msg)) => {
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": msg } })
        }
    }
}

/// A single message answered as JSON, or as a one-event SSE stream when the client
/// accepts only SSE.
fn single(id: Value, outcome: Result<Value, (i64, String)>, accept: Accepts) -> Response {
    let msg = message(&id, outcome);
    if accept.json {
        return Json(msg).into_response();
    }
    let (tx, resp) = sse::channel();
    // The channel holds 16 events; one always fits.
    let _ = tx.try_send(sse::event(1, &msg));
    resp
}

pub(crate) async fn respond(
    shared: &Shared,
    id: Value,
    outcome: Outcome,
    accept: Accepts,
) -> Response {
    match outcome {
        Outcome::Result(r) | Outcome::Reconnect(r) => single(id, Ok(r), accept),
        Outcome::Error(code, m) => single(id, Err((code, m)), accept),
        Outcome::Forbidden => {
            shared.count(|t| t.mcp_403s += 1);
            let metadata = shared.cfg.resource_metadata_url();
            let description = "admin_report needs the mcp:admin scope";
            challenge(
                StatusCode::FORBIDDEN,
                &[
                    ("error", "insufficient_scope"),
                    ("scope", STEP_UP_SCOPE),
                    ("resource_metadata", &metadata),
                    ("error_description", description),
                ],
                message(
                    &id,
                    Err((-32001, format!("insufficient_scope: {description}"))),
                ),
            )
        }
        Outcome::Progress {
            steps,
            delay,
            token,
            typed,
        } => {
            let done = progress_done(steps, typed);
            if !accept.sse {
                tokio::select! {
                    _ = tokio::time::sleep(delay * steps as u32) => {}
                    _ = shared.shutdown.cancelled() => {}
                }
                return single(id, Ok(done), accept);
            }
            stream_progress(shared, id, steps, delay, token, done)
        }
    }
}

/// The progress tool's result, in the 2026-07-28 shape when `typed`.
fn progress_done(steps: u64, typed: bool) -> Value {
    let mut done = text(format!("done: {steps} steps"));
    if typed {
        done["resultType"] = json!("complete");
    }
    done
}

/// Each step is its own SSE event, sent after a pause, then the result closes the stream.
fn stream_progress(
    shared: &Shared,
    id: Value,
    steps: u64,
    delay: Duration,
    token: Option<Value>,
    done: Value,
) -> Response {
    let (tx, resp) = sse::channel();
    let stop = shared.shutdown.clone();
    tokio::spawn(async move {
        for step in 1..=steps {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return,
            }
            let note = match &token {
                Some(t) => json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {
                        "progressToken": t,
                        "progress": step,
                        "total": steps,
                        "message": format!("step {step} of {steps}"),
                    },
                }),
                // Without a progress token MCP forbids progress notifications; a log
                // message still shows the stream moving.
                None => json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/message",
                    "params": { "level": "info", "data": format!("step {step} of {steps}") },
                }),
            };
            if tx.send(sse::event(step, &note)).await.is_err() {
                return;
            }
        }
        let _ = tx
            .send(sse::event(steps + 1, &message(&id, Ok(done))))
            .await;
    });
    resp
}
