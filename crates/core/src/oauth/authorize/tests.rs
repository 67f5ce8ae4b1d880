//! Tests of the login's scope choice.

use super::*;

fn v(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

#[test]
fn scope_follows_the_spec_order() {
    let listed = v(&["read", "write"]);
    let server = v(&["read", "write", "offline_access"]);
    assert_eq!(
        choose_scope(Some("read"), Some(&listed), Some(&server), &[]).as_deref(),
        Some("read offline_access"),
        "the challenge wins; offline_access where the server lists it"
    );
    assert_eq!(
        choose_scope(None, Some(&listed), Some(&server), &[]).as_deref(),
        Some("read write offline_access"),
        "no challenge: every scope the resource lists"
    );
    assert_eq!(
        choose_scope(Some("read"), Some(&listed), Some(&v(&["read"])), &[]).as_deref(),
        Some("read")
    );
    assert_eq!(choose_scope(None, None, None, &[]), None);
    assert_eq!(
        choose_scope(None, None, Some(&v(&["read", "write"])), &[]),
        None,
        "the server's list is not the resource's: with neither challenge nor resource scopes, none"
    );
    assert_eq!(
        choose_scope(Some("read"), None, None, &v(&["admin"])).as_deref(),
        Some("read admin")
    );
}
