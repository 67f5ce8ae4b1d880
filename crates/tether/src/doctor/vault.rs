//! The vault check: the file opens and decrypts, and the key came from a place that keeps
//! it safe (a fallback is a warning).

use tether_core::vault::{Store, Vault};

use super::{Finding, Status};

/// Whether the vault opens and decrypts, and where its key came from; the store when it
/// opens, for the checks that follow.
pub(super) async fn vault_finding(vault: &Vault) -> (Finding, Option<Store>) {
    match vault.load_async().await {
        Ok(store) => {
            let mut f = Finding::new(
                "vault",
                "readable",
                Status::Ok,
                "the vault opens and decrypts",
            )
            .with(
                if vault.watched_file().is_some() {
                    "file"
                } else {
                    "store"
                },
                vault.describe(),
            )
            .with("key", vault.key_source().describe())
            .with("connections", store.connections().len().to_string());
            if let Some(w) = vault.key_source().fallback_warning() {
                f.status = Status::Warn;
                f.summary = w;
            }
            (f, Some(store))
        }
        Err(e) => (
            Finding::new("vault", "readable", Status::Fail, e.to_string()),
            None,
        ),
    }
}
