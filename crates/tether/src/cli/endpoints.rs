//! `url` and `revoke`: giving local MCP clients their endpoints, and taking them back;
//! `doctor`: checking everything between them and the upstream.

use crate::runtime::open_vault;
use tether_core::access;
use tether_core::config::Config;
use tether_core::paths::Paths;

pub async fn url(name: &str, label: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    let config = Config::load(&Paths::discover()?)?;
    let (secret, created) = access::endpoint_secret(&vault, name, label).await?;
    let base = format!(
        "http://{}",
        crate::serving::address(&vault, config.proxy.bind).await
    );
    tether_core::say!(
        "{} endpoint for '{name}', client '{label}':",
        if created { "New" } else { "The" }
    );
    tether_core::say!("  {}", access::path_endpoint(&base, &secret));
    tether_core::say!("or, for clients that can send a header:");
    tether_core::say!(
        "  {}  with  Authorization: Bearer {}",
        access::bearer_endpoint(&base, name),
        secret.expose()
    );
    tether_core::say!(
        "Keep it private: anyone with it can use '{name}'. Cut it off with `tether revoke {name} --client {label}`."
    );
    Ok(())
}

pub async fn revoke(name: &str, label: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    access::revoke(&vault, name, label).await?;
    tether_core::say!("Client '{label}' can no longer use '{name}'.");
    Ok(())
}

pub async fn doctor(name: Option<&str>, json: bool) -> anyhow::Result<()> {
    use crate::doctor::{self, Status};
    let vault = open_vault()?;
    let config = Config::load(&Paths::discover()?)?;
    if let Some(name) = name
        && vault.load_async().await?.get(name).is_none()
    {
        return Err(crate::errors::bad_input(format!(
            "no connection named '{name}'"
        )));
    }
    let findings = doctor::run(&vault, config.proxy.bind, name).await;
    if json {
        tether_core::say!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        let mut subject = "";
        for f in &findings {
            if f.subject != subject {
                subject = &f.subject;
                tether_core::say!("{subject}");
            }
            let mark = match f.status {
                Status::Ok => "✓",
                Status::Warn => "!",
                Status::Fail => "✗",
            };
            let code = f.diagnosis.map(|d| format!(" [{d}]")).unwrap_or_default();
            tether_core::say!("  {mark} {:<13} {}{code}", f.check, f.summary);
            for e in &f.evidence {
                tether_core::say!("      {:<20} {}", e.label, e.value);
            }
            if let Some(remedy) = &f.remedy {
                tether_core::say!("      fix: {remedy}");
            }
        }
    }
    if doctor::needs_action(&findings) {
        anyhow::bail!("something needs action (see above)");
    }
    Ok(())
}
