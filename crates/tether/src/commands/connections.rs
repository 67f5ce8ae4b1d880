//! `add`, `list`, `status`, `remove`: managing the connections in the vault.

use anyhow::Context;
use chrono::Utc;

use super::{bad_input, open_vault};
use crate::cli::AddArgs;
use tether_core::secret::Secret;
use tether_core::vault::{
    ApiKeyHeader, Auth, ClientRegistration, Connection, ConnectionName, Event, EventKind, Store,
    parse_upstream,
};
use tether_core::view::{ConnectionDetail, ConnectionSummary, duration, relative};

pub fn add(args: AddArgs) -> anyhow::Result<()> {
    let name: ConnectionName = args.name.parse().map_err(|e| bad_input(format!("{e}")))?;
    let upstream = parse_upstream(&args.url).map_err(|e| bad_input(format!("{e}")))?;
    let auth = auth_from_args(&args)?;
    let preregistered = preregistered_client(&args, Utc::now())?;
    let vault = open_vault()?;
    let now = Utc::now();
    let kind = auth.kind();
    let detail = format!("added ({kind}) for {upstream}");
    vault.transact(|store: &mut Store| {
        if store.get(name.as_str()).is_some() {
            return Err(bad_input(format!(
                "a connection named '{name}' already exists: choose another name, or run `tether remove {name}` first"
            )));
        }
        let mut connection = Connection::new(name.clone(), upstream.clone(), auth, now);
        connection.clients.extend(preregistered);
        connection.record(Event::new(now, EventKind::Added, detail));
        store.push(connection);
        Ok(())
    })?;
    let next = match kind {
        "oauth" => " It uses OAuth and is not authorized yet.",
        _ => "",
    };
    tether_core::say!("Added connection '{name}' → {upstream}.{next}");
    Ok(())
}

/// `--client-id` (with an optional secret from the environment): a client registered by
/// hand at the authorization server, bound to its issuer at the first login.
fn preregistered_client(
    args: &AddArgs,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<Option<ClientRegistration>> {
    let Some(client_id) = &args.client_id else {
        return Ok(None);
    };
    if client_id.trim().is_empty() {
        return Err(bad_input(
            "--client-id is empty: give the client id the server issued",
        ));
    }
    let client_secret = args
        .client_secret_env
        .as_deref()
        .map(|var| read_env_secret(var, "client secret"))
        .transpose()?;
    let redirect_uri = args
        .redirect_uri
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:33418/callback".to_string());
    let loopback = url::Url::parse(&redirect_uri).ok().filter(|u| {
        u.scheme() == "http" && tether_core::vault::is_loopback(u) && u.port().is_some()
    });
    if loopback.is_none() {
        return Err(bad_input(format!(
            "redirect URI '{redirect_uri}' is not valid: use a loopback http URL with a port, such as http://127.0.0.1:33418/callback"
        )));
    }
    Ok(Some(ClientRegistration::preregistered(
        client_id.trim().to_string(),
        client_secret,
        redirect_uri,
        now,
    )))
}

fn read_env_secret(var: &str, what: &str) -> anyhow::Result<Secret> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
        Ok(_) => Err(bad_input(format!(
            "environment variable '{var}' is empty: export {var}=<your {what}> and run again"
        ))),
        Err(std::env::VarError::NotPresent) => Err(bad_input(format!(
            "environment variable '{var}' is not set: export {var}=<your {what}> and run again"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(bad_input(format!(
            "environment variable '{var}' is not valid UTF-8: check the {what} you exported"
        ))),
    }
}

fn auth_from_args(args: &AddArgs) -> anyhow::Result<Auth> {
    if args.no_auth {
        return Ok(Auth::None);
    }
    let Some(var) = &args.api_key_env else {
        return Ok(Auth::OAuth {
            scopes: Vec::new(),
            discovery: None,
        });
    };
    let header = match &args.header {
        Some(spec) => spec
            .parse::<ApiKeyHeader>()
            .map_err(|e| bad_input(e.to_string()))?,
        None => ApiKeyHeader::default(),
    };
    let value = read_env_secret(var, "API key")?;
    Ok(Auth::ApiKey { header, value })
}

pub fn list(json: bool) -> anyhow::Result<()> {
    let store = open_vault()?.load()?;
    let now = Utc::now();
    let rows: Vec<ConnectionSummary> = store
        .connections()
        .iter()
        .map(|c| ConnectionSummary::of(c, now))
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
    let connection = find(&store, name)?;
    let now = Utc::now();
    let mut detail = ConnectionDetail::of(connection, now);
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

pub fn remove(name: &str) -> anyhow::Result<()> {
    let vault = open_vault()?;
    vault.transact(|store: &mut Store| {
        find(store, name)?;
        store.remove(name);
        Ok::<_, anyhow::Error>(())
    })?;
    tether_core::oauth::watermark::forget(&vault, name);
    tether_core::say!("Removed connection '{name}'.");
    Ok(())
}

fn find<'a>(store: &'a Store, name: &str) -> anyhow::Result<&'a Connection> {
    store
        .get(name)
        .with_context(|| {
            let known: Vec<&str> = store
                .connections()
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            let known = if known.is_empty() {
                "there are none yet; add one with `tether add NAME URL`".to_string()
            } else {
                format!("known: {}", known.join(", "))
            };
            format!("no connection named '{name}' ({known})")
        })
        .map_err(|e| bad_input(format!("{e:#}")))
}
