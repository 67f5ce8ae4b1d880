//! `Secret`: the one type every token, client secret, API key and downstream secret lives in.
//!
//! The safe thing is the default thing: `Debug`, `Display` and every human-readable
//! serializer (JSON for `--json`, TOML, log fields) print only a masked prefix. The full
//! value is written only by binary serializers — the sealed vault payload — and read back
//! by any deserializer. The memory is wiped on drop.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// Characters of a secret shown before the mask. Secrets shorter than
/// [`MIN_LEN_FOR_PREFIX`] show none: a prefix of a short key is too much of it.
const PREFIX_LEN: usize = 4;
const MIN_LEN_FOR_PREFIX: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The full value, for the one place that must send it (an HTTP header, a form field).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What users, logs and `--json` see: `abcd…` for long secrets, `…` for short ones.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks any string the way [`Secret`] masks itself, for values that arrive as plain text
/// (an evidence line quoting a server's answer, say).
pub fn mask(value: &str) -> String {
    if value.chars().count() < MIN_LEN_FOR_PREFIX {
        return "…".to_string();
    }
    let prefix: String = value.chars().take(PREFIX_LEN).collect();
    format!("{prefix}…")
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.masked())
        } else {
            serializer.serialize_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "lin_at_0123456789abcdefghij";

    #[test]
    fn debug_display_and_json_show_only_a_prefix() {
        let s = Secret::new(TOKEN);
        for shown in [
            format!("{s:?}"),
            format!("{s}"),
            serde_json::to_string(&s).unwrap(),
        ] {
            assert!(!shown.contains(TOKEN), "{shown}");
            assert!(!shown.contains("0123"), "{shown}");
            assert!(shown.contains("lin_"), "{shown}");
        }
    }

    #[test]
    fn short_secrets_show_no_prefix() {
        assert_eq!(Secret::new("hunter2").masked(), "…");
    }

    #[test]
    fn binary_form_keeps_the_value() {
        let bytes = rmp_serde::to_vec(&Secret::new(TOKEN)).unwrap();
        let back: Secret = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.expose(), TOKEN);
    }
}
