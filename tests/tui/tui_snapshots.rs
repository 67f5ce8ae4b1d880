//! Snapshots of every TUI screen and dialog at 100×30 and 80×24, drawn from the fixture
//! at a fixed clock so countdowns and relative times never change between runs.

use ratatui::buffer::Buffer;
use tether_tui::fixture;

fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            if let Some(cell) = buffer.cell((x, y)) {
                line.push_str(cell.symbol());
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn snapshot_all(width: u16, height: u16) {
    for (name, app) in fixture::scenes(width, height) {
        let buffer = fixture::render_buffer(&app, width, height).unwrap();
        insta::assert_snapshot!(format!("{name}_{width}x{height}"), text(&buffer));
    }
}

#[test]
fn every_screen_at_100x30() {
    snapshot_all(100, 30);
}

#[test]
fn every_screen_at_80x24() {
    snapshot_all(80, 24);
}

#[test]
fn too_small_terminals_get_a_notice() {
    let app = fixture::demo_app(None, 59, 14);
    let buffer = fixture::render_buffer(&app, 59, 14).unwrap();
    insta::assert_snapshot!("too_small_59x14", text(&buffer));
}

#[test]
fn no_secret_reaches_the_screen() {
    for (width, height) in [(100, 30), (80, 24), (160, 50)] {
        for (name, app) in fixture::scenes(width, height) {
            let screen = text(&fixture::render_buffer(&app, width, height).unwrap());
            for secret in [
                "_access_fixture",
                "_refresh_fixture",
                "rk_live_fixture",
                "registration-token",
                "fixture-client",
            ] {
                assert!(
                    !screen.contains(secret),
                    "{name} at {width}x{height} shows {secret}"
                );
            }
            // Client ids are masked: the fixture's ids are all longer than their prefix.
            for id in [
                "lin-9d1c0e2f7a6b4c3d",
                "5f90c2e8-fixture-c3",
                "Iv23liGHfixture0000a",
            ] {
                assert!(!screen.contains(id), "{name} shows client id {id}");
            }
        }
    }
}
