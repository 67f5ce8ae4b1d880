//! The data model's own rules: names, headers, the history ring and its lifetime counts.

use super::*;

#[test]
fn names_follow_the_rule() {
    for ok in ["a", "linear", "github-work", "x1", &"a".repeat(32)] {
        assert!(ok.parse::<ConnectionName>().is_ok(), "{ok}");
    }
    for bad in [
        "",
        "Linear",
        "has space",
        "under_score",
        "é",
        &"a".repeat(33),
    ] {
        let err = bad.parse::<ConnectionName>().unwrap_err();
        assert!(err.to_string().contains(&format!("'{bad}'")));
    }
}

#[test]
fn upstream_urls_are_checked() {
    assert!(parse_upstream("https://mcp.linear.app/mcp").is_ok());
    assert!(parse_upstream("http://127.0.0.1:8080/mcp").is_ok());
    assert!(parse_upstream("http://localhost/mcp").is_ok());
    assert!(parse_upstream("http://[::1]:9/mcp").is_ok());
    assert!(matches!(
        parse_upstream("http://mcp.linear.app/mcp"),
        Err(InvalidUpstream::InsecureHost(_))
    ));
    assert!(matches!(
        parse_upstream("ftp://x/y"),
        Err(InvalidUpstream::Scheme(..))
    ));
    assert!(matches!(
        parse_upstream("mcp.linear.app/mcp"),
        Err(InvalidUpstream::Parse(..))
    ));
    assert!(matches!(
        parse_upstream("https://u:p@mcp.example.com/"),
        Err(InvalidUpstream::Credentials(_))
    ));
}

#[test]
fn header_specs_parse() {
    let h: ApiKeyHeader = "Authorization: Bearer".parse().unwrap();
    assert_eq!(h, ApiKeyHeader::default());
    let h: ApiKeyHeader = "X-API-Key".parse().unwrap();
    assert_eq!(h.prefix, None);
    for bad in ["", "Bad Header", "X:", "X: two words"] {
        assert!(bad.parse::<ApiKeyHeader>().is_err(), "{bad}");
    }
}

/// A connection with no auth, as `tether add --no-auth` makes one.
fn bare(now: DateTime<Utc>) -> Connection {
    Connection::new(
        "x".parse().unwrap(),
        parse_upstream("https://e.com/mcp").unwrap(),
        Auth::None,
        now,
    )
}

#[test]
fn history_is_a_capped_ring() {
    let now = Utc::now();
    let mut c = bare(now);
    for i in 0..(HISTORY_CAP + 5) {
        c.record(Event::new(now, EventKind::Refreshed, i.to_string()));
    }
    assert_eq!(c.history.len(), HISTORY_CAP);
    assert_eq!(c.history[0].detail, "5");
    assert_eq!(
        c.counters().refreshes_ok,
        HISTORY_CAP as u64 + 5,
        "lifetime counts go on past the history's cap"
    );
}

#[test]
fn counters_of_an_older_vault_start_from_its_history() {
    let now = Utc::now();
    let mut c = bare(now);
    c.counters = None;
    c.history = vec![
        Event::new(now, EventKind::Refreshed, ""),
        Event::new(now, EventKind::RefreshFailed, ""),
        Event::new(now, EventKind::Refreshed, ""),
    ];
    assert_eq!(c.counters().refreshes_ok, 2);
    c.record(Event::new(now, EventKind::RefreshFailed, ""));
    assert_eq!(
        c.counters(),
        Counters {
            refreshes_ok: 2,
            refreshes_failed: 2
        }
    );
}
