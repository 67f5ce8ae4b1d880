//! How the TUI reacts: every keymap binding yields its command, the wizard sends the
//! right engine commands and cleans up on cancel, dialogs confirm, the mouse selects, and
//! no terminal size makes a draw panic.

use std::sync::Arc;

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use tether_core::engine::{EngineCommand, EngineEvent, LoginStep, StepOutcome};
use tether_core::secret::Secret;
use tether_core::vault::DiagnosisCode;
use tether_tui::action::{Action, Command, DetailTab, Effect};
use tether_tui::app::{Focus, Overlay};
use tether_tui::keymap::{self, BINDINGS, Context};
use tether_tui::{fixture, ui};

fn cmd(app: &mut tether_tui::App, command: Command) -> Option<Effect> {
    app.update(Action::Command(command))
}

fn commands(effect: Option<Effect>) -> Vec<String> {
    match effect {
        Some(Effect::Engine(list)) | Some(Effect::Quit(list)) => {
            list.iter().map(|c| format!("{c:?}")).collect()
        }
        other => panic!("expected engine commands, got {other:?}"),
    }
}

#[test]
fn every_binding_maps_its_keys_to_its_command() {
    for binding in BINDINGS {
        for key in binding.keys {
            let event = Event::Key(key.event());
            let action = keymap::to_action(binding.context, &event);
            assert!(
                matches!(action, Some(Action::Command(c)) if c == binding.command),
                "{} in {:?} gave {action:?}, want {:?}",
                key.label(),
                binding.context,
                binding.command
            );
        }
    }
}

#[test]
fn ctrl_c_quits_everywhere_and_typing_goes_to_text_fields() {
    let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    for context in Context::ALL {
        assert!(matches!(
            keymap::to_action(context, &ctrl_c),
            Some(Action::Command(Command::Quit))
        ));
    }
    let z = Event::Key(KeyEvent::new(KeyCode::Char('z'), KeyModifiers::NONE));
    assert!(matches!(
        keymap::to_action(Context::Wizard, &z),
        Some(Action::Input(_))
    ));
    assert!(matches!(
        keymap::to_action(Context::Filter, &z),
        Some(Action::Input(_))
    ));
    assert!(keymap::to_action(Context::Main, &z).is_none());
    let moved = Event::Mouse(MouseEvent {
        kind: MouseEventKind::Moved,
        column: 3,
        row: 3,
        modifiers: KeyModifiers::NONE,
    });
    assert!(
        keymap::to_action(Context::Main, &moved).is_none(),
        "a mouse move must cost no redraw"
    );
}

#[test]
fn the_help_overlay_lists_every_binding() {
    let app = fixture::demo_app(None, 100, 30);
    let help: Vec<String> = tether_tui::widgets::help::lines(app.theme(), None)
        .iter()
        .map(|l| l.to_string())
        .collect();
    for binding in BINDINGS.iter().filter(|b| b.context != Context::Help) {
        assert!(
            help.iter().any(|l| l.contains(binding.help)),
            "help lacks '{}'",
            binding.help
        );
    }
}

/// Every main-screen action is reachable from the help: chosen with ↓ and run with Enter,
/// it does exactly what its key does.
#[test]
fn every_action_runs_from_the_help_as_its_key_does() {
    let main: Vec<_> = BINDINGS
        .iter()
        .filter(|b| b.context == Context::Main)
        .collect();
    for (i, binding) in main.iter().enumerate() {
        let mut by_key = fixture::demo_app(None, 100, 30);
        let expected = format!("{:?}", cmd(&mut by_key, binding.command));
        let mut from_help = fixture::demo_app(None, 100, 30);
        cmd(&mut from_help, Command::Help);
        for _ in 0..i {
            cmd(&mut from_help, Command::Down);
        }
        let got = format!("{:?}", cmd(&mut from_help, Command::Submit));
        assert_eq!(got, expected, "'{}' from the help", binding.help);
        assert_eq!(
            format!("{:?}", std::mem::discriminant(from_help.overlay())),
            format!("{:?}", std::mem::discriminant(by_key.overlay())),
            "'{}' from the help",
            binding.help
        );
        assert_eq!(from_help.selected_name(), by_key.selected_name());
        assert_eq!(from_help.tab(), by_key.tab());
    }
    // The choice stops at the last action; Esc closes without running anything.
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::Help);
    for _ in 0..main.len() + 5 {
        cmd(&mut app, Command::Down);
    }
    assert!(matches!(app.overlay(), Overlay::Help { selected, .. } if *selected == main.len() - 1));
    assert!(cmd(&mut app, Command::Back).is_none());
    assert!(matches!(app.overlay(), Overlay::None));
}

#[test]
fn navigation_moves_the_selection_and_tabs() {
    let mut app = fixture::demo_app(None, 100, 30);
    assert_eq!(app.selected_name(), Some("linear"));
    cmd(&mut app, Command::Down);
    assert_eq!(app.selected_name(), Some("github"));
    cmd(&mut app, Command::Bottom);
    assert_eq!(app.selected_name(), Some("internal-wiki"));
    cmd(&mut app, Command::Top);
    cmd(&mut app, Command::NextTab);
    assert_eq!(app.tab(), DetailTab::History);
    cmd(&mut app, Command::PrevTab);
    cmd(&mut app, Command::PrevTab);
    assert_eq!(app.tab(), DetailTab::Calls);
    cmd(&mut app, Command::ToggleFocus);
    assert_eq!(app.focus(), Focus::Detail);
    cmd(&mut app, Command::Back);
    assert_eq!(app.focus(), Focus::Table);
}

/// A state like the demo's with one more call for linear, `name`.
fn with_call(app: &tether_tui::App, name: &str) -> Arc<tether_core::engine::EngineState> {
    let mut state = app.state().clone();
    let mut calls = (*state.calls).clone();
    let ring = calls.get_mut("linear").unwrap();
    let mut newest = (**ring.back().unwrap()).clone();
    newest.name = Some(name.to_string());
    newest.at_ms += 1;
    ring.push_back(Arc::new(newest));
    state.calls = Arc::new(calls);
    Arc::new(state)
}

#[test]
fn the_calls_tab_follows_at_the_top_and_pauses_while_scrolled() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::ShowTab(DetailTab::Calls));
    cmd(&mut app, Command::ToggleFocus);
    assert_eq!(
        app.selected_call().unwrap().name.as_deref(),
        Some("get_issue")
    );
    // At the top: the newest call is the selected one.
    let state = with_call(&app, "first_new");
    app.update(Action::State(state));
    assert_eq!(
        app.selected_call().unwrap().name.as_deref(),
        Some("first_new")
    );
    // Scrolled: the selected call stays selected as new ones arrive.
    cmd(&mut app, Command::Down);
    assert_eq!(
        app.selected_call().unwrap().name.as_deref(),
        Some("get_issue")
    );
    let state = with_call(&app, "second_new");
    app.update(Action::State(state));
    assert_eq!(
        app.selected_call().unwrap().name.as_deref(),
        Some("get_issue")
    );
    // Enter opens it; Esc closes it.
    cmd(&mut app, Command::ToggleFocus);
    assert!(
        matches!(app.overlay(), Overlay::Call { record, .. } if record.name.as_deref() == Some("get_issue"))
    );
    assert_eq!(app.context(), Context::Call);
    cmd(&mut app, Command::Back);
    assert!(matches!(app.overlay(), Overlay::None));
}

#[test]
fn the_selection_follows_its_connection_when_the_vault_changes() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::Down);
    cmd(&mut app, Command::Down);
    assert_eq!(app.selected_name(), Some("notion"));
    let mut state = fixture::demo_state(fixture::fixed_now());
    let mut store = (*state.store).clone();
    store.remove("linear");
    state.store = Arc::new(store);
    app.update(Action::State(Arc::new(state)));
    assert_eq!(app.selected_name(), Some("notion"));
}

#[test]
fn the_filter_narrows_the_table_and_esc_clears_it() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::Filter);
    assert_eq!(app.context(), Context::Filter);
    fixture::type_text(&mut app, "reauth");
    let names: Vec<_> = app.visible().iter().map(|c| c.name.to_string()).collect();
    assert_eq!(names, ["notion", "asana"]);
    assert_eq!(app.selected_name(), Some("notion"));
    cmd(&mut app, Command::Back);
    assert_eq!(app.visible().len(), 9);
}

#[test]
fn the_wizard_adds_then_logs_in() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::Add);
    fixture::type_text(&mut app, "linear-work");
    cmd(&mut app, Command::Submit);
    fixture::type_text(&mut app, "https://mcp.linear.app/mcp");
    cmd(&mut app, Command::Submit);
    let sent = commands(cmd(&mut app, Command::Submit));
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].starts_with(
        "Add { name: \"linear-work\", url: \"https://mcp.linear.app/mcp\", auth: OAuth"
    ));
    assert_eq!(sent[1], "Login { name: \"linear-work\" }");
    app.update(Action::Engine(EngineEvent::LoginStep {
        connection: "linear-work".into(),
        step: LoginStep::TokenReceived,
        outcome: StepOutcome::Done(String::new()),
    }));
    assert!(cmd(&mut app, Command::Submit).is_none());
    assert!(
        matches!(app.overlay(), Overlay::None),
        "Enter closes a finished wizard"
    );
}

#[test]
fn the_wizard_refuses_bad_input_and_says_why() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::Add);
    fixture::type_text(&mut app, "linear");
    cmd(&mut app, Command::Submit);
    fixture::type_text(&mut app, "https://mcp.linear.app/mcp");
    cmd(&mut app, Command::Submit);
    assert!(cmd(&mut app, Command::Submit).is_none());
    let Overlay::Wizard(w) = app.overlay() else {
        panic!("wizard closed")
    };
    assert!(
        w.error
            .as_deref()
            .unwrap_or_default()
            .contains("already exists"),
        "{:?}",
        w.error
    );
}

#[test]
fn an_api_key_connection_is_added_without_a_login() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::Add);
    fixture::type_text(&mut app, "stripe-test");
    cmd(&mut app, Command::NextField);
    fixture::type_text(&mut app, "https://mcp.stripe.com/");
    cmd(&mut app, Command::NextField);
    cmd(&mut app, Command::Right);
    cmd(&mut app, Command::Right);
    cmd(&mut app, Command::NextField);
    fixture::type_text(&mut app, "STRIPE_TEST_KEY");
    cmd(&mut app, Command::NextField);
    let sent = commands(cmd(&mut app, Command::Submit));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains("ApiKey { env_var: \"STRIPE_TEST_KEY\", header: None }"),
        "{sent:?}"
    );
}

#[test]
fn cancelling_a_login_leaves_no_half_connection() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::Add);
    fixture::type_text(&mut app, "internal-new");
    cmd(&mut app, Command::NextField);
    fixture::type_text(&mut app, "https://wiki.corp.example/mcp");
    cmd(&mut app, Command::NextField);
    cmd(&mut app, Command::Submit);
    // The engine added it (no token yet) and is waiting for the browser.
    let mut state = fixture::demo_state(fixture::fixed_now());
    let mut store = (*state.store).clone();
    let mut added = store.get("internal-wiki").unwrap().clone();
    added.name = "internal-new".parse().unwrap();
    store.push(added);
    state.store = Arc::new(store);
    app.update(Action::State(Arc::new(state)));
    let sent = commands(cmd(&mut app, Command::Back));
    assert_eq!(
        sent,
        [
            "CancelLogin { name: \"internal-new\" }",
            "Abandon { name: \"internal-new\" }"
        ]
    );
    assert!(matches!(app.overlay(), Overlay::None));
    // Esc before the engine's Add has even shown: the same (the engine removes a
    // connection only while it has no token).
    cmd(&mut app, Command::Add);
    fixture::type_text(&mut app, "hurried");
    cmd(&mut app, Command::NextField);
    fixture::type_text(&mut app, "https://wiki.corp.example/mcp");
    cmd(&mut app, Command::NextField);
    cmd(&mut app, Command::Submit);
    assert_eq!(
        commands(cmd(&mut app, Command::Back)),
        [
            "CancelLogin { name: \"hurried\" }",
            "Abandon { name: \"hurried\" }"
        ]
    );
}

#[test]
fn cancelling_a_relogin_keeps_the_connection() {
    let mut app = fixture::demo_app(None, 100, 30);
    let sent = commands(cmd(&mut app, Command::Login));
    assert_eq!(sent, ["Login { name: \"linear\" }"]);
    let sent = commands(cmd(&mut app, Command::Back));
    assert_eq!(sent, ["CancelLogin { name: \"linear\" }"]);
}

#[test]
fn a_failed_step_shows_its_diagnosis_and_enter_retries() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::Login);
    app.update(Action::Engine(EngineEvent::LoginStep {
        connection: "linear".into(),
        step: LoginStep::AuthServerMetadata,
        outcome: StepOutcome::Failed {
            diagnosis: DiagnosisCode::PkceUnsupported,
            detail: "no S256".into(),
        },
    }));
    let screen = format!("{:?}", fixture::render_buffer(&app, 100, 30).unwrap());
    assert!(screen.contains("pkce_unsupported"));
    assert_eq!(
        commands(cmd(&mut app, Command::Submit)),
        ["Login { name: \"linear\" }"]
    );
}

#[test]
fn delete_asks_first() {
    let mut app = fixture::demo_app(None, 100, 30);
    assert!(cmd(&mut app, Command::Delete).is_none());
    assert!(cmd(&mut app, Command::Back).is_none());
    assert!(matches!(app.overlay(), Overlay::None));
    cmd(&mut app, Command::Delete);
    assert_eq!(
        commands(cmd(&mut app, Command::Confirm)),
        ["Remove { name: \"linear\" }"]
    );
}

#[test]
fn revoking_a_local_client_names_the_selected_one() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::ShowTab(DetailTab::Clients));
    cmd(&mut app, Command::ToggleFocus);
    cmd(&mut app, Command::Down);
    cmd(&mut app, Command::RevokeClient);
    assert_eq!(
        commands(cmd(&mut app, Command::Confirm)),
        ["RevokeClient { name: \"linear\", label: \"cursor\" }"]
    );
}

#[test]
fn an_endpoint_is_copied_and_shown_once() {
    let mut app = fixture::demo_app(None, 100, 30);
    assert_eq!(
        commands(cmd(&mut app, Command::CopyEndpoint)),
        ["ClientEndpoint { name: \"linear\", label: \"claude-code\" }"]
    );
    let effect = app.update(Action::Engine(EngineEvent::Endpoint {
        connection: "linear".into(),
        label: "claude-code".into(),
        url: Secret::new("http://127.0.0.1:8787/s/secret-value/mcp"),
    }));
    assert!(
        matches!(effect, Some(Effect::Clipboard(ref s)) if s.expose().contains("secret-value"))
    );
    assert!(matches!(app.overlay(), Overlay::Endpoint(_)));
    assert_eq!(
        tether_tui::osc52("hi"),
        "\u{1b}]52;c;aGk=\u{7}",
        "OSC 52 carries base64"
    );
}

#[test]
fn orphans_are_cleaned_only_where_there_are_some() {
    let mut app = fixture::demo_app(None, 100, 30);
    assert!(cmd(&mut app, Command::CleanOrphans).is_none());
    assert!(matches!(app.overlay(), Overlay::None));
    cmd(&mut app, Command::Down);
    cmd(&mut app, Command::Down);
    cmd(&mut app, Command::CleanOrphans);
    assert_eq!(
        commands(cmd(&mut app, Command::Confirm)),
        ["CleanOrphans { name: \"notion\" }"]
    );
}

#[test]
fn t_cycles_the_themes() {
    let mut app = fixture::demo_app(None, 100, 30);
    let first = app.theme().name.clone();
    cmd(&mut app, Command::NextTheme);
    assert_ne!(app.theme().name, first);
    for _ in 0..10 {
        cmd(&mut app, Command::NextTheme);
    }
}

#[test]
fn clicks_select_rows_and_tabs_and_the_wheel_scrolls() {
    let mut app = fixture::demo_app(None, 100, 30);
    let regions = ui::layout(ratatui::layout::Rect::new(0, 0, 100, 30), &app);
    let click = |column, row| {
        Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let action = keymap::to_action(Context::Main, &click(5, regions.table_body.y + 2)).unwrap();
    app.update(action);
    assert_eq!(app.selected_name(), Some("notion"));
    let tabs = regions.tabs;
    // "Overview" takes 10 columns and a divider; the next title starts after them.
    app.update(Action::Click {
        column: tabs.x + 12,
        row: tabs.y,
    });
    assert_eq!(app.tab(), DetailTab::History);
    app.update(Action::Scroll {
        column: 5,
        row: regions.table_body.y,
        down: true,
    });
    assert_eq!(app.selected_name(), Some("todoist"));
}

#[test]
fn quitting_from_a_running_wizard_cancels_the_login_first() {
    let mut app = fixture::demo_app(None, 100, 30);
    cmd(&mut app, Command::Login);
    let effect = cmd(&mut app, Command::Quit);
    assert!(
        matches!(effect, Some(Effect::Quit(ref c)) if matches!(c.as_slice(), [EngineCommand::CancelLogin { .. }]))
    );
}

#[test]
fn a_resize_storm_never_panics() {
    let mut sizes = vec![
        (1, 1),
        (0, 0),
        (59, 14),
        (60, 15),
        (61, 16),
        (2, 200),
        (300, 2),
        (500, 200),
    ];
    for w in (1..140).step_by(9) {
        for h in (1..60).step_by(7) {
            sizes.push((w, h));
        }
    }
    for (name, mut app) in fixture::scenes(100, 30) {
        for &(w, h) in &sizes {
            app.update(Action::Resize {
                width: w,
                height: h,
            });
            for command in [
                Command::Down,
                Command::PageDown,
                Command::NextTab,
                Command::Up,
            ] {
                app.update(Action::Command(command));
            }
            app.update(Action::Click {
                column: w / 2,
                row: h / 2,
            });
            app.update(Action::Scroll {
                column: w / 2,
                row: h / 2,
                down: true,
            });
            fixture::render_buffer(&app, w, h).unwrap_or_else(|e| panic!("{name} at {w}x{h}: {e}"));
        }
    }
}

#[test]
fn a_sign_in_finished_on_another_machine_is_completed_by_pasting_its_address() {
    let mut app = fixture::demo_app(None, 110, 34);
    cmd(&mut app, Command::Login);
    for (step, outcome) in [
        (
            LoginStep::BrowserOpened {
                url: "https://auth.example/authorize?client_id=abc".into(),
            },
            StepOutcome::Done("no browser here: open the URL elsewhere".into()),
        ),
        (LoginStep::WaitingForCallback, StepOutcome::Running),
        (
            LoginStep::AwaitingPaste {
                redirect_uri: "http://127.0.0.1:33418/callback".into(),
            },
            StepOutcome::Running,
        ),
    ] {
        app.update(Action::Engine(EngineEvent::LoginStep {
            connection: "linear".into(),
            step,
            outcome,
        }));
    }
    let screen = format!("{:?}", fixture::render_buffer(&app, 110, 34).unwrap());
    assert!(
        screen.contains("paste that page's address here"),
        "{screen}"
    );
    // The URL goes to the clipboard of the terminal's machine, for its browser.
    match cmd(&mut app, Command::CopyLoginUrl) {
        Some(Effect::Clipboard(url)) => {
            assert_eq!(url.expose(), "https://auth.example/authorize?client_id=abc")
        }
        other => panic!("expected the URL on the clipboard, got {other:?}"),
    }

    // Typed (letters bound elsewhere, like q and r, type here) or pasted.
    let address = "http://127.0.0.1:33418/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=qrl";
    fixture::type_text(&mut app, &address[..20]);
    app.update(Action::Paste(address[20..].into()));
    let screen = format!("{:?}", fixture::render_buffer(&app, 110, 34).unwrap());
    assert!(
        !screen.contains("SplxlOBeZQQYbYS6WxSbIA"),
        "the code is shown masked"
    );
    assert!(screen.contains("code=Splx…"), "{screen}");
    let sent = commands(cmd(&mut app, Command::Submit));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("PasteRedirect { name: \"linear\"")
            && !sent[0].contains("SplxlOBeZQQYbYS6WxSbIA"),
        "{sent:?}"
    );
    assert!(
        cmd(&mut app, Command::Submit).is_none(),
        "an empty field sends nothing"
    );

    app.update(Action::Engine(EngineEvent::LoginStep {
        connection: "linear".into(),
        step: LoginStep::PasteRejected {
            reason: "that address is from another sign-in".into(),
        },
        outcome: StepOutcome::Running,
    }));
    let screen = format!("{:?}", fixture::render_buffer(&app, 110, 34).unwrap());
    assert!(screen.contains("from another sign-in"), "{screen}");
    app.update(Action::Engine(EngineEvent::LoginStep {
        connection: "linear".into(),
        step: LoginStep::WaitingForCallback,
        outcome: StepOutcome::Done("pasted address accepted".into()),
    }));
    let screen = format!("{:?}", fixture::render_buffer(&app, 110, 34).unwrap());
    assert!(!screen.contains("paste that page's address"), "{screen}");
}
