//! Finding (or, for a new vault, creating) the vault key: the OS keyring first; where no
//! keyring service is reachable, `TETHER_VAULT_KEY` or a 0600 key file beside the vault.
//!
//! A key is only ever created when there is no vault yet: creating one for an existing
//! vault would make it unreadable, so that case is an error naming where the key was
//! expected.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::crypto::{Key, KeyHint};
use crate::config::KeySourceChoice;

pub const KEY_ENV: &str = "TETHER_VAULT_KEY";
const KEYRING_SERVICE: &str = "tether";

/// Where this process got its key, with the reason a fallback was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Keyring,
    Env,
    File {
        path: PathBuf,
        /// Why the keyring was not used, when the user did not choose the file.
        fallback_reason: Option<String>,
    },
}

impl KeySource {
    pub fn hint(&self) -> KeyHint {
        match self {
            KeySource::Keyring => KeyHint::Keyring,
            KeySource::Env => KeyHint::Env,
            KeySource::File { .. } => KeyHint::File,
        }
    }

    /// One line for `status`, `doctor` and the TUI header.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Keyring => "OS keyring".to_string(),
            KeySource::Env => format!("{KEY_ENV} environment variable"),
            KeySource::File { path, .. } => format!("key file {}", path.display()),
        }
    }

    /// The warning users should see once: the key is on disk because no keyring answered.
    pub fn fallback_warning(&self) -> Option<String> {
        match self {
            KeySource::File {
                path,
                fallback_reason: Some(reason),
            } => Some(format!(
                "no OS keyring is reachable ({reason}); the vault key is kept in {} (mode 0600). \
                 Run tether inside a desktop session, or set {KEY_ENV}, to keep the key off disk.",
                path.display()
            )),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{KEY_ENV} is not valid: {0}; set it to the base64 encoding of 32 random bytes (e.g. `openssl rand -base64 32`)"
    )]
    BadEnv(String),
    #[error(
        "{KEY_ENV} is not set, but config asks for key_source = \"env\": set it, or choose another key source"
    )]
    MissingEnv,
    #[error(
        "key file '{path}' is not valid: {reason}; restore the file from a backup, or move the vault away to start a new one"
    )]
    BadFile { path: PathBuf, reason: String },
    #[error("key file '{path}' is readable by other users (mode {mode:o}): run `chmod 600 {path}`")]
    LooseFile { path: PathBuf, mode: u32 },
    #[error("cannot read or write key file '{path}': {source}")]
    FileIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the vault '{vault}' exists but its key is not in {looked}: restore the key there (or set {KEY_ENV}); tether will not create a new key for an existing vault"
    )]
    MissingForExistingVault { vault: PathBuf, looked: String },
    #[error(
        "the OS keyring is not reachable ({0}), but config asks for key_source = \"keyring\": start a keyring service, or choose another key source"
    )]
    KeyringUnavailable(String),
    #[error(
        "the OS keyring refused the vault key: {0}; unlock the keyring, or set key_source = \"file\""
    )]
    Keyring(String),
}

/// Resolves the key for the vault at `vault_file`, creating one only for a new vault.
pub fn resolve(
    choice: KeySourceChoice,
    vault_file: &Path,
    key_file: &Path,
) -> Result<(Key, KeySource), KeyError> {
    resolve_for(choice, vault_file, key_file, vault_file.exists())
}

/// [`resolve`] for a vault that exists or not elsewhere than `vault_file` (a database):
/// the key sources are still named after `vault_file`.
pub fn resolve_for(
    choice: KeySourceChoice,
    vault_file: &Path,
    key_file: &Path,
    vault_exists: bool,
) -> Result<(Key, KeySource), KeyError> {
    let env_key = std::env::var(KEY_ENV).ok();
    match choice {
        KeySourceChoice::Env => {
            let raw = env_key.ok_or(KeyError::MissingEnv)?;
            Ok((decode_key(&raw).map_err(KeyError::BadEnv)?, KeySource::Env))
        }
        KeySourceChoice::File => file_key(key_file, vault_file, vault_exists, None),
        KeySourceChoice::Keyring => {
            let entry = keyring_entry(vault_file).map_err(KeyError::KeyringUnavailable)?;
            keyring_key(&entry, vault_file, vault_exists)
        }
        KeySourceChoice::Auto => {
            if let Some(raw) = env_key {
                return Ok((decode_key(&raw).map_err(KeyError::BadEnv)?, KeySource::Env));
            }
            // A key file present means this store was set up where no keyring answered;
            // keep using it rather than splitting the key between two places.
            if key_file.exists() {
                return file_key(key_file, vault_file, vault_exists, None);
            }
            match keyring_entry(vault_file) {
                Ok(entry) => keyring_key(&entry, vault_file, vault_exists),
                Err(reason) => file_key(key_file, vault_file, vault_exists, Some(reason)),
            }
        }
    }
}

/// Whether a process started without this shell's environment — no `TETHER_VAULT_KEY`, no
/// `TETHER_KEY_SOURCE`, as a desktop app starts `tether stdio` — finds the key of the
/// vault at `vault_file`, `choice` being what `config.toml` alone says.
pub fn found_without_env(choice: KeySourceChoice, vault_file: &Path, key_file: &Path) -> bool {
    let in_keyring = || keyring_entry(vault_file).is_ok_and(|entry| entry.get_password().is_ok());
    match choice {
        KeySourceChoice::Env => false,
        KeySourceChoice::File => key_file.exists(),
        KeySourceChoice::Keyring => in_keyring(),
        KeySourceChoice::Auto => key_file.exists() || in_keyring(),
    }
}

fn decode_key(raw: &str) -> Result<Key, String> {
    let raw = raw.trim();
    let bytes = Zeroizing::new(
        STANDARD
            .decode(raw)
            .or_else(|_| URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')))
            .map_err(|_| "it is not base64".to_string())?,
    );
    let array: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("it decodes to {} bytes, not 32", bytes.len()))?;
    Ok(Key::from_bytes(array))
}

fn encode_key(key: &Key) -> Zeroizing<String> {
    Zeroizing::new(STANDARD.encode(key.bytes()))
}

fn file_key(
    path: &Path,
    vault_file: &Path,
    vault_exists: bool,
    fallback_reason: Option<String>,
) -> Result<(Key, KeySource), KeyError> {
    let source = KeySource::File {
        path: path.to_path_buf(),
        fallback_reason,
    };
    match fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::LooseFile {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            let text =
                Zeroizing::new(fs::read_to_string(path).map_err(|source| KeyError::FileIo {
                    path: path.to_path_buf(),
                    source,
                })?);
            let key = decode_key(&text).map_err(|reason| KeyError::BadFile {
                path: path.to_path_buf(),
                reason,
            })?;
            Ok((key, source))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if vault_exists {
                return Err(KeyError::MissingForExistingVault {
                    vault: vault_file.to_path_buf(),
                    looked: format!("the key file {}", path.display()),
                });
            }
            let key = Key::generate();
            write_key_file(path, &key)?;
            Ok((key, source))
        }
        Err(source) => Err(KeyError::FileIo {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Creates the key file with mode 0600 from the start (never world-readable, not even
/// for an instant), refusing to replace an existing one.
fn write_key_file(path: &Path, key: &Key) -> Result<(), KeyError> {
    let io = |source| KeyError::FileIo {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(encode_key(key).as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)
}

fn keyring_entry(vault_file: &Path) -> Result<keyring::Entry, String> {
    if let Err(e) = keyring::Entry::store_status() {
        return Err(describe_keyring_error(e));
    }
    // One entry per vault, so several TETHER_HOMEs on one machine never share a key.
    let user = format!("vault-key:{}", absolute(vault_file).display());
    keyring::Entry::new(KEYRING_SERVICE, &user).map_err(|e| describe_keyring_error(&e))
}

fn keyring_key(
    entry: &keyring::Entry,
    vault_file: &Path,
    vault_exists: bool,
) -> Result<(Key, KeySource), KeyError> {
    match entry.get_password() {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let key = decode_key(&text).map_err(|reason| {
                KeyError::Keyring(format!("the stored vault key is not valid ({reason})"))
            })?;
            Ok((key, KeySource::Keyring))
        }
        Err(keyring::Error::NoEntry) if vault_exists => Err(KeyError::MissingForExistingVault {
            vault: vault_file.to_path_buf(),
            looked: "the OS keyring".to_string(),
        }),
        Err(keyring::Error::NoEntry) => {
            let key = Key::generate();
            entry
                .set_password(&encode_key(&key))
                .map_err(|e| KeyError::Keyring(describe_keyring_error(&e)))?;
            // Read it back: a keyring that accepts writes but keeps nothing would
            // otherwise lose the only copy of the key when this process exits.
            let back = Zeroizing::new(
                entry
                    .get_password()
                    .map_err(|e| KeyError::Keyring(describe_keyring_error(&e)))?,
            );
            if back.as_str() != encode_key(&key).as_str() {
                return Err(KeyError::Keyring(
                    "it did not return the key just stored".to_string(),
                ));
            }
            Ok((key, KeySource::Keyring))
        }
        Err(e) => Err(KeyError::Keyring(describe_keyring_error(&e))),
    }
}

fn describe_keyring_error(e: &keyring::Error) -> String {
    match e {
        keyring::Error::NoDefaultStore => "no keyring service on this machine".to_string(),
        keyring::Error::NoStorageAccess(inner) => {
            format!("keyring is locked or refused access: {inner}")
        }
        keyring::Error::PlatformFailure(inner) => format!("keyring service failed: {inner}"),
        other => other.to_string(),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_desktop_app_finds_a_key_file_but_never_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, key) = (
            dir.path().join("vault.tether"),
            dir.path().join("vault.key"),
        );
        assert!(!found_without_env(KeySourceChoice::File, &vault, &key));
        fs::write(&key, "k").unwrap();
        assert!(found_without_env(KeySourceChoice::File, &vault, &key));
        assert!(found_without_env(KeySourceChoice::Auto, &vault, &key));
        assert!(!found_without_env(KeySourceChoice::Env, &vault, &key));
    }

    #[test]
    fn env_keys_must_be_32_bytes_of_base64() {
        assert!(decode_key(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(decode_key(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_ok());
        assert_eq!(
            decode_key(&STANDARD.encode([7u8; 16])).err().unwrap(),
            "it decodes to 16 bytes, not 32"
        );
        assert_eq!(decode_key("not base64!").err().unwrap(), "it is not base64");
    }
}
