//! Themes: semantic colour slots (ok, warning, error, muted, accent, selection, …) read from
//! TOML. Built-ins are compiled in from `themes/*.toml`; user themes come by name from
//! `<config folder>/themes/` first. The slots are documented in `themes/README.md`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The theme used when none is chosen, and the source of every slot a theme leaves out.
pub const DEFAULT_THEME: &str = "tether-dark";

const BUILTIN: [(&str, &str); 5] = [
    (
        "tether-dark",
        include_str!("../../../themes/tether-dark.toml"),
    ),
    (
        "tether-light",
        include_str!("../../../themes/tether-light.toml"),
    ),
    (
        "high-contrast",
        include_str!("../../../themes/high-contrast.toml"),
    ),
    (
        "catppuccin-mocha",
        include_str!("../../../themes/catppuccin-mocha.toml"),
    ),
    (
        "gruvbox-dark",
        include_str!("../../../themes/gruvbox-dark.toml"),
    ),
];

/// Every slot, by the name a theme file uses.
const SLOTS: [&str; 14] = [
    "background",
    "surface",
    "text",
    "muted",
    "title",
    "accent",
    "border",
    "border_focus",
    "selection",
    "selection_text",
    "ok",
    "warning",
    "error",
    "info",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: String,
    pub background: Color,
    pub surface: Color,
    pub text: Color,
    pub muted: Color,
    pub title: Color,
    pub accent: Color,
    pub border: Color,
    pub border_focus: Color,
    pub selection: Color,
    pub selection_text: Color,
    pub ok: Color,
    pub warning: Color,
    pub error: Color,
    pub info: Color,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThemeError {
    #[error("theme '{name}' is not valid TOML: {message}")]
    Toml { name: String, message: String },
    #[error(
        "theme '{name}' names an unknown slot '{slot}': use one of {}",
        SLOTS.join(", ")
    )]
    UnknownSlot { name: String, slot: String },
    #[error(
        "theme '{name}' gives slot '{slot}' the colour '{value}': use \"#rrggbb\", a colour name, an index 0-255 or \"reset\""
    )]
    BadColour {
        name: String,
        slot: String,
        value: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    colors: BTreeMap<String, String>,
}

impl Theme {
    /// The default theme, always available.
    pub fn default_theme() -> Self {
        builtin(DEFAULT_THEME).unwrap_or_else(Self::fallback)
    }

    /// Parses a theme file's text; slots it leaves out take their fallback slot, then the
    /// default theme's colour.
    pub fn parse(name: &str, text: &str) -> Result<Self, ThemeError> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| ThemeError::Toml {
            name: name.to_string(),
            message: e.message().to_string(),
        })?;
        let mut colours = BTreeMap::new();
        for (slot, value) in &file.colors {
            if !SLOTS.contains(&slot.as_str()) {
                return Err(ThemeError::UnknownSlot {
                    name: name.to_string(),
                    slot: slot.clone(),
                });
            }
            let colour = Color::from_str(value.trim()).map_err(|_| ThemeError::BadColour {
                name: name.to_string(),
                slot: slot.clone(),
                value: value.clone(),
            })?;
            colours.insert(slot.as_str(), colour);
        }
        let base = if name == DEFAULT_THEME {
            Self::fallback()
        } else {
            Self::default_theme()
        };
        let get = |slot: &str, fallback: Option<&str>, base: Color| {
            colours
                .get(slot)
                .or_else(|| fallback.and_then(|f| colours.get(f)))
                .copied()
                .unwrap_or(base)
        };
        Ok(Self {
            name: name.to_string(),
            background: get("background", None, base.background),
            surface: get("surface", Some("background"), base.surface),
            text: get("text", None, base.text),
            muted: get("muted", None, base.muted),
            title: get("title", Some("text"), base.title),
            accent: get("accent", None, base.accent),
            border: get("border", Some("muted"), base.border),
            border_focus: get("border_focus", Some("accent"), base.border_focus),
            selection: get("selection", None, base.selection),
            selection_text: get("selection_text", Some("text"), base.selection_text),
            ok: get("ok", None, base.ok),
            warning: get("warning", None, base.warning),
            error: get("error", None, base.error),
            info: get("info", Some("accent"), base.info),
        })
    }

    /// Plain terminal colours: what is left if even the built-in default were broken.
    fn fallback() -> Self {
        Self {
            name: DEFAULT_THEME.to_string(),
            background: Color::Reset,
            surface: Color::Reset,
            text: Color::Reset,
            muted: Color::DarkGray,
            title: Color::White,
            accent: Color::Cyan,
            border: Color::DarkGray,
            border_focus: Color::Cyan,
            selection: Color::DarkGray,
            selection_text: Color::White,
            ok: Color::Green,
            warning: Color::Yellow,
            error: Color::Red,
            info: Color::Magenta,
        }
    }

    /// The screen's base: text on the background.
    pub fn base(&self) -> Style {
        Style::new().fg(self.text).bg(self.background)
    }

    /// Dialogs and overlays.
    pub fn dialog(&self) -> Style {
        Style::new().fg(self.text).bg(self.surface)
    }

    pub fn fg(&self, colour: Color) -> Style {
        Style::new().fg(colour)
    }

    pub fn muted(&self) -> Style {
        self.fg(self.muted)
    }

    pub fn title(&self) -> Style {
        self.fg(self.title).add_modifier(Modifier::BOLD)
    }

    pub fn key(&self) -> Style {
        self.fg(self.accent).add_modifier(Modifier::BOLD)
    }

    pub fn selected(&self) -> Style {
        Style::new()
            .fg(self.selection_text)
            .bg(self.selection)
            .add_modifier(Modifier::BOLD)
    }

    pub fn border(&self, focused: bool) -> Style {
        self.fg(if focused {
            self.border_focus
        } else {
            self.border
        })
    }
}

fn builtin(name: &str) -> Option<Theme> {
    let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    Theme::parse(name, text).ok()
}

/// Every theme the user can pick, in cycling order, with one warning per file that could
/// not be used.
#[derive(Debug, Clone)]
pub struct ThemeSet {
    pub themes: Vec<Theme>,
    pub warnings: Vec<String>,
}

impl ThemeSet {
    /// Built-ins only.
    pub fn builtin() -> Self {
        Self::load(None)
    }

    /// Built-ins, then the user's `<config_dir>/themes/*.toml`; a user theme with a
    /// built-in's name replaces it. Unreadable or invalid files are skipped with a warning.
    pub fn load(config_dir: Option<&Path>) -> Self {
        let mut themes: Vec<Theme> = BUILTIN
            .iter()
            .filter_map(|(name, _)| builtin(name))
            .collect();
        let mut warnings = Vec::new();
        for (name, result) in config_dir.map(user_theme_files).unwrap_or_default() {
            match result.and_then(|text| Theme::parse(&name, &text).map_err(|e| e.to_string())) {
                Ok(theme) => match themes.iter_mut().find(|t| t.name == name) {
                    Some(slot) => *slot = theme,
                    None => themes.push(theme),
                },
                Err(message) => warnings.push(format!("{message}; skipped it")),
            }
        }
        if themes.is_empty() {
            themes.push(Theme::fallback());
        }
        Self { themes, warnings }
    }

    /// The index of the theme called `name`, or of the default with a warning.
    pub fn pick(&mut self, name: Option<&str>) -> usize {
        let wanted = name.unwrap_or(DEFAULT_THEME);
        if let Some(i) = self.themes.iter().position(|t| t.name == wanted) {
            return i;
        }
        let names: Vec<&str> = self.themes.iter().map(|t| t.name.as_str()).collect();
        self.warnings.push(format!(
            "theme '{wanted}' not found; using '{DEFAULT_THEME}'. Themes: {}",
            names.join(", ")
        ));
        self.themes
            .iter()
            .position(|t| t.name == DEFAULT_THEME)
            .unwrap_or(0)
    }
}

/// `(name, text or error)` for each `*.toml` in `<config_dir>/themes`, sorted by name.
fn user_theme_files(config_dir: &Path) -> Vec<(String, Result<String, String>)> {
    let dir = config_dir.join("themes");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_string();
            let text = std::fs::read_to_string(&p)
                .map_err(|e| format!("cannot read theme file '{}': {e}", p.display()));
            Some((name, text))
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_sets_every_slot() {
        for (name, text) in BUILTIN {
            let theme = Theme::parse(name, text).unwrap();
            let file: ThemeFile = toml::from_str(text).unwrap();
            assert_eq!(file.colors.len(), SLOTS.len(), "{name} leaves a slot out");
            assert_eq!(theme.name, name);
        }
        assert_eq!(ThemeSet::builtin().themes.len(), BUILTIN.len());
    }

    #[test]
    fn missing_slots_fall_back() {
        let t = Theme::parse("mine", "[colors]\naccent = \"#010203\"\nmuted = \"red\"").unwrap();
        assert_eq!(t.border_focus, Color::Rgb(1, 2, 3));
        assert_eq!(t.border, Color::Red);
        assert_eq!(t.ok, Theme::default_theme().ok);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = Theme::parse("x", "[colors]\nsparkle = \"red\"").unwrap_err();
        assert!(e.to_string().contains("unknown slot 'sparkle'"), "{e}");
        let e = Theme::parse("x", "[colors]\nok = \"greenish\"").unwrap_err();
        assert!(e.to_string().contains("'greenish'"), "{e}");
        let e = Theme::parse("x", "colors = 3").unwrap_err();
        assert!(matches!(e, ThemeError::Toml { .. }), "{e}");
    }

    #[test]
    fn user_themes_come_first_and_bad_ones_warn() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("themes")).unwrap();
        std::fs::write(
            dir.path().join("themes/tether-light.toml"),
            "[colors]\nok = \"#000001\"",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("themes/mine.toml"),
            "[colors]\ntext = \"blue\"",
        )
        .unwrap();
        std::fs::write(dir.path().join("themes/broken.toml"), "[colors\n").unwrap();
        let mut set = ThemeSet::load(Some(dir.path()));
        let light = set.pick(Some("tether-light"));
        assert_eq!(set.themes[light].ok, Color::Rgb(0, 0, 1));
        let mine = set.pick(Some("mine"));
        assert_eq!(set.themes[mine].text, Color::Blue);
        assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
        assert!(set.warnings[0].contains("'broken'"));
        let fallback = set.pick(Some("nope"));
        assert_eq!(set.themes[fallback].name, DEFAULT_THEME);
        assert!(set.warnings[1].contains("'nope' not found"));
    }
}
