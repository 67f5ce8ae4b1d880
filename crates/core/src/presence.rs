//! Whether the tether answering on the proxy port is one holding this vault, proved before
//! anything is sent to it. Another local user can take the port first and answer
//! `/healthz` like tether does; a client's secret and its MCP traffic would then go to them.
//!
//! The caller sends a fresh random challenge; the proxy answers with an HMAC over it and
//! the port it serves, keyed by a key derived from the vault key (which only processes
//! that can open this vault hold). The port is in the MAC so a squatter cannot relay the
//! challenge to a real tether on another port and pass its answer off as its own.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::vault::{Key, Vault};

/// The query parameter of `/healthz` that carries the challenge.
pub const CHALLENGE_PARAM: &str = "challenge";
/// A challenge longer than this is not answered (a real one is 43 characters).
pub const MAX_CHALLENGE_LEN: usize = 128;
/// How long a probe waits for an answer: a tether answers in milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Who holds the proxy address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// A tether that proved it holds this vault.
    Ours,
    /// Something else, described for the user: a tether over another vault, another
    /// program, or one that does not answer.
    Stranger(String),
    /// Nothing listens there.
    Nobody,
}

/// The proof for `challenge` from a proxy serving `port`.
pub fn answer(key: &Key, challenge: &str, port: u16) -> String {
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC accepts any key length");
    mac.update(b"tether proxy presence v1\0");
    mac.update(&port.to_be_bytes());
    mac.update(b"\0");
    mac.update(challenge.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn new_challenge() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Asks whoever listens on `addr` to prove it holds `vault`. Sends no secret: only a
/// random challenge, to `/healthz`, following no redirect.
pub async fn probe(addr: SocketAddr, vault: &Vault) -> Presence {
    let Ok(client) = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
    else {
        return Presence::Stranger("an address tether could not check".to_string());
    };
    let challenge = new_challenge();
    let url = format!("http://{addr}/healthz?{CHALLENGE_PARAM}={challenge}");
    let response = match client.get(url).send().await {
        Ok(response) => response,
        Err(e) if e.is_connect() => return Presence::Nobody,
        Err(e) if e.is_timeout() => {
            return Presence::Stranger("a program that does not answer HTTP".to_string());
        }
        Err(_) => return Presence::Stranger("a program that does not speak HTTP".to_string()),
    };
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if body["service"] != "tether" {
        return Presence::Stranger(format!("a program that is not tether (HTTP {status})"));
    }
    let expected = answer(vault.presence_key(), &challenge, addr.port());
    let given = body["proof"].as_str().unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Presence::Ours
    } else {
        Presence::Stranger(
            "a program calling itself tether that cannot prove it holds this vault (another user's tether, another vault, or an impostor)"
                .to_string(),
        )
    }
}

/// One sentence about a stranger on `addr`, with what to do.
pub fn stranger_on(addr: SocketAddr, what: &str) -> String {
    format!(
        "{addr} is held by {what}; tether sends it nothing. Stop whatever listens there (`ss -ltnp 'sport = :{}'` names it), or choose another address with --bind or [proxy] bind in config.toml",
        addr.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_depends_on_key_port_and_challenge() {
        let key = Key::from_bytes([7; 32]);
        let other = Key::from_bytes([8; 32]);
        let a = answer(&key, "abc", 7878);
        assert_eq!(a, answer(&key, "abc", 7878));
        assert_ne!(a, answer(&other, "abc", 7878));
        assert_ne!(a, answer(&key, "abd", 7878));
        assert_ne!(
            a,
            answer(&key, "abc", 7879),
            "a relay to another port fails"
        );
        assert!(!a.contains(&URL_SAFE_NO_PAD.encode([7u8; 32])));
    }

    #[test]
    fn challenges_are_fresh() {
        assert_ne!(new_challenge(), new_challenge());
        assert_eq!(new_challenge().len(), 43);
    }
}
