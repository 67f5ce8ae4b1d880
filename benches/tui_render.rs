//! Per-frame cost of drawing the main screen with 100 connections (target < 2 ms), so the
//! TUI can redraw every second while the proxy shares the process. Run with
//! `cargo bench --bench tui_render`; it prints its figures.

use std::time::{Duration, Instant};

use chrono::Duration as Span;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tether_tui::action::{Action, Command, DetailTab};
use tether_tui::{fixture, ui};

const FRAMES: usize = 400;

fn main() {
    let now = fixture::fixed_now();
    let state = fixture::many_connections(100, now);
    for (label, width, height, tab) in [
        ("main screen, Overview", 120, 40, DetailTab::Overview),
        ("main screen, History", 120, 40, DetailTab::History),
        ("main screen, Traffic", 200, 60, DetailTab::Traffic),
    ] {
        let mut app = fixture::app(state.clone(), None, now, width, height);
        app.update(Action::Command(Command::ShowTab(tab)));
        let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
            Ok(t) => t,
            Err(e) => panic!("test backend: {e}"),
        };
        let mut times = Vec::with_capacity(FRAMES);
        for i in 0..FRAMES {
            // Every frame is a new second and a new selection, as in real use: nothing is
            // left over from the frame before.
            app.update(Action::Tick(now + Span::seconds(i as i64)));
            app.update(Action::Command(Command::Down));
            let start = Instant::now();
            if let Err(e) = terminal.draw(|frame| ui::draw(frame, &app)) {
                panic!("draw: {e}");
            }
            times.push(start.elapsed());
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / FRAMES as u32;
        let at = |p: f64| times[((FRAMES as f64 * p) as usize).min(FRAMES - 1)];
        println!(
            "{label} ({width}x{height}, 100 connections): mean {:.3} ms, median {:.3} ms, p99 {:.3} ms, max {:.3} ms over {FRAMES} frames",
            ms(mean),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(times[FRAMES - 1]),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
