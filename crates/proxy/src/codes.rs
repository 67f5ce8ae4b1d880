//! The JSON-RPC error codes tether answers a client's request with when it cannot pass the
//! request on — one table, which the README's table is checked against, so the code a
//! client sees and the documentation cannot drift apart.

use tether_core::vault::DiagnosisCode;

/// One code: its number, its name in `data`, and what it tells a client.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode {
    pub code: i64,
    pub name: &'static str,
    pub meaning: &'static str,
}

/// The connection cannot authenticate: it must sign in again, needs more scope, or its API
/// key was rejected. Retrying will not help; the message says what will.
pub const AUTH: ErrorCode = ErrorCode {
    code: -32001,
    name: "auth",
    meaning: "the connection cannot authenticate (sign in again, more scope, a rejected API key)",
};

/// The upstream MCP server or its authorization server is unreachable or answered
/// unusably; tether retries by itself (`tether stdio` also uses it when the local proxy
/// does not answer).
pub const UNREACHABLE: ErrorCode = ErrorCode {
    code: -32002,
    name: "upstream_unreachable",
    meaning: "the upstream or its authorization server is unreachable or its answer unusable; tether retries by itself",
};

/// A request other than `tools/call` got no answer within `upstream_timeout_secs`.
pub const TIMEOUT: ErrorCode = ErrorCode {
    code: -32003,
    name: "upstream_timeout",
    meaning: "a request other than tools/call got no answer within upstream_timeout_secs",
};

/// Every code tether answers with, for the documentation's table.
pub const ALL: [ErrorCode; 3] = [AUTH, UNREACHABLE, TIMEOUT];

/// The code for a request that failed with `diagnosis`: unreachable servers are not an
/// authentication problem, whatever part of the exchange met them.
pub fn for_diagnosis(diagnosis: Option<DiagnosisCode>) -> ErrorCode {
    match diagnosis {
        Some(DiagnosisCode::UpstreamUnreachable) => UNREACHABLE,
        _ => AUTH,
    }
}
