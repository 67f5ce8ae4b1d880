//! Writes the README's screenshots: `cargo run --example screenshots [OUT_DIR]`
//! (default `screenshots/`). Each is the TUI drawn from `tui::fixture` at a fixed clock,
//! rendered to PNG with the embedded DejaVu Sans Mono — no display needed.

use std::path::PathBuf;

use tether::tui::{fixture, screenshot};

const WIDTH: u16 = 120;
const HEIGHT: u16 = 34;
const SCALE: f32 = 1.5;

/// (file name, scene name) pairs: the README shows these.
const SHOTS: [(&str, &str); 6] = [
    ("main", "main"),
    ("history", "history"),
    ("diagnosis", "diagnosis"),
    ("add-wizard", "wizard-steps"),
    ("theme-light", "theme-light"),
    ("theme-catppuccin", "theme-catppuccin"),
];

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "screenshots".to_string()),
    );
    std::fs::create_dir_all(&out)?;
    let scenes = fixture::scenes(WIDTH, HEIGHT);
    for (file, scene) in SHOTS {
        let app = scenes
            .iter()
            .find(|(name, _)| *name == scene)
            .map(|(_, app)| app)
            .ok_or_else(|| anyhow::anyhow!("no scene called '{scene}'"))?;
        let png = screenshot::render_png(app, WIDTH, HEIGHT, SCALE)?;
        let path = out.join(format!("{file}.png"));
        std::fs::write(&path, png)?;
        println!("{}", path.display());
    }
    Ok(())
}
