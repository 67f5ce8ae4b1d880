//! The call views as a user drives them, key by key through the keymap: the Calls tab and
//! the calls of all connections follow at the top and hold still when moved down, filter
//! by client, text and status with the filter in the title, open a call and go back to
//! where it was opened, and lead from a failed call to its connection's diagnosis. Calls
//! read from the audit log (another tether serves the proxy) show the same way.

use std::sync::Arc;

use crossterm::event::Event;
use tether_core::calls::CallRecord;
use tether_core::engine::EngineState;
use tether_tui::action::{Action, Command, DetailTab};
use tether_tui::app::{App, Focus, Overlay};
use tether_tui::fixture;
use tether_tui::keymap::{self, Context};

/// Presses `keys` ("C", "j", "Enter", "Esc", or any character) as the terminal would send
/// them, each through the keymap of the context the app is in.
fn press(app: &mut App, keys: &[&str]) {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    for key in keys {
        let code = match *key {
            "Enter" => KeyCode::Enter,
            "Esc" => KeyCode::Esc,
            "Down" => KeyCode::Down,
            "Up" => KeyCode::Up,
            k => KeyCode::Char(k.chars().next().unwrap()),
        };
        let shift = matches!(code, KeyCode::Char(c) if c.is_ascii_uppercase());
        let mods = if shift {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        let event = Event::Key(KeyEvent::new(code, mods));
        if let Some(action) = keymap::to_action(app.context(), &event) {
            app.update(action);
        }
    }
}

fn typed(app: &mut App, text: &str) {
    for ch in text.chars() {
        press(app, &[&ch.to_string()]);
    }
}

fn screen(app: &App) -> String {
    let buffer = fixture::render_buffer(app, 100, 30).unwrap();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn names(rows: &[Arc<CallRecord>]) -> Vec<String> {
    rows.iter().filter_map(|r| r.name.clone()).collect()
}

/// The app's state with one more call, `name` on `connection`, newest of all.
fn with_call(app: &App, connection: &str, name: &str) -> Arc<EngineState> {
    let mut state = app.state().clone();
    let mut calls = (*state.calls).clone();
    let newest = calls
        .values()
        .flat_map(|ring| ring.iter())
        .map(|r| r.at_ms)
        .max()
        .unwrap();
    let ring = calls.entry(connection.to_string()).or_default();
    ring.push_back(Arc::new(CallRecord {
        at_ms: newest + 1,
        connection: connection.to_string(),
        client: "cursor".to_string(),
        http: "POST".to_string(),
        method: Some("tools/call".to_string()),
        name: Some(name.to_string()),
        status: 200,
        ..CallRecord::default()
    }));
    state.calls = Arc::new(calls);
    Arc::new(state)
}

#[test]
fn all_connections_calls_follow_at_the_top_and_hold_still_when_moved_down() {
    let mut app = fixture::demo_app(None, 100, 30);
    press(&mut app, &["C"]);
    assert!(matches!(app.overlay(), Overlay::Calls));
    assert_eq!(app.context(), Context::AllCalls);
    let rows = app.call_rows(true);
    let connections: Vec<&str> = rows.iter().map(|r| r.connection.as_str()).collect();
    assert_eq!(
        connections[..4],
        ["linear", "github", "asana", "linear"],
        "every connection's calls, newest first"
    );
    let shown = screen(&app);
    assert!(shown.contains("All calls (10, following)"), "{shown}");
    assert!(shown.contains("get_pull_request") && shown.contains("create_task"));

    // At the top a new call is the selected one; moved down, the selection holds.
    app.update(Action::State(with_call(&app, "github", "first_new")));
    assert_eq!(selected(&app, true), "first_new");
    press(&mut app, &["j", "j"]);
    assert_eq!(selected(&app, true), "get_pull_request");
    app.update(Action::State(with_call(&app, "notion", "second_new")));
    assert_eq!(selected(&app, true), "get_pull_request");
    assert!(screen(&app).contains("paused"));

    // Enter opens it; Esc goes back to the list, as it was; Esc again closes the list.
    press(&mut app, &["Enter"]);
    assert!(
        matches!(app.overlay(), Overlay::Call { record, from_all: true, .. } if record.name.as_deref() == Some("get_pull_request"))
    );
    press(&mut app, &["Esc"]);
    assert!(matches!(app.overlay(), Overlay::Calls));
    assert_eq!(selected(&app, true), "get_pull_request");
    press(&mut app, &["g"]);
    assert_eq!(selected(&app, true), "second_new", "g follows again");
    press(&mut app, &["Esc"]);
    assert!(matches!(app.overlay(), Overlay::None));
}

fn selected(app: &App, all: bool) -> String {
    let rows = app.call_rows(all);
    app.call_view(all)
        .call(&rows)
        .and_then(|r| r.name.clone())
        .unwrap_or_default()
}

#[test]
fn the_calls_tab_filters_by_text_client_and_status_and_esc_clears() {
    let mut app = fixture::demo_app(None, 100, 30);
    press(&mut app, &["6", "Enter"]);
    assert_eq!(app.context(), Context::CallsTab);
    assert_eq!(app.call_rows(false).len(), 6);

    press(&mut app, &["/"]);
    assert_eq!(app.context(), Context::CallFilter);
    typed(&mut app, "issue");
    assert_eq!(
        names(&app.call_rows(false)),
        ["get_issue", "create_issue", "list_issues"]
    );
    press(&mut app, &["Enter"]);
    assert_eq!(app.context(), Context::CallsTab);
    press(&mut app, &["c"]);
    assert_eq!(names(&app.call_rows(false)), ["get_issue", "list_issues"]);
    let shown = screen(&app);
    assert!(
        shown.contains("filter  / issue · client claude-code"),
        "the filter is in the title:\n{shown}"
    );
    assert!(shown.contains("Call (2 of 6, following)"), "{shown}");
    press(&mut app, &["c", "e"]);
    assert_eq!(
        names(&app.call_rows(false)),
        ["create_issue"],
        "cursor's failed one"
    );

    // Esc clears every filter; the next Esc gives the keyboard back to the table.
    press(&mut app, &["Esc"]);
    assert_eq!(app.call_rows(false).len(), 6);
    assert!(!screen(&app).contains("filter  /"));
    assert_eq!(app.focus(), Focus::Detail);
    press(&mut app, &["Esc"]);
    assert_eq!(app.focus(), Focus::Table);

    // Esc while typing clears the text only.
    press(&mut app, &["Enter", "e", "/"]);
    typed(&mut app, "zzz");
    assert!(app.call_rows(false).is_empty());
    assert!(screen(&app).contains("No call matches the filter"));
    press(&mut app, &["Esc"]);
    assert_eq!(names(&app.call_rows(false)), ["create_issue"]);
}

#[test]
fn a_failed_call_leads_to_its_connections_diagnosis() {
    let mut app = fixture::demo_app(None, 100, 30);
    press(&mut app, &["C", "j", "j", "Enter"]);
    let Overlay::Call { record, .. } = app.overlay() else {
        panic!("no call opened");
    };
    assert_eq!(record.connection, "asana");
    let shown = screen(&app);
    for words in [
        "-32001 tether: 'asana'",
        "invalid_grant.lost_response",
        "a refresh response was lost in transit",
        "press  l  on the main screen",
        "tether login asana",
        "opens the Diagnosis tab of 'asana'",
    ] {
        assert!(shown.contains(words), "'{words}' missing:\n{shown}");
    }
    let footer: Vec<String> = tether_tui::widgets::footer::keys(&app)
        .into_iter()
        .map(|(key, word)| format!("{key} {word}"))
        .collect();
    assert!(footer.contains(&"3 diagnosis".to_string()), "{footer:?}");

    press(&mut app, &["3"]);
    assert!(matches!(app.overlay(), Overlay::None));
    assert_eq!(app.selected_name(), Some("asana"));
    assert_eq!(app.tab(), DetailTab::Diagnosis);
    assert!(screen(&app).contains("invalid_grant.lost_response"));
    // The fix's key works at once.
    let effect = app.update(Action::Command(Command::Login));
    assert!(format!("{effect:?}").contains("Login"), "{effect:?}");

    // A call that failed for its own reasons names no diagnosis.
    let mut app = fixture::demo_app(None, 100, 30);
    press(&mut app, &["6", "Enter", "j", "j", "Enter"]);
    let shown = screen(&app);
    assert!(shown.contains("-32602 Invalid arguments"), "{shown}");
    assert!(!shown.contains("diagnosis"), "{shown}");
}

#[test]
fn calls_read_from_the_audit_log_show_in_both_views() {
    let mut app = fixture::demo_app(None, 100, 30);
    let from_log = |name: &str, at_ms: i64| {
        Arc::new(CallRecord {
            at_ms,
            connection: "linear".to_string(),
            client: "codex".to_string(),
            http: "POST".to_string(),
            method: Some("tools/call".to_string()),
            name: Some(name.to_string()),
            status: 200,
            ..CallRecord::default()
        })
    };
    let now = fixture::fixed_now().timestamp_millis();
    app.update(Action::Calls(vec![from_log("logged_one", now - 5_000)]));
    app.update(Action::Calls(vec![from_log("logged_two", now - 1_000)]));
    assert!(app.calls_from_log());
    press(&mut app, &["6", "Enter"]);
    assert_eq!(names(&app.call_rows(false)), ["logged_two", "logged_one"]);
    press(&mut app, &["C"]);
    let shown = screen(&app);
    assert!(shown.contains("from the audit log"), "{shown}");
    assert!(
        shown.contains("logged_two") && !shown.contains("get_issue"),
        "{shown}"
    );
}

#[test]
fn the_keys_of_the_call_views_are_in_the_footer() {
    let app = fixture::demo_app(None, 100, 30);
    let footer: Vec<String> = tether_tui::widgets::footer::keys(&app)
        .into_iter()
        .map(|(key, word)| format!("{key} {word}"))
        .collect();
    assert!(footer.contains(&"C calls".to_string()), "{footer:?}");
    let mut tab = fixture::demo_app(None, 100, 30);
    press(&mut tab, &["6", "Enter"]);
    let footer: Vec<String> = tether_tui::widgets::footer::keys(&tab)
        .into_iter()
        .map(|(_, word)| word.to_string())
        .collect();
    for word in ["open", "filter", "client", "errors", "all"] {
        assert!(footer.contains(&word.to_string()), "{footer:?}");
    }
}

/// The TUI names the proxy's "unreachable" code without depending on the proxy: the two
/// must agree.
#[test]
fn the_unreachable_code_is_the_proxys() {
    assert_eq!(
        tether_tui::calls::UNREACHABLE,
        tether_proxy::codes::UNREACHABLE.code
    );
}
