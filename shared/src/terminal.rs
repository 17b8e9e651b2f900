//! Making text from metadata and servers safe to show on a terminal.
//!
//! Tag names, role names, key IDs, paths and server error messages come
//! from people and machines that may be hostile. Printed raw, a control
//! character can forge lines (`\n`, `\t` in tab-separated output), erase or
//! rewrite what is on the screen (`\r`, ANSI escape sequences) or reorder
//! what the reader sees (Unicode bidirectional overrides). Every piece of
//! such text goes through [`escape`] (or [`Escaped`] inside `format!`)
//! before it reaches stdout or stderr; JSON output is already escaped by
//! serde_json.

use std::borrow::Cow;
use std::fmt;

/// Does `c` change what a terminal shows beyond printing itself?
fn is_unsafe(c: char) -> bool {
    c.is_control()
        // Unicode line and paragraph separators.
        || matches!(c, '\u{2028}' | '\u{2029}')
        // Bidirectional embeddings, overrides and isolates ("Trojan Source").
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `text` with every control, line-separating and bidirectional-override
/// character replaced by a visible escape (`\n`, `\t`, `\r`, `\u{1b}`), and
/// backslashes doubled so an escape cannot be faked. Borrowed when nothing
/// needed escaping, which is the usual case.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) || c == '\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A `Display` wrapper that escapes as [`escape`] does, for use inside
/// `format!`: `format!("{}\t{}", Escaped(&tag), Escaped(&role))`.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// Escape each of `items` and join them with `sep`.
pub fn escape_join<S: AsRef<str>>(items: &[S], sep: &str) -> String {
    items
        .iter()
        .map(|s| escape(s.as_ref()).into_owned())
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(
            escape("release-1.2_x"),
            Cow::Borrowed("release-1.2_x")
        ));
        assert_eq!(escape("café ünïcode"), "café ünïcode");
    }

    #[test]
    fn forged_lines_and_fields_become_visible() {
        let forged = "dev-zzz\t-\t0\tdev-robot\nlatest\tsha256:aa\t1234\ttargets";
        let shown = escape(forged);
        assert!(!shown.contains('\n') && !shown.contains('\t'));
        assert_eq!(
            shown,
            "dev-zzz\\t-\\t0\\tdev-robot\\nlatest\\tsha256:aa\\t1234\\ttargets"
        );
    }

    #[test]
    fn terminal_controls_and_bidi_overrides_are_escaped() {
        let erase = "abc\r\u{1b}[2Kfake";
        assert_eq!(escape(erase), "abc\\r\\u{1b}[2Kfake");
        assert_eq!(escape("a\u{202E}b"), "a\\u{202e}b");
        assert_eq!(escape("a\u{9b}b"), "a\\u{9b}b"); // C1 CSI
        assert_eq!(escape("a\u{2028}b"), "a\\u{2028}b");
        assert_eq!(escape("\u{7f}"), "\\u{7f}");
    }

    #[test]
    fn an_escape_cannot_be_faked_with_backslashes() {
        // A literal backslash-n must not look like an escaped newline.
        assert_eq!(escape("a\\nb"), "a\\\\nb");
        assert_ne!(escape("a\\nb"), escape("a\nb"));
    }

    #[test]
    fn wrapper_and_join() {
        assert_eq!(format!("[{}]", Escaped("x\ty")), "[x\\ty]");
        assert_eq!(escape_join(&["a", "b\nc"], ","), "a,b\\nc");
    }
}
