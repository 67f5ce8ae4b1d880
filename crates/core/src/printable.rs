//! Text from servers made safe to show. A metadata document, an error description or a URL
//! can carry terminal escape sequences (OSC 52 writes the clipboard, `ESC [2J` clears the
//! screen) or bidirectional-text controls that make a line read differently than it is.
//! Every such character is shown escaped (`\x1b`, `\u{202e}`), never sent to a terminal.
//!
//! The command line prints through [`crate::say!`] and [`crate::say_err!`], which pass
//! every line through [`lines`]; history events and evidence are made printable when they
//! are created; the terminal UI skips control characters when it draws.

use std::fmt::Write as _;

/// One line of server text, at most `max` characters (then `…`), every control escaped.
pub fn printable(text: &str, max: usize) -> String {
    // Most text is short printable ASCII: copied whole (the calls collector makes several
    // strings a call this way).
    if text.len() <= max && text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.to_string();
    }
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        push(&mut out, c);
    }
    out
}

/// Text of several lines as the command line prints it: line breaks and tabs kept,
/// every other control escaped.
pub fn lines(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c => push(&mut out, c),
        }
    }
    out
}

fn push(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
    } else if (c as u32) < 0x80 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// Controls (C0, DEL, C1) and the formatting characters that reorder text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `println!` for the command line: the line passes through [`lines`] first.
#[macro_export]
macro_rules! say {
    () => { println!() };
    ($($arg:tt)*) => { println!("{}", $crate::printable::lines(&format!($($arg)*))) };
}

/// `eprintln!` for the command line: the line passes through [`lines`] first.
#[macro_export]
macro_rules! say_err {
    ($($arg:tt)*) => { eprintln!("{}", $crate::printable::lines(&format!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_shown_not_sent() {
        assert_eq!(
            printable("bad\u{1b}]52;c;ZXZpbA==\u{7} grant", 100),
            "bad\\x1b]52;c;ZXZpbA==\\x07 grant"
        );
        assert_eq!(printable("a\nb\u{9b}c", 100), "a\\x0ab\\u{9b}c");
        assert_eq!(
            printable("admin\u{202e}gpj.exe", 100),
            "admin\\u{202e}gpj.exe"
        );
        assert_eq!(printable("plain ünïcode ✓", 100), "plain ünïcode ✓");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("abc", 3), "abc");
    }

    #[test]
    fn lines_keep_their_breaks() {
        assert_eq!(lines("one\n\ttwo\u{1b}[2J"), "one\n\ttwo\\x1b[2J");
        assert_eq!(lines("clean\n"), "clean\n");
    }
}
