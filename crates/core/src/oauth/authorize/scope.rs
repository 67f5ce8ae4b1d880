//! Which scopes a login asks for: the MCP spec's scope selection, with `offline_access`
//! only where the authorization server offers it and a step-up's extras on top.

use crate::oauth::discovery::Discovery;

/// Scope for the authorization request (the MCP spec's "Scope Selection
/// Strategy"): the challenge's, else every scope the *protected resource* metadata lists,
/// else none; plus `offline_access` only where the *authorization server* lists it
/// (SEP-2207: resources should not list it, so it is looked for where it belongs); plus
/// any step-up extras.
pub fn choose_scope(
    challenge: Option<&str>,
    resource_scopes: Option<&[String]>,
    server_scopes: Option<&[String]>,
    extra: &[String],
) -> Option<String> {
    let mut scopes: Vec<String> = match (challenge, resource_scopes) {
        (Some(c), _) if !c.trim().is_empty() => c.split_whitespace().map(String::from).collect(),
        (_, Some(s)) => s.to_vec(),
        _ => Vec::new(),
    };
    let offline = "offline_access".to_string();
    if server_scopes.is_some_and(|s| s.contains(&offline)) && !scopes.contains(&offline) {
        scopes.push(offline);
    }
    for s in extra {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

/// The scopes a resource lists: its protected resource metadata's, or for a 2025-03-26
/// server without that document, its authorization server's.
pub(super) fn resource_scopes(found: &Discovery) -> Option<&[String]> {
    match &found.resource_metadata {
        Some(prm) => prm.scopes_supported.as_deref(),
        None => found.as_metadata.scopes_supported.as_deref(),
    }
}
