//! `docs/diagnoses.md` is generated from the diagnosis table (`tether_core::diagnosis`) and
//! the keymap, so the documentation cannot drift from what tether shows: this test fails
//! when they disagree, and `TETHER_UPDATE_DOCS=1 cargo test -p tether-tui diagnoses_doc`
//! rewrites the generated part.

use tether_core::diagnosis::{ALL, explain};

use crate::keymap::key_for;

const START: &str = "<!-- generated: diagnoses table -->\n";
const END: &str = "<!-- end generated -->";

/// The table between the markers: every code, what happened, the fix, the command and
/// the key.
fn table() -> String {
    let mut out = String::from(
        "| code | what happened | fix | command | key in the TUI |\n|---|---|---|---|---|\n",
    );
    for code in ALL {
        let e = explain(code);
        let command = e
            .command_for("NAME")
            .map_or("—".to_string(), |c| format!("`{c}`"));
        let key = e
            .fix
            .and_then(key_for)
            .map_or("—".to_string(), |k| format!("`{}`", k.label()));
        out += &format!(
            "| `{code}` | {} | {} | {command} | {key} |\n",
            e.summary.replace('|', "\\|"),
            e.remedy.replace('|', "\\|"),
        );
    }
    out += "\nWhy each happens, and what tether already does about it:\n\n";
    for code in ALL {
        let e = explain(code);
        out += &format!("- **`{code}`** — {}\n", e.detail.replace('\n', " "));
    }
    out
}

#[test]
fn the_diagnoses_page_is_generated_from_the_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/diagnoses.md");
    let page = std::fs::read_to_string(path).expect("docs/diagnoses.md");
    let (head, rest) = page.split_once(START).expect("the start marker");
    let (_, tail) = rest.split_once(END).expect("the end marker");
    let wanted = format!("{head}{START}{}{END}{tail}", table());
    if std::env::var_os("TETHER_UPDATE_DOCS").is_some() {
        std::fs::write(path, &wanted).expect("write docs/diagnoses.md");
        return;
    }
    assert!(
        page == wanted,
        "docs/diagnoses.md is out of date: run TETHER_UPDATE_DOCS=1 cargo test -p tether-tui diagnoses_doc"
    );
}
