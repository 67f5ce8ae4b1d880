//! A client asking to sign in to tether, in the terminal UI: the request is shown over
//! whatever screen is open, the oldest first, and only the dialog's own keys answer it —
//! with the engine's `Consent` command. Typing meant for a text field answers nothing.

use std::sync::Arc;

use chrono::Duration;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use tether_core::engine::{EngineCommand, EngineState};
use tether_core::local_auth::consent::{Decision, Request};
use tether_tui::action::{Action, Command, Effect};
use tether_tui::app::Overlay;
use tether_tui::consents::Asking;
use tether_tui::keymap::{self, Context};
use tether_tui::{App, fixture};

fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Option<Effect> {
    let event = Event::Key(KeyEvent::new(code, modifiers));
    let action = keymap::to_action(app.context(), &event)?;
    app.update(action)
}

fn ctrl(app: &mut App, ch: char) -> Option<Effect> {
    press(app, KeyCode::Char(ch), KeyModifiers::CONTROL)
}

fn consents(effect: Option<Effect>) -> Vec<(String, bool)> {
    match effect {
        Some(Effect::Engine(commands)) => commands
            .into_iter()
            .map(|c| match c {
                EngineCommand::Consent { id, allow } => (id, allow),
                other => panic!("not a consent: {other:?}"),
            })
            .collect(),
        other => panic!("expected engine commands, got {other:?}"),
    }
}

fn asking_app() -> App {
    let now = fixture::fixed_now();
    fixture::app(
        fixture::consenting(fixture::demo_state(now)),
        None,
        now,
        100,
        30,
    )
}

fn screen(app: &App) -> String {
    let buffer = fixture::render_buffer(app, 100, 30).unwrap();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer.cell((x, y)).unwrap().symbol());
        }
        out.push('\n');
    }
    out
}

/// The engine published that `app`'s requests are gone, as it does once answered.
fn answered_everywhere(app: &mut App) {
    let mut state: EngineState = app.state().clone();
    state.consents.clear();
    app.update(Action::State(Arc::new(state)));
}

#[test]
fn allow_and_deny_answer_the_oldest_request_with_the_engines_consent_command() {
    let mut app = asking_app();
    assert_eq!(app.context(), Context::Consent);
    let shown = app.consent().unwrap();
    assert_eq!((shown.position, shown.of), (1, 2));
    assert_eq!(shown.asking.request.client_name, "Codex");

    assert_eq!(
        consents(ctrl(&mut app, 'o')),
        [("fixture-consent-1".to_string(), true)]
    );
    let next = app.consent().expect("the second request comes next");
    assert_eq!(next.asking.request.client_name, "Claude Code");
    assert_eq!((next.position, next.of), (1, 1));
    assert_eq!(
        consents(ctrl(&mut app, 'd')),
        [("fixture-consent-2".to_string(), false)]
    );
    assert!(app.consent().is_none());
    assert_eq!(app.context(), Context::Main, "the screen under it is back");
    assert!(ctrl(&mut app, 'o').is_none(), "nothing left to allow");
    answered_everywhere(&mut app);
    assert!(app.consent().is_none());
}

#[test]
fn nothing_is_answered_without_the_dialogs_keys() {
    let mut app = asking_app();
    // State updates, ticks and every other key leave the request waiting.
    for _ in 0..3 {
        let state = Arc::new(app.state().clone());
        assert!(app.update(Action::State(state)).is_none());
    }
    for ch in ['y', 'a', 'q', 'o', 'd', '\n'] {
        let effect = press(&mut app, KeyCode::Char(ch), KeyModifiers::NONE);
        assert!(effect.is_none(), "{ch:?} did {effect:?}");
    }
    for code in [KeyCode::Enter, KeyCode::Esc, KeyCode::Tab] {
        assert!(
            press(&mut app, code, KeyModifiers::NONE).is_none(),
            "{code:?}"
        );
    }
    assert!(
        ctrl(&mut app, 'y').is_none(),
        "Ctrl-Y copies a sign-in URL in the wizard"
    );
    assert!(
        app.update(Action::Click { column: 5, row: 5 }).is_none(),
        "a click answers nothing"
    );
    assert_eq!(app.consent().unwrap().of, 2, "both still wait");
}

#[test]
fn a_request_arriving_while_the_user_types_takes_none_of_the_typing() {
    let now = fixture::fixed_now();
    let mut app = fixture::app(fixture::demo_state(now), None, now, 100, 30);
    app.update(Action::Command(Command::Add));
    fixture::type_text(&mut app, "lin");
    assert_eq!(app.context(), Context::Wizard);
    let state = fixture::consenting(app.state().clone());
    app.update(Action::State(Arc::new(state)));
    assert_eq!(app.context(), Context::Consent);
    for ch in "ear".chars() {
        assert!(press(&mut app, KeyCode::Char(ch), KeyModifiers::NONE).is_none());
    }
    assert!(press(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_none());
    assert!(
        matches!(app.overlay(), Overlay::Wizard(_)),
        "the wizard waits under it"
    );
    assert_eq!(consents(ctrl(&mut app, 'd')).len(), 1);
    assert_eq!(consents(ctrl(&mut app, 'd')).len(), 1);
    assert_eq!(app.context(), Context::Wizard, "back to typing");
}

#[test]
fn the_dialog_reads_like_the_page_and_shows_the_client_only_as_printable_text() {
    let mut app = asking_app();
    let text = screen(&app);
    assert!(
        text.contains("Codex wants to use 'linear' through tether."),
        "{text}"
    );
    assert!(text.contains("Sign-in request · 1 of 2"), "{text}");
    assert!(text.contains("returns to http://127.0.0.1."), "{text}");
    assert!(text.contains("what the app calls itself"), "{text}");
    assert!(text.contains("Ctrl-o allow"), "{text}");
    assert!(text.contains("Ctrl-d deny"), "{text}");

    let mut state = app.state().clone();
    state.consents = vec![Request {
        id: "x".into(),
        client_name: "Evil\u{1b}]52;c;aGk=\u{7}\u{202e}App".into(),
        connection: "linear".into(),
        redirect_uri: "http://127.0.0.1:9/cb".into(),
        decision: Decision::Waiting,
    }];
    app.update(Action::State(Arc::new(state)));
    let text = screen(&app);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text}"
    );
    assert!(
        text.contains("Evil\\x1b]52;c;aGk=\\x07\\u{202e}App"),
        "{text}"
    );
}

#[test]
fn requests_of_another_tethers_proxy_are_shown_oldest_first_and_expire() {
    let now = fixture::fixed_now();
    let mut app = fixture::app(fixture::demo_state(now), None, now, 100, 30);
    let asking = |id: &str, minutes_ago: i64| Asking {
        request: Request {
            id: id.into(),
            client_name: format!("client {id}"),
            connection: "linear".into(),
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            decision: Decision::Waiting,
        },
        asked_at: now - Duration::minutes(minutes_ago),
    };
    app.update(Action::Consents(vec![asking("new", 1), asking("old", 8)]));
    let shown = app.consent().unwrap();
    assert_eq!(
        (shown.asking.request.id.as_str(), shown.of),
        ("old", 2),
        "oldest first"
    );
    assert!(screen(&app).contains("Expires in 2m 0s"));
    app.update(Action::Tick(now + Duration::minutes(2)));
    let shown = app.consent().unwrap();
    assert_eq!((shown.asking.request.id.as_str(), shown.of), ("new", 1));
    app.update(Action::Tick(now + Duration::minutes(9)));
    assert!(app.consent().is_none(), "ten minutes is a request's life");
}
