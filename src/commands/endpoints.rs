//! `url` and `revoke`: giving local MCP clients their endpoints, and taking them back;
//! `doctor`: checking everything between them and the upstream.

use super::open_vault;
use crate::access;
use crate::config::Config;
use crate::paths::Paths;

pub async fn url(name: &str, label: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    let config = Config::load(&Paths::discover()?)?;
    let (secret, created) = access::endpoint_secret(&vault, name, label).await?;
    let base = format!("http://{}", config.proxy.bind);
    crate::say!(
        "{} endpoint for '{name}', client '{label}':",
        if created { "New" } else { "The" }
    );
    crate::say!("  {}", access::path_endpoint(&base, &secret));
    crate::say!("or, for clients that can send a header:");
    crate::say!(
        "  {base}/c/{name}/mcp  with  Authorization: Bearer {}",
        secret.expose()
    );
    crate::say!(
        "Keep it private: anyone with it can use '{name}'. Cut it off with `tether revoke {name} --client {label}`."
    );
    Ok(())
}

pub async fn revoke(name: &str, label: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    access::revoke(&vault, name, label).await?;
    crate::say!("Client '{label}' can no longer use '{name}'.");
    Ok(())
}

pub async fn doctor(name: Option<&str>, json: bool) -> anyhow::Result<()> {
    use crate::doctor::{self, Status};
    let vault = open_vault()?;
    let config = Config::load(&Paths::discover()?)?;
    if let Some(name) = name
        && vault.load_async().await?.get(name).is_none()
    {
        return Err(super::bad_input(format!("no connection named '{name}'")));
    }
    let findings = doctor::run(&vault, config.proxy.bind, name).await;
    if json {
        crate::say!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        let mut subject = "";
        for f in &findings {
            if f.subject != subject {
                subject = &f.subject;
                crate::say!("{subject}");
            }
            let mark = match f.status {
                Status::Ok => "✓",
                Status::Warn => "!",
                Status::Fail => "✗",
            };
            let code = f.diagnosis.map(|d| format!(" [{d}]")).unwrap_or_default();
            crate::say!("  {mark} {:<13} {}{code}", f.check, f.summary);
            for e in &f.evidence {
                crate::say!("      {:<20} {}", e.label, e.value);
            }
            if let Some(remedy) = &f.remedy {
                crate::say!("      fix: {remedy}");
            }
        }
    }
    if doctor::needs_action(&findings) {
        anyhow::bail!("something needs action (see above)");
    }
    Ok(())
}
