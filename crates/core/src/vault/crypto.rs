//! Whole-file sealing with AES-256-GCM.
//!
//! Layout: `header ‖ nonce (12) ‖ ciphertext+tag`. The header — magic, format version, the
//! sealing key's id and a hint of where that key came from — travels in the clear and is
//! the associated data, so it cannot be altered without the tag failing. The key id lets
//! a wrong key be named as such instead of being mistaken for a damaged file.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const MAGIC: &[u8; 8] = b"TETHERVT";
/// The envelope format this build reads and writes.
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 8 + 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A 256-bit vault key; wiped from memory on drop.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; 32]>);

impl Key {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(&mut bytes[..]);
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public name for the key: the first 8 bytes of a domain-separated SHA-256.
    pub fn id(&self) -> [u8; 8] {
        let digest = Sha256::new()
            .chain_update(b"tether vault key id v1\0")
            .chain_update(self.0.as_slice())
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        id
    }
}

impl Key {
    /// A key for another purpose, derived from this one (HMAC-SHA256 with a label naming
    /// the purpose), so the vault key itself never leaves the vault.
    pub fn derive(&self, purpose: &str) -> Key {
        use hmac::{KeyInit as _, Mac};
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(self.0.as_slice())
            .expect("HMAC accepts keys of any length");
        mac.update(b"tether derived key v1\0");
        mac.update(purpose.as_bytes());
        Key::from_bytes(mac.finalize().into_bytes().into())
    }

    /// Lower-case hex of any bytes (key ids, short hashes).
    pub fn hex_of(bytes: &[u8]) -> String {
        hex(bytes)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(id {})", hex(&self.id()))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a vault's key came from, recorded in the header so that a later "wrong key"
/// error can say where the right one probably is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHint {
    Unknown = 0,
    Keyring = 1,
    File = 2,
    Env = 3,
}

impl KeyHint {
    fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::Keyring,
            2 => Self::File,
            3 => Self::Env,
            _ => Self::Unknown,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Keyring => "the OS keyring",
            Self::File => "a key file",
            Self::Env => "TETHER_VAULT_KEY",
            Self::Unknown => "an unknown source",
        }
    }
}

/// Why a sealed file could not be opened. The caller adds the file's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    Truncated { len: usize },
    NotAVault,
    FutureFormat { found: u16 },
    WrongKey { sealed_with: [u8; 8], hint: KeyHint },
    Tampered,
}

/// Names one written version of a sealed file: its length, header, random nonce and
/// tag. Two writes never share one, because each draws a fresh nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    len: u64,
    head: [u8; FileId::HEAD_LEN],
    tail: [u8; FileId::TAIL_LEN],
}

impl FileId {
    pub const HEAD_LEN: usize = HEADER_LEN + NONCE_LEN;
    pub const TAIL_LEN: usize = TAG_LEN;

    /// The identity of a complete sealed file (as returned by [`seal`]).
    pub fn of(sealed: &[u8]) -> Self {
        let mut head = [0u8; Self::HEAD_LEN];
        let mut tail = [0u8; Self::TAIL_LEN];
        head.copy_from_slice(&sealed[..Self::HEAD_LEN]);
        tail.copy_from_slice(&sealed[sealed.len() - Self::TAIL_LEN..]);
        Self::from_parts(head, tail, sealed.len() as u64)
    }

    pub fn from_parts(head: [u8; Self::HEAD_LEN], tail: [u8; Self::TAIL_LEN], len: u64) -> Self {
        Self { len, head, tail }
    }
}

pub fn seal(key: &Key, hint: KeyHint, plaintext: &[u8]) -> Vec<u8> {
    seal_bound(key, hint, plaintext, b"")
}

pub fn open(key: &Key, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    open_bound(key, sealed, b"")
}

/// [`seal`] with `binding` authenticated beside the header: the sealed value opens only
/// where the same binding is given (a database row and column, so a value copied to
/// another row fails its check).
pub fn seal_bound(key: &Key, hint: KeyHint, plaintext: &[u8], binding: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&key.id());
    out.push(hint as u8);
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce[..]);
    out.extend_from_slice(&nonce);
    let aad = associated(&out[..HEADER_LEN], binding);
    let ciphertext = cipher(key)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        // AES-GCM only fails on inputs of 64 GiB and more; the vault is never that big.
        .expect("AES-GCM encryption of a vault-sized payload cannot fail");
    out.extend_from_slice(&ciphertext);
    out
}

pub fn open_bound(
    key: &Key,
    sealed: &[u8],
    binding: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if sealed.len() < MAGIC.len() || &sealed[..MAGIC.len()] != MAGIC {
        return if sealed.len() < MAGIC.len() && MAGIC.starts_with(sealed) {
            Err(OpenError::Truncated { len: sealed.len() })
        } else {
            Err(OpenError::NotAVault)
        };
    }
    if sealed.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
        return Err(OpenError::Truncated { len: sealed.len() });
    }
    let version = u16::from_le_bytes([sealed[8], sealed[9]]);
    if version > FORMAT_VERSION {
        return Err(OpenError::FutureFormat { found: version });
    }
    let mut sealed_with = [0u8; 8];
    sealed_with.copy_from_slice(&sealed[10..18]);
    if sealed_with != key.id() {
        return Err(OpenError::WrongKey {
            sealed_with,
            hint: KeyHint::from_byte(sealed[18]),
        });
    }
    let (header, rest) = sealed.split_at(HEADER_LEN);
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(nonce);
    let aad = associated(header, binding);
    cipher(key)
        .decrypt(
            &Nonce::from(nonce_bytes),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenError::Tampered)
}

/// The header alone for a file (the vault file's format since its first version), the
/// header and the binding for a bound value.
fn associated<'a>(header: &'a [u8], binding: &[u8]) -> std::borrow::Cow<'a, [u8]> {
    if binding.is_empty() {
        std::borrow::Cow::Borrowed(header)
    } else {
        std::borrow::Cow::Owned([header, binding].concat())
    }
}

fn cipher(key: &Key) -> Aes256Gcm {
    Aes256Gcm::new(&(*key.bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces() {
        let key = Key::generate();
        let a = seal(&key, KeyHint::File, b"hello");
        let b = seal(&key, KeyHint::File, b"hello");
        assert_ne!(a, b, "each seal uses a fresh nonce");
        assert_eq!(open(&key, &a).unwrap().as_slice(), b"hello");
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let key = Key::generate();
        let sealed = seal(&key, KeyHint::Keyring, b"some vault payload");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open(&key, &bad).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn a_bound_value_opens_only_with_its_binding() {
        let key = Key::generate();
        let sealed = seal_bound(&key, KeyHint::Env, b"token", b"row a");
        assert_eq!(
            open_bound(&key, &sealed, b"row a").unwrap().as_slice(),
            b"token"
        );
        assert_eq!(
            open_bound(&key, &sealed, b"row b"),
            Err(OpenError::Tampered)
        );
        assert_eq!(open(&key, &sealed), Err(OpenError::Tampered));
    }

    #[test]
    fn wrong_key_is_named() {
        let sealed = seal(&Key::generate(), KeyHint::Keyring, b"x");
        assert!(matches!(
            open(&Key::generate(), &sealed),
            Err(OpenError::WrongKey {
                hint: KeyHint::Keyring,
                ..
            })
        ));
    }

    #[test]
    fn truncation_and_foreign_files() {
        let key = Key::generate();
        let sealed = seal(&key, KeyHint::File, b"payload");
        for len in [0, 3, 20, sealed.len() - 1] {
            assert!(open(&key, &sealed[..len]).is_err(), "len {len}");
        }
        assert_eq!(open(&key, b"{\"json\": true}"), Err(OpenError::NotAVault));
    }
}
