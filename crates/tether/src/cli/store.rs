//! `tether store migrate`: the vault copied between the file and a PostgreSQL database.

use anyhow::Context;
use tether_core::paths::Paths;
use tether_core::say;
use tether_core::vault::{Store, Vault};

use crate::errors::BadInput;

/// Copies every connection of the store in use to `to`, in the target's one transaction.
/// The source is only read. A target holding connections the source does not have is
/// refused (they would be lost), so a copy never overwrites another vault.
pub async fn migrate(to: &str) -> anyhow::Result<()> {
    let source = crate::runtime::open_vault()?;
    let paths = Paths::discover()?;
    let mut config = crate::runtime::config(&paths)?;
    config.store.url = Some(to.trim().to_string());
    let target = tokio::task::spawn_blocking(move || Vault::open(&paths, &config))
        .await
        .context("the target store could not be opened")??;
    if target.describe() == source.describe() {
        return Err(BadInput(format!(
            "the vault is already in {}: name another store with --to (a postgres:// address, or file)",
            source.describe()
        ))
        .into());
    }
    if target.presence_key().bytes() != source.presence_key().bytes() {
        return Err(BadInput(format!(
            "{} is sealed with another vault key than {}: give both the same key (TETHER_VAULT_KEY or the key file) and run this again",
            target.describe(),
            source.describe()
        ))
        .into());
    }
    let copy = source.load_async().await?;
    let names: Vec<String> = copy
        .connections()
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    let shown_target = target.describe();
    target
        .transact_async(move |store: &mut Store| {
            let strangers: Vec<String> = store
                .connections()
                .iter()
                .filter(|c| copy.get(c.name.as_str()).is_none())
                .map(|c| c.name.to_string())
                .collect();
            if !strangers.is_empty() {
                return Err(anyhow::Error::new(BadInput(format!(
                    "{shown_target} already holds connections the source does not ({}): nothing was copied; remove them there, or migrate to an empty store",
                    strangers.join(", ")
                ))));
            }
            *store.connections_mut() = copy.connections().to_vec();
            Ok(())
        })
        .await?;
    say!(
        "copied {} connection{} ({}) from {} to {}; the source is unchanged.",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        },
        source.describe(),
        target.describe()
    );
    say!(
        "Use it with --store {}, TETHER_STORE, or [store] url in config.toml.",
        target.describe()
    );
    Ok(())
}
