//! `add`, `list`, `status`, `remove`: managing the connections in the vault.

use chrono::Utc;

use crate::cli::AddArgs;
use crate::runtime::open_vault;
use tether_core::connections::{self, AddAuth};
use tether_core::summary::{ConnectionDetail, ConnectionSummary, duration, relative};
use tether_core::vault::Auth;

pub async fn add(args: AddArgs) -> anyhow::Result<()> {
    let auth = auth_from_args(&args)?;
    let vault = open_vault()?;
    let connection = connections::add(&vault, &args.name, &args.url, auth).await?;
    let next = match connection.auth {
        Auth::OAuth { .. } => " It uses OAuth and is not authorized yet.",
        _ => "",
    };
    tether_core::say!(
        "Added connection '{}' → {}.{next}",
        connection.name,
        connection.upstream
    );
    Ok(())
}

/// How the flags say the connection signs in; secrets named by an environment variable
/// are read by the one add path, which names a missing one.
fn auth_from_args(args: &AddArgs) -> anyhow::Result<AddAuth> {
    if args.no_auth {
        return Ok(AddAuth::None);
    }
    if let Some(env_var) = &args.api_key_env {
        return Ok(AddAuth::ApiKey {
            env_var: env_var.clone(),
            header: args.header.clone(),
        });
    }
    let Some(client_id) = &args.client_id else {
        return Ok(AddAuth::OAuth);
    };
    let client_secret = args
        .client_secret_env
        .as_deref()
        .map(|var| connections::env_secret(var, "client secret"))
        .transpose()?;
    Ok(AddAuth::Preregistered {
        client_id: client_id.clone(),
        client_secret,
        redirect_uri: args.redirect_uri.clone(),
    })
}

pub fn list(json: bool) -> anyhow::Result<()> {
    let store = open_vault()?.load()?;
    let now = Utc::now();
    let observed = tether_core::forecast::observed(&store);
    let rows: Vec<ConnectionSummary> = store
        .connections()
        .iter()
        .map(|c| ConnectionSummary::with_observed(c, &observed, now))
        .collect();
    if json {
        tether_core::say!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        tether_core::say!("No connections yet. Add one with: tether add NAME URL");
        return Ok(());
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                match r.refreshing_seconds {
                    Some(secs) => format!("{} (refreshing {secs}s)", r.state),
                    None => r.state.to_string(),
                },
                r.auth.to_string(),
                r.expires_in_seconds
                    .map(|s| if s > 0 { duration(s) } else { "expired".into() })
                    .unwrap_or_else(|| "-".into()),
                r.diagnosis.clone().unwrap_or_else(|| "-".into()),
                r.upstream.clone(),
            ]
        })
        .collect();
    print_table(
        [
            "NAME",
            "STATE",
            "AUTH",
            "EXPIRES IN",
            "DIAGNOSIS",
            "UPSTREAM",
        ],
        &table,
    );
    let near: Vec<_> = rows
        .iter()
        .filter_map(|r| Some((&r.name, r.forecast.as_ref().filter(|f| f.is_near())?)))
        .collect();
    if !near.is_empty() {
        tether_core::say!("");
    }
    for (name, forecast) in near {
        tether_core::say!(
            "{}: {name}: {}",
            forecast.level.as_str(),
            forecast.sentence()
        );
    }
    Ok(())
}

fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        tether_core::say!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub fn status(name: &str, json: bool) -> anyhow::Result<()> {
    let store = open_vault()?.load()?;
    let connection = connections::find(&store, name)?;
    let now = Utc::now();
    let observed = tether_core::forecast::observed(&store);
    let mut detail = ConnectionDetail::with_observed(connection, &observed, now);
    if connection
        .state
        .diagnosis()
        .is_some_and(tether_core::clients::holders::relevant)
    {
        detail.candidates = tether_core::clients::holders::candidates(&store, connection);
    }
    if json {
        tether_core::say!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(());
    }
    let s = &detail.summary;
    tether_core::say!("{}  {}", s.name, s.upstream);
    tether_core::say!("  state       {}", s.state);
    if let Some(code) = connection.state.diagnosis() {
        let e = tether_core::diagnosis::explain(code);
        tether_core::say!("  diagnosis   {code}: {}", e.summary);
        tether_core::say!("              {}", e.detail);
        if let Some(cmd) = e.command_for(&s.name) {
            tether_core::say!("  fix         {cmd}");
        }
    }
    if let Some(why) = &detail.state_detail {
        tether_core::say!("  why         {why}");
    }
    for candidate in &detail.candidates {
        tether_core::say!(
            "  candidate   {candidate} (a possible holder of this grant, not a proven cause)"
        );
    }
    tether_core::say!("  auth        {}", s.auth);
    if let Some(key) = &detail.api_key {
        tether_core::say!("  api key     {} {}", key.header, key.key);
    }
    if let Some(issuer) = &detail.issuer {
        tether_core::say!("  issuer      {issuer}");
    }
    if let Some(t) = &detail.token {
        tether_core::say!("  client      {}", t.client_id);
        tether_core::say!(
            "  token       {} (generation {})",
            t.access_token,
            t.generation
        );
        let expiry = t
            .expires_at
            .map(|at| relative(at, now))
            .unwrap_or_else(|| "never".into());
        tether_core::say!("  expires     {expiry}");
        tether_core::say!(
            "  refresh     {}",
            if t.has_refresh_token {
                "yes"
            } else {
                "none issued"
            }
        );
    }
    if let Some(f) = &s.forecast {
        if f.is_near() {
            tether_core::say!("  forecast    {}: {}", f.level.as_str(), f.sentence());
        } else {
            tether_core::say!("  forecast    {} {}", f.reason, relative(f.until, now));
        }
    }
    if let Some(journal) = &detail.refresh_in_progress {
        tether_core::say!("  in flight   {journal}");
    }
    if let Some(step) = &detail.step_up {
        let asks = if step.to_ask().is_empty() {
            format!(
                "no longer asked for: {} sign-ins did not get it (`tether login {} --scope` asks once more)",
                step.logins, detail.summary.name
            )
        } else {
            format!(
                "the next sign-in asks for it too ({} of {} asked so far)",
                step.logins,
                tether_core::vault::MAX_STEP_UPS
            )
        };
        tether_core::say!("  step-up     '{}': {asks}", step.scopes.join(" "));
    }
    for r in &detail.registrations {
        tether_core::say!(
            "  registration {} {:?} {:?} at {}",
            r.client_id,
            r.method,
            r.status,
            r.issuer
        );
    }
    if !detail.downstream_clients.is_empty() {
        let clients: Vec<String> = detail
            .downstream_clients
            .iter()
            .map(|label| {
                let mut about = Vec::new();
                if let Some(name) = detail.clients_signed_in.get(label) {
                    about.push(format!("signed in to tether as '{name}'"));
                }
                if let Some(at) = detail.clients_last_seen.get(label) {
                    about.push(format!("seen {}", relative(*at, now)));
                }
                if about.is_empty() {
                    label.clone()
                } else {
                    format!("{label} ({})", about.join(", "))
                }
            })
            .collect();
        tether_core::say!("  clients     {}", clients.join(", "));
    }
    tether_core::say!("  added       {}", relative(detail.created_at, now));
    tether_core::say!("  history");
    for e in detail.history.iter().rev().take(10) {
        let code = e.diagnosis.map(|d| format!(" [{d}]")).unwrap_or_default();
        let latency = e
            .latency_ms
            .map(|ms| format!(" ({ms} ms)"))
            .unwrap_or_default();
        tether_core::say!(
            "    {}  {:?}  {}{latency}{code}",
            relative(e.at, now),
            e.kind,
            e.detail
        );
    }
    Ok(())
}

pub async fn remove(name: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    connections::remove(&vault, name).await?;
    tether_core::say!("Removed connection '{name}'.");
    Ok(())
}

pub async fn rename(name: &str, new_name: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    let renamed = connections::rename(&vault, name, new_name).await?;
    tether_core::say!("Renamed connection '{name}' to '{new_name}'.");
    if !renamed.access.is_empty() {
        let labels: Vec<&str> = renamed.access.iter().map(|a| a.label.as_str()).collect();
        tether_core::say!(
            "Endpoints with the secret in the path (/s/…/mcp) keep working for {}. Clients \
             that name the connection — /c/{name}/mcp with a bearer secret, or `tether stdio \
             {name}` — need the new name: `tether config CLIENT {new_name} --write`.",
            labels.join(", ")
        );
    }
    Ok(())
}
