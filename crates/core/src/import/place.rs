//! Where each imported login goes: a new connection (named as the client names the server,
//! else after the host, or `--name`), or
//! an existing connection for the same server that has no working token; one that works is
//! left alone. Pure over the store, so a dry run rehearses on a copy exactly what the
//! transaction then does.

use chrono::{DateTime, Utc};

use super::login::Login;
use super::sources::Tool;
use super::{Entry, Outcome, Prepared, convert};
use crate::oauth::discovery::canonical_resource;
use crate::vault::{Connection, ConnectionName, Event, EventKind, Store};

/// Places every prepared login in `store`, deciding names against what it holds.
pub(super) fn place_all(
    store: &mut Store,
    tool: Tool,
    prepared: &[Prepared],
    name: Option<&ConnectionName>,
    now: DateTime<Utc>,
) -> Vec<Entry> {
    prepared
        .iter()
        .map(|p| place(store, tool, p, name, now))
        .collect()
}

fn place(
    store: &mut Store,
    tool: Tool,
    p: &Prepared,
    name: Option<&ConnectionName>,
    now: DateTime<Utc>,
) -> Entry {
    let same = |c: &&Connection| canonical_resource(&c.upstream) == canonical_resource(&p.upstream);
    let existing = store.connections().iter().find(same).cloned();
    let mut entry = Entry::of_login(Outcome::Imported, &p.login, String::new());
    entry.url = Some(p.upstream.to_string());
    entry.url_from = Some(p.candidate.source.to_string());
    entry.notes = p.notes.clone();
    let target = match existing {
        Some(c) if convert::works(&c, now) => {
            entry.outcome = Outcome::Skipped;
            entry.name = Some(c.name.to_string());
            entry.message = skip_message(&c, &p.login);
            return entry;
        }
        Some(c) => c.name.to_string(),
        None => match new_connection(store, tool, p, name, now) {
            Ok(name) => name,
            Err(message) => {
                entry.outcome = Outcome::Failed;
                entry.message = message;
                return entry.with_fix("choose another --name");
            }
        },
    };
    let c = store.get_mut(&target).expect("placed above");
    convert::apply(c, tool, &p.login, p.discovered.clone(), now);
    entry.message = import_message(c);
    entry.name = Some(target);
    entry
}

fn skip_message(c: &Connection, login: &Login) -> String {
    let same_client = c
        .token
        .as_ref()
        .is_some_and(|t| t.client_id == login.client.client_id);
    if same_client {
        format!("already imported: '{}' holds this login", c.name)
    } else {
        format!(
            "'{}' already has a working {} login for this server; kept it",
            c.name,
            c.auth.kind()
        )
    }
}

fn import_message(c: &Connection) -> String {
    match &c.token {
        Some(t) if c.state == crate::vault::ConnectionState::Healthy => {
            format!("imported as '{}' (generation {})", c.name, t.generation)
        }
        _ => format!(
            "client imported as '{}', but its token had expired and cannot be refreshed: run `tether login {}` (it reuses this client)",
            c.name, c.name
        ),
    }
}

/// Adds an empty connection for `p` under `name`, or one derived from the host.
fn new_connection(
    store: &mut Store,
    tool: Tool,
    p: &Prepared,
    name: Option<&ConnectionName>,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let taken = |n: &str| store.get(n).is_some();
    let chosen = match name {
        Some(n) if taken(n.as_str()) => {
            return Err(format!(
                "a connection named '{n}' already exists for another server"
            ));
        }
        Some(n) => n.clone(),
        None => {
            // The name the client already gives this server, where it has one tether accepts.
            let own = tool
                .names_servers()
                .then(|| p.login.place.parse::<ConnectionName>().ok())
                .flatten();
            let base = own.map_or_else(|| convert::name_from_host(&p.upstream), |n| n.to_string());
            let unique = convert::unique_name(&base, taken);
            unique.parse().map_err(|e| format!("{e}"))?
        }
    };
    let auth = crate::vault::Auth::OAuth {
        scopes: Vec::new(),
        discovery: None,
    };
    let mut c = Connection::new(chosen.clone(), p.upstream.clone(), auth, now);
    c.record(Event::new(
        now,
        EventKind::Added,
        format!("added for {} from {}'s store", p.upstream, tool.title()),
    ));
    store.push(c);
    Ok(chosen.to_string())
}
