//! `url` and `revoke`: giving local MCP clients their endpoints, and taking them back.

use super::open_vault;
use crate::access;
use crate::config::Config;
use crate::paths::Paths;

pub async fn url(name: &str, label: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    let config = Config::load(&Paths::discover()?)?;
    let (secret, created) = access::endpoint_secret(&vault, name, label).await?;
    let base = format!("http://{}", config.proxy.bind);
    println!(
        "{} endpoint for '{name}', client '{label}':",
        if created { "New" } else { "The" }
    );
    println!("  {base}/s/{}/mcp", secret.expose());
    println!("or, for clients that can send a header:");
    println!(
        "  {base}/c/{name}/mcp  with  Authorization: Bearer {}",
        secret.expose()
    );
    println!(
        "Keep it private: anyone with it can use '{name}'. Cut it off with `tether revoke {name} --client {label}`."
    );
    Ok(())
}

pub async fn revoke(name: &str, label: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    access::revoke(&vault, name, label).await?;
    println!("Client '{label}' can no longer use '{name}'.");
    Ok(())
}
