//! From one imported login to tether's records: the client registration it was issued to
//! (same client id, secret, auth method and redirect URI, so neither a refresh nor a later
//! sign-in needs a new registration) and the token set, placed in a new connection or in an
//! existing one that has no working token.

use chrono::{DateTime, Utc};
use url::Url;

use super::login::Login;
use super::sources::Tool;
use crate::oauth::registration;
use crate::secret::mask;
use crate::vault::{
    Auth, ClientRegistration, Connection, ConnectionState, Discovered, Event, EventKind, Evidence,
    RegistrationMethod, RegistrationStatus, TokenSet,
};

/// The registration the tool stored, bound to the issuer discovery found.
pub fn registration(login: &Login, issuer: &str, now: DateTime<Utc>) -> ClientRegistration {
    let c = &login.client;
    ClientRegistration {
        client_id: c.client_id.clone(),
        client_secret: c.client_secret.clone().filter(|s| !s.is_empty()),
        issuer: issuer.to_string(),
        method: RegistrationMethod::Dcr,
        // Kept byte for byte: servers match redirect URIs exactly.
        redirect_uri: c.redirect_uri.clone(),
        registered_at: c
            .issued_at
            .and_then(|at| DateTime::from_timestamp(at, 0))
            .unwrap_or(now),
        secret_expires_at: c
            .secret_expires_at
            .filter(|at| *at > 0)
            .and_then(|at| DateTime::from_timestamp(at, 0)),
        registration_access_token: c.registration_access_token.clone(),
        registration_client_uri: c
            .registration_client_uri
            .as_deref()
            .and_then(|u| Url::parse(u).ok()),
        status: RegistrationStatus::Active,
        token_endpoint_auth_method: c.token_endpoint_auth_method.clone(),
    }
}

/// Whether the login's token can still be used or refreshed.
pub fn is_usable(login: &Login, now: DateTime<Utc>) -> bool {
    login.tokens.refresh_token.is_some() || login.tokens.expires_at.is_none_or(|at| at > now)
}

/// Whether a connection already works without this import: an OAuth token that is neither
/// waiting for a login nor dead, or another kind of authentication altogether.
pub fn works(c: &Connection, now: DateTime<Utc>) -> bool {
    if !matches!(c.auth, Auth::OAuth { .. }) {
        return true;
    }
    let blocked = matches!(
        c.state,
        ConnectionState::NeedsLogin | ConnectionState::NeedsReauth { .. }
    );
    c.token.as_ref().is_some_and(|t| {
        !blocked && (t.refresh_token.is_some() || t.expires_at.is_none_or(|at| at > now))
    })
}

/// Puts the imported client and token into `c`, as a login would: the generation grows,
/// older clients become legacy (or orphans once no token is bound to them).
pub fn apply(
    c: &mut Connection,
    tool: Tool,
    login: &Login,
    discovered: Discovered,
    now: DateTime<Utc>,
) {
    let issuer = discovered.issuer.clone();
    let requested = login
        .tokens
        .requested_scope
        .as_deref()
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    c.auth = Auth::OAuth {
        scopes: requested,
        discovery: Some(discovered),
    };
    let client = registration(login, &issuer, now);
    c.journal = None;
    if is_usable(login, now) {
        c.token = Some(token_set(c.token.as_ref(), login, &issuer, now));
        c.state = ConnectionState::Healthy;
    } else {
        c.state = ConnectionState::NeedsLogin;
    }
    registration::adopt(c, client);
    c.record(event(c, tool, login, &issuer, now));
}

fn token_set(
    previous: Option<&TokenSet>,
    login: &Login,
    issuer: &str,
    now: DateTime<Utc>,
) -> TokenSet {
    let t = &login.tokens;
    TokenSet {
        client_id: login.client.client_id.clone(),
        issuer: issuer.to_string(),
        access_token: t.access_token.clone(),
        refresh_token: t.refresh_token.clone(),
        scope: t.scope.clone(),
        expires_at: t.expires_at,
        obtained_at: t.obtained_at.unwrap_or(now),
        generation: previous.map(|p| p.generation + 1).unwrap_or(1),
        used_refresh_hashes: previous
            .map(|p| p.used_refresh_hashes.clone())
            .unwrap_or_default(),
        // The other tool knows when its grant began; tether does not.
        granted_at: None,
        refresh_expires_at: None,
    }
}

fn event(c: &Connection, tool: Tool, login: &Login, issuer: &str, now: DateTime<Utc>) -> Event {
    let detail = match &c.token {
        Some(t) if c.state == ConnectionState::Healthy => format!(
            "imported from {} ({}) at {issuer} (generation {})",
            tool.title(),
            login.place,
            t.generation
        ),
        _ => format!(
            "client imported from {} ({}); its token had expired",
            tool.title(),
            login.place
        ),
    };
    let mut event = Event::new(now, EventKind::Authorized, detail);
    event.evidence = vec![
        Evidence::new("source", login.file.display().to_string()),
        Evidence::new("issuer", issuer),
        Evidence::new("client", mask(&login.client.client_id)),
        Evidence::new(
            "scope",
            login
                .tokens
                .scope
                .clone()
                .unwrap_or_else(|| "(none)".into()),
        ),
    ];
    event
}

/// A connection name from the server's host: `mcp.linear.app` → `linear`,
/// `ai.todoist.net` → `todoist`, loopback → `local`.
pub fn name_from_host(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.eq_ignore_ascii_case("localhost") => d.to_lowercase(),
        _ => return "local".to_string(),
    };
    let mut labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    if labels.len() > 1 {
        labels.pop();
    }
    // A second-level suffix such as `co.uk`.
    const SECOND_LEVEL: [&str; 6] = ["co", "com", "org", "net", "ac", "gov"];
    if labels.len() > 1 && labels.last().is_some_and(|l| SECOND_LEVEL.contains(l)) {
        labels.pop();
    }
    let label = labels.last().copied().unwrap_or("server");
    let mut name = String::new();
    for ch in label.chars() {
        let ch = if ch.is_ascii_alphanumeric() { ch } else { '-' };
        if !(ch == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(ch);
        }
    }
    name.truncate(28);
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "server".to_string()
    } else {
        name
    }
}

/// `base`, else `base-2`, `base-3`… — the first that `taken` does not claim.
pub fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_host() {
        let name = |s: &str| name_from_host(&Url::parse(s).unwrap());
        assert_eq!(name("https://mcp.linear.app/mcp"), "linear");
        assert_eq!(name("https://ai.todoist.net/mcp"), "todoist");
        assert_eq!(name("https://mcp.notion.com/mcp"), "notion");
        assert_eq!(name("https://api.example.co.uk/"), "example");
        assert_eq!(name("https://my_server.example/"), "my-server");
        assert_eq!(name("http://127.0.0.1:9/mcp"), "local");
        assert_eq!(name("http://localhost:9/mcp"), "local");
        let long = name(&format!("https://{}.com/", "a".repeat(60)));
        assert!(long.len() <= 28 && long.parse::<crate::vault::ConnectionName>().is_ok());
    }

    #[test]
    fn names_are_made_unique() {
        let taken = ["linear", "linear-2"];
        assert_eq!(unique_name("linear", |n| taken.contains(&n)), "linear-3");
        assert_eq!(unique_name("notion", |n| taken.contains(&n)), "notion");
    }
}
