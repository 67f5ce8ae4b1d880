//! Gemini CLI's and Qwen Code's encrypted token files, kept where the user asked for
//! encrypted storage (`GEMINI_FORCE_ENCRYPTED_FILE_STORAGE=true`,
//! `QWEN_CODE_FORCE_ENCRYPTED_FILE_STORAGE=true`) and no system keychain answers. From
//! gemini-cli `packages/core/src/services/fileKeychain.ts` (0.61) and qwen-code
//! `packages/core/src/mcp/token-storage/file-token-storage.ts`: AES-256-GCM, the file
//! `<iv hex>:<tag hex>:<ciphertext hex>`, the key Node's `scryptSync(<password>,
//! "<hostname>-<username>-<suffix>", 32)` (N = 2^14, r = 8, p = 1). The key is derived
//! from names anyone on the machine knows: this protects against nothing tether relies
//! on, and is read only to bring the logins along.
//!
//! Gemini CLI's plaintext is `{"gemini-cli-oauth": {"<server>": "<credentials JSON>"}}`
//! (its keychain's shape, with test and secret entries beside); Qwen Code's is
//! `{"<server>": <credentials>}`. Each credentials value has the plain file's entry shape.

use std::path::{Path, PathBuf};

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use serde_json::Value;

use super::Tool;

/// How one tool seals its file.
struct Seal {
    file: &'static str,
    password: &'static str,
    suffix: &'static str,
    /// The top-level key the entries are under (Gemini CLI's keychain service), if any.
    service: Option<&'static str>,
}

fn seal(tool: Tool) -> Option<Seal> {
    match tool {
        Tool::Gemini => Some(Seal {
            file: "gemini-credentials.json",
            password: "gemini-cli-oauth",
            suffix: "gemini-cli",
            service: Some("gemini-cli-oauth"),
        }),
        Tool::Qwen => Some(Seal {
            file: "mcp-oauth-tokens-v2.json",
            password: "qwen-code-oauth",
            suffix: "qwen-code",
            service: None,
        }),
        _ => None,
    }
}

/// The encrypted file beside `store` (the plain token file), for a tool that has one.
pub(super) fn beside(store: &Path, tool: Tool) -> Option<PathBuf> {
    Some(store.parent()?.join(seal(tool)?.file))
}

/// The entries of the encrypted file `path`, each in the plain file's shape; or why they
/// cannot be read.
pub(super) fn entries(path: &Path, tool: Tool) -> Result<Vec<Value>, String> {
    let seal = seal(tool).ok_or("this tool keeps no encrypted file")?;
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let plain = open(text.trim(), &key(&seal)?)?;
    let doc: Value =
        serde_json::from_slice(&plain).map_err(|e| format!("decrypted, but not JSON ({e})"))?;
    let entries = match seal.service {
        Some(service) => doc.get(service).cloned().unwrap_or_default(),
        None => doc,
    };
    let Value::Object(entries) = entries else {
        return Ok(Vec::new());
    };
    Ok(entries
        .into_iter()
        .filter(|(account, _)| !account.starts_with("__"))
        .filter_map(|(_, value)| match value {
            // Gemini CLI keeps each as a JSON string, as its keychain would.
            Value::String(s) => serde_json::from_str(&s).ok(),
            other => Some(other),
        })
        .collect())
}

fn key(seal: &Seal) -> Result<[u8; 32], String> {
    let host = whoami::hostname().map_err(|e| format!("this machine's name is unknown ({e})"))?;
    let user = whoami::username().map_err(|e| format!("this user's name is unknown ({e})"))?;
    let salt = format!("{host}-{user}-{}", seal.suffix);
    let params = scrypt::Params::new(14, 8, 1).map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    scrypt::scrypt(seal.password.as_bytes(), salt.as_bytes(), &params, &mut key)
        .map_err(|e| e.to_string())?;
    Ok(key)
}

fn open(text: &str, key: &[u8; 32]) -> Result<Vec<u8>, String> {
    let not_sealed = || "not the tool's encrypted format (<iv>:<tag>:<data> in hex)".to_string();
    let mut parts = text.split(':');
    let (Some(iv), Some(tag), Some(data), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_sealed());
    };
    let hex = |s: &str| -> Option<Vec<u8>> {
        s.len()
            .is_multiple_of(2)
            .then(|| {
                (0..s.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                    .collect()
            })
            .flatten()
    };
    let (Some(iv), Some(tag), Some(mut sealed)) = (hex(iv), hex(tag), hex(data)) else {
        return Err(not_sealed());
    };
    if tag.len() != 16 {
        return Err(not_sealed());
    }
    sealed.extend_from_slice(&tag);
    let failed = |_| {
        "it does not decrypt with the key of this machine and user: it was written on another machine or by another user (sign in again in the tool, or with `tether login`)".to_string()
    };
    if let Ok(iv) = <[u8; 12]>::try_from(iv.as_slice()) {
        return Aes256Gcm::new(key.into())
            .decrypt(&Nonce::from(iv), sealed.as_slice())
            .map_err(failed);
    }
    let iv = <[u8; 16]>::try_from(iv.as_slice()).map_err(|_| not_sealed())?;
    AesGcm::<aes_gcm::aes::Aes256, U16>::new(key.into())
        .decrypt(&Nonce::<U16>::from(iv), sealed.as_slice())
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_sealed_is_named() {
        let key = [1u8; 32];
        assert!(
            open("[]", &key)
                .unwrap_err()
                .contains("not the tool's encrypted format")
        );
        assert!(open("zz:00:00", &key).is_err());
        let iv = "00".repeat(12);
        let tag = "00".repeat(16);
        assert!(
            open(&format!("{iv}:{tag}:00"), &key)
                .unwrap_err()
                .contains("another machine")
        );
    }
}
