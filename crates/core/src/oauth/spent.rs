//! Refresh tokens tether knows it already spent are never sent again. A vault restored
//! from a backup (or otherwise gone backwards) holds a refresh token that tether rotated
//! away; a server that detects reuse answers its replay by revoking the whole grant —
//! including the newer token another holder may still have. So the refresh stops before
//! any request and names the reuse locally, with the evidence, and asks for a sign-in.
//!
//! Only a token whose own hash is on a spent list counts: a vault whose generation is
//! merely older than the high-water mark may hold a token that is still good (a server
//! that does not rotate, or a sign-in made on the restored vault).

use crate::oauth::watermark::Watermark;
use crate::vault::{Evidence, Key, TokenSet};

/// Why a refresh token must not be sent, in words and evidence (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    pub detail: String,
    pub evidence: Vec<Evidence>,
}

/// Whether `token` (its refresh token hashing to `hash`) is known to be spent: listed in
/// the vault's own record of spent tokens, or in the high-water mark kept outside it.
pub fn known_spent(token: &TokenSet, hash: &[u8; 8], mark: Option<&Watermark>) -> Option<Spent> {
    let in_mark = mark.filter(|m| m.spent.contains(&Key::hex_of(hash)));
    let in_vault = token.used_refresh_hashes.contains(hash);
    if in_mark.is_none() && !in_vault {
        return None;
    }
    let mut evidence = vec![Evidence::new(
        "vault generation",
        token.generation.to_string(),
    )];
    let detail = match in_mark {
        Some(m) => {
            evidence.push(Evidence::new(
                "high-water mark generation",
                m.generation.to_string(),
            ));
            evidence.push(Evidence::new(
                "refresh token",
                "listed as spent by the high-water mark (locks/<name>.mark)",
            ));
            format!(
                "the vault holds the refresh token of generation {}, which tether already spent \
                 (its high-water mark reached generation {}): the vault was restored from an \
                 older copy; tether did not send it",
                token.generation, m.generation
            )
        }
        None => {
            evidence.push(Evidence::new(
                "refresh token",
                "listed as spent in the vault's own record",
            ));
            format!(
                "the refresh token of generation {} was already spent by tether; tether did not send it",
                token.generation
            )
        }
    };
    evidence.push(Evidence::new(
        "request",
        "none sent: a server that detects reuse would revoke the whole grant",
    ));
    Some(Spent { detail, evidence })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use chrono::Utc;

    fn token(generation: u64, used: Vec<[u8; 8]>) -> TokenSet {
        TokenSet {
            client_id: "c".into(),
            issuer: "https://as.example".into(),
            access_token: Secret::new("at"),
            refresh_token: Some(Secret::new("rt")),
            scope: None,
            expires_at: None,
            obtained_at: Utc::now(),
            generation,
            used_refresh_hashes: used,
            granted_at: None,
            refresh_expires_at: None,
        }
    }

    #[test]
    fn only_a_token_on_a_spent_list_is_held_back() {
        let mark = Watermark {
            generation: 3,
            spent: vec![Key::hex_of(&[1; 8])],
        };
        let spent = known_spent(&token(1, Vec::new()), &[1; 8], Some(&mark)).unwrap();
        assert!(spent.detail.contains("generation 1"), "{}", spent.detail);
        assert!(spent.detail.contains("generation 3"), "{}", spent.detail);
        // An older generation alone proves nothing: the token may be good.
        assert_eq!(
            known_spent(&token(1, Vec::new()), &[9; 8], Some(&mark)),
            None
        );
        assert_eq!(known_spent(&token(1, Vec::new()), &[9; 8], None), None);
        assert!(known_spent(&token(4, vec![[9; 8]]), &[9; 8], None).is_some());
    }
}
