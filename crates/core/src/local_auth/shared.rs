//! The sign-in requests waiting in the proxy, shared with the terminal UIs of other
//! processes: the tether that serves the proxy (the service, `tether serve`) writes them to
//! `consents.json` beside the vault, 0600, replaced whole on every change and removed when
//! none wait or it stops. A terminal UI watching that proxy reads the file to show them,
//! and its engine answers one by posting the page's form to the proxy — after the address
//! proved it holds this vault (`presence`), with a proof only a holder of the vault key can
//! make, so the answer counts on systems that cannot tell whose socket is asking.
//!
//! Answering from a terminal decides and nothing more: the code is minted when the browser
//! that waits on the consent page next asks, and goes back to the client from there.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize, Serializer};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::consent::{Consents, Decision, REQUEST_LIFE, Request};
use super::paths;
use crate::presence::{self, Presence};
use crate::secret::Secret;
use crate::vault::{Key, Vault};

/// The file's name, beside the vault (and `serving.json`).
pub const FILE: &str = "consents.json";
/// The form field of an answer given in a terminal UI: the proof (see [`proof`]).
pub const PROOF_FIELD: &str = "proof";
/// How long an answer to the proxy may take: it answers in milliseconds.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The requests waiting in one proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Board {
    /// Where the proxy that holds them listens.
    pub addr: SocketAddr,
    /// The process that wrote the file.
    pub pid: u32,
    pub requests: Vec<Waiting>,
}

/// One request, as the consent page shows it, and the page's form token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub id: String,
    #[serde(serialize_with = "exposed")]
    pub form_token: Secret,
    /// What the client calls itself, as it registered: untrusted, shown made printable.
    pub client_name: String,
    pub connection: String,
    pub redirect_uri: String,
    pub asked_at: DateTime<Utc>,
}

impl Waiting {
    /// The request as front ends show it.
    pub fn request(&self) -> Request {
        Request {
            id: self.id.clone(),
            client_name: self.client_name.clone(),
            connection: self.connection.clone(),
            redirect_uri: self.redirect_uri.clone(),
            decision: Decision::Waiting,
        }
    }

    /// Whether it still waits at `now` (a request lives ten minutes).
    pub fn alive(&self, now: DateTime<Utc>) -> bool {
        chrono::Duration::from_std(REQUEST_LIFE)
            .is_ok_and(|life| now.signed_duration_since(self.asked_at) < life)
    }
}

/// The form token is written as it is: the file is the user's alone (0600).
fn exposed<S: Serializer>(token: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(token.expose())
}

/// The file beside the vault at `vault_file`.
pub fn path_beside(vault_file: &Path) -> PathBuf {
    vault_file
        .parent()
        .map_or_else(|| PathBuf::from(FILE), |dir| dir.join(FILE))
}

/// The board as written, if there is a readable one.
pub fn read(path: &Path) -> Option<Board> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes are serialized, and each takes its snapshot under the lock: whichever runs last
/// writes the newest requests.
static WRITING: Mutex<()> = Mutex::new(());

/// Shares what waits in `consents` of the proxy on `addr`: the file replaced whole
/// (written to a temporary file, 0600, then renamed over), or removed when nothing waits.
/// A request keeps the time it was first written. Blocking: call it off the runtime.
pub fn publish(path: &Path, addr: SocketAddr, consents: &Consents) -> std::io::Result<()> {
    let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let waiting: Vec<(Request, String)> = consents
        .waiting()
        .into_iter()
        .filter_map(|r| consents.get(&r.id))
        .collect();
    let pid = std::process::id();
    if waiting.is_empty() {
        return withdraw(path);
    }
    let before = read(path).filter(|b| b.pid == pid && b.addr == addr);
    let now = Utc::now();
    let requests = waiting
        .into_iter()
        .map(|(r, token)| {
            let asked_at = before
                .as_ref()
                .and_then(|b| b.requests.iter().find(|w| w.id == r.id))
                .map_or(now, |w| w.asked_at);
            Waiting {
                id: r.id,
                form_token: Secret::new(token),
                client_name: r.client_name,
                connection: r.connection,
                redirect_uri: r.redirect_uri,
                asked_at,
            }
        })
        .collect();
    write(
        path,
        &Board {
            addr,
            pid,
            requests,
        },
    )
}

fn write(path: &Path, board: &Board) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(board).map_err(std::io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    // A temporary file is created 0600, so the form tokens are never readable by others,
    // not even for a moment.
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, &json)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Removes the file if this process wrote it (on a clean stop, or when nothing waits).
pub fn withdraw(path: &Path) -> std::io::Result<()> {
    match read(path) {
        Some(b) if b.pid != std::process::id() => Ok(()),
        _ => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// The requests waiting in the proxy on `addr` at `now`, as the file says.
pub fn waiting_at(path: &Path, addr: SocketAddr, now: DateTime<Utc>) -> Vec<Waiting> {
    read(path)
        .filter(|b| b.addr == addr)
        .map(|b| b.requests.into_iter().filter(|w| w.alive(now)).collect())
        .unwrap_or_default()
}

fn mac(key: &Key, id: &str, allow: bool) -> hmac::Hmac<Sha256> {
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC accepts any key length");
    mac.update(b"tether consent answer v1\0");
    mac.update(id.as_bytes());
    mac.update(if allow { b"\0allow" } else { b"\0deny" });
    mac
}

/// The proof that an answer to request `id` comes from a process holding this vault.
pub fn proof(key: &Key, id: &str, allow: bool) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(mac(key, id, allow).finalize().into_bytes())
}

/// Whether `given` is the proof for that answer.
pub fn proof_matches(key: &Key, id: &str, allow: bool, given: &str) -> bool {
    bool::from(proof(key, id, allow).as_bytes().ct_eq(given.as_bytes()))
}

/// Why an answer given in a terminal UI did not reach the proxy that holds the request.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("that sign-in request is no longer waiting (answered, or older than 10 minutes)")]
    Gone,
    #[error("the sign-in was not answered: {0}")]
    NotOurs(String),
    #[error(
        "the sign-in was not answered: the proxy at {addr} could not be reached ({why}); answer on the page in the browser"
    )]
    Unreachable { addr: SocketAddr, why: String },
    #[error(
        "the sign-in was not answered: the proxy at {addr} refused the answer (HTTP {status}); answer on the page in the browser"
    )]
    Refused { addr: SocketAddr, status: u16 },
}

fn loopback_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(ANSWER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default()
    })
}

/// Answers request `id`, waiting in the proxy another tether serves on `addr`: its form
/// token from the file, sent only once the address proved it holds `vault`.
pub async fn answer_elsewhere(
    vault: &Vault,
    addr: SocketAddr,
    id: &str,
    allow: bool,
) -> Result<(), AnswerError> {
    let path = path_beside(vault.location());
    let waiting = tokio::task::spawn_blocking(move || waiting_at(&path, addr, Utc::now()))
        .await
        .unwrap_or_default();
    let Some(request) = waiting.into_iter().find(|w| w.id == id) else {
        return Err(AnswerError::Gone);
    };
    match presence::probe(addr, vault).await {
        Presence::Ours => {}
        Presence::Stranger(what) => {
            return Err(AnswerError::NotOurs(presence::stranger_on(addr, &what)));
        }
        Presence::Nobody => {
            return Err(AnswerError::Unreachable {
                addr,
                why: "nothing listens there any more".to_string(),
            });
        }
    }
    let decision = if allow { "allow" } else { "deny" };
    let proof = proof(vault.presence_key(), id, allow);
    let sent = loopback_client()
        .post(format!("http://{addr}{}/{id}", paths::CONSENT))
        .form(&[
            ("csrf", request.form_token.expose()),
            ("decision", decision),
            (PROOF_FIELD, proof.as_str()),
        ])
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => Err(AnswerError::Gone),
        Ok(r) => Err(AnswerError::Refused {
            addr,
            status: r.status().as_u16(),
        }),
        Err(e) => Err(AnswerError::Unreachable {
            addr,
            why: e.without_url().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::local_auth::consent::Ask;

    fn ask(name: &str) -> Ask {
        Ask {
            client_id: "c1".into(),
            client_name: name.into(),
            connection: "linear".into(),
            redirect_uri: "http://127.0.0.1:4444/callback".into(),
            state: None,
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            resource: "http://127.0.0.1:7878/c/linear/mcp".into(),
            issuer: "http://127.0.0.1:7878".into(),
        }
    }

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7878))
    }

    #[test]
    fn what_waits_round_trips_through_a_file_only_the_user_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_beside(&dir.path().join("vault.tether"));
        let consents = Consents::default();
        let (first, token) = consents.ask(ask("Codex"));
        publish(&path, addr(), &consents).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");

        let board = read(&path).unwrap();
        assert_eq!(board.addr, addr());
        assert_eq!(board.pid, std::process::id());
        assert_eq!(board.requests.len(), 1);
        let w = &board.requests[0];
        assert_eq!(
            (w.id.as_str(), w.form_token.expose()),
            (first.as_str(), token.as_str())
        );
        assert_eq!(w.request(), consents.get(&first).unwrap().0);
        assert!(
            !format!("{w:?}").contains(&token),
            "the token is masked in logs"
        );

        // A second request keeps the first one's time; answering one removes it.
        let asked_at = w.asked_at;
        let (second, _) = consents.ask(ask("Claude Code"));
        publish(&path, addr(), &consents).unwrap();
        let now = Utc::now();
        let ids: Vec<_> = waiting_at(&path, addr(), now)
            .into_iter()
            .map(|w| (w.id, w.asked_at))
            .collect();
        assert_eq!(ids[0], (first.clone(), asked_at));
        assert_eq!(ids[1].0, second);
        assert!(
            waiting_at(&path, SocketAddr::from(([127, 0, 0, 1], 1)), now).is_empty(),
            "another proxy's"
        );

        consents.decide(&first, true);
        publish(&path, addr(), &consents).unwrap();
        let left: Vec<_> = waiting_at(&path, addr(), now)
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(left, std::slice::from_ref(&second));
        consents.decide(&second, false);
        publish(&path, addr(), &consents).unwrap();
        assert!(!path.exists(), "removed when nothing waits");
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_beside(&dir.path().join("vault.tether"));
        let consents = Consents::default();
        consents.ask(ask("Codex"));
        publish(&path, addr(), &consents).unwrap();
        let before = std::fs::metadata(&path).unwrap();
        consents.ask(ask("Claude Code"));
        publish(&path, addr(), &consents).unwrap();
        let after = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_ne!(
            before.ino(),
            after.ino(),
            "renamed over, never rewritten in place"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [FILE]);
    }

    #[test]
    fn another_process_file_is_not_withdrawn_and_old_requests_are_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_beside(&dir.path().join("vault.tether"));
        let now = Utc::now();
        let waiting = |minutes: i64| Waiting {
            id: format!("id{minutes}"),
            form_token: Secret::new("t"),
            client_name: "Codex".into(),
            connection: "linear".into(),
            redirect_uri: "http://127.0.0.1:1/cb".into(),
            asked_at: now - chrono::Duration::minutes(minutes),
        };
        let board = Board {
            addr: addr(),
            pid: std::process::id() + 1,
            requests: vec![waiting(11), waiting(9)],
        };
        write(&path, &board).unwrap();
        let ids: Vec<_> = waiting_at(&path, addr(), now)
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(ids, ["id9"], "ten minutes is the request's life");
        withdraw(&path).unwrap();
        assert!(path.exists(), "another process's file stays");
    }

    #[test]
    fn a_proof_is_for_one_request_one_answer_and_one_vault() {
        let key = Key::from_bytes([7; 32]);
        let p = proof(&key, "abc", true);
        assert!(proof_matches(&key, "abc", true, &p));
        assert!(!proof_matches(&key, "abc", false, &p));
        assert!(!proof_matches(&key, "abd", true, &p));
        assert!(!proof_matches(&Key::from_bytes([8; 32]), "abc", true, &p));
        assert_ne!(
            p,
            presence::answer(&key, "abc", 7878),
            "not a presence answer"
        );
    }
}
