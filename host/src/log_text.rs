//! Values that come from outside (file names, paths, errors quoting a component or an endpoint)
//! written into logs: [`Untrusted`] escapes their control characters, so a file named
//! `evil\x1b[31m\nFAKE LINE.wasm` cannot colour a terminal or forge a log line in the text
//! format. (The JSON format escapes them already; this makes the text format as safe.)

use std::fmt;

/// A value to log whose control characters are written escaped (`\n`, `\u{1b}`).
pub struct Untrusted<T>(pub T);

impl<T: fmt::Display> fmt::Display for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        for c in text.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let shown = Untrusted("évil\u{1b}[31m\nFAKE\tLINE\u{7f}.wasm").to_string();
        assert_eq!(shown, "évil\\u{1b}[31m\\nFAKE\\tLINE\\u{7f}.wasm");
        assert_eq!(Untrusted("plain name").to_string(), "plain name");
    }
}
