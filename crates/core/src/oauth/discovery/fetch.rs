//! The HTTP side of discovery: the unauthenticated probe and bounded metadata GETs, each
//! recorded as a [`TriedUrl`] so a failed discovery can show exactly what was asked.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use url::Url;

use crate::vault::TriedUrl;

/// Metadata documents are a few KiB; anything past this is refused so a hostile or broken
/// server cannot make tether hold an unbounded body in memory.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;

/// What a metadata GET produced.
pub enum Fetched {
    /// A 200 whose body was read in full (within the cap).
    Body(String),
    /// Any other answer, or a body that could not be used; already recorded.
    Miss,
    /// No HTTP answer at all (connection, TLS, timeout); already recorded.
    NoAnswer(String),
}

/// What the probe produced.
pub struct Probe {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

fn record(tried: &mut Vec<TriedUrl>, url: &Url, status: Option<u16>, error: Option<String>) {
    tracing::debug!(url = %url, ?status, ?error, "discovery request");
    tried.push(TriedUrl {
        url: url.to_string(),
        status,
        error,
    });
}

/// A short reason for a request that got no answer, without the URL reqwest puts in its
/// own message (the URL is recorded beside it already).
pub fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".into();
    }
    let mut innermost: &dyn std::error::Error = err;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let detail = innermost.to_string();
    if err.is_connect() {
        format!("could not connect: {detail}")
    } else if err.is_redirect() {
        format!("redirect refused: {detail}")
    } else {
        detail
    }
}

/// POSTs an MCP `initialize` without a token: a protected server answers 401 and names its
/// metadata in `WWW-Authenticate`.
pub async fn probe(
    http: &reqwest::Client,
    mcp_url: &Url,
    tried: &mut Vec<TriedUrl>,
) -> Result<Probe, String> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": { "name": "tether", "version": env!("CARGO_PKG_VERSION") },
        },
    });
    let sent = http
        .post(mcp_url.clone())
        .header(ACCEPT, "application/json, text/event-stream")
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Ok(resp) => {
            // Not followed, even on the same origin: the proxy will not follow it either,
            // so the note tells the user which URL the server prefers.
            let note = crate::http::redirect_target(&resp).map(|t| format!("redirected to '{t}'"));
            record(tried, mcp_url, Some(resp.status().as_u16()), note);
            // The body is dropped unread: a 2xx may be an endless event stream.
            Ok(Probe {
                status: resp.status(),
                headers: resp.headers().clone(),
            })
        }
        Err(e) => {
            let reason = describe(&e);
            record(tried, mcp_url, None, Some(reason.clone()));
            Err(reason)
        }
    }
}

/// Redirects followed for one metadata document, all on its own origin.
const MAX_REDIRECTS: usize = 5;

/// GETs a metadata document. Only a 200 with a UTF-8 body of at most
/// [`MAX_METADATA_BYTES`] counts; every URL asked is recorded once. Redirects are followed
/// on the same origin only (scheme, host and port): metadata from another origin would
/// let that origin speak for this one, so such a redirect is not even requested.
pub async fn get_document(http: &reqwest::Client, url: &Url, tried: &mut Vec<TriedUrl>) -> Fetched {
    let mut current = url.clone();
    for hop in 0..=MAX_REDIRECTS {
        let resp = match http
            .get(current.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let reason = describe(&e);
                record(tried, &current, None, Some(reason.clone()));
                return Fetched::NoAnswer(reason);
            }
        };
        let status = resp.status().as_u16();
        if crate::http::is_redirect(resp.status()) {
            let Some(next) = crate::http::location(&resp) else {
                let error = "a redirect without a usable Location; not used".to_string();
                record(tried, &current, Some(status), Some(error));
                return Fetched::Miss;
            };
            let shown = crate::http::shown(&next);
            if next.origin() != url.origin() {
                let error = format!("redirected to another origin ('{shown}'); not followed");
                record(tried, &current, Some(status), Some(error));
                return Fetched::Miss;
            }
            if hop == MAX_REDIRECTS {
                let error = format!("more than {MAX_REDIRECTS} redirects; not used");
                record(tried, &current, Some(status), Some(error));
                return Fetched::Miss;
            }
            record(
                tried,
                &current,
                Some(status),
                Some(format!("redirected to '{shown}'")),
            );
            current = next;
            continue;
        }
        if resp.status() != StatusCode::OK {
            record(tried, &current, Some(status), None);
            return Fetched::Miss;
        }
        return match read_capped(resp).await {
            Ok(body) => {
                record(tried, &current, Some(status), None);
                Fetched::Body(body)
            }
            Err(error) => {
                record(tried, &current, Some(status), Some(error));
                Fetched::Miss
            }
        };
    }
    Fetched::Miss
}

async fn read_capped(mut resp: reqwest::Response) -> Result<String, String> {
    let too_big = || {
        format!(
            "the document is larger than {} KiB",
            MAX_METADATA_BYTES / 1024
        )
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_METADATA_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_METADATA_BYTES {
                    return Err(too_big());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(format!("the body broke off: {}", describe(&e))),
        }
    }
    String::from_utf8(body).map_err(|_| "the document is not UTF-8 text".to_string())
}

/// Marks the last recorded try (a 200 whose document was unusable) with the reason.
pub fn note_unusable(tried: &mut [TriedUrl], reason: &str) {
    if let Some(last) = tried.last_mut() {
        last.error = Some(reason.to_string());
    }
}
