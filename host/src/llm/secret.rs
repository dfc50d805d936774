//! [`Secret`]: an API key that cannot leak by accident. It prints as `***`, cannot be serialised,
//! and [`redact`] scrubs it from any text that came back from an endpoint.

use std::fmt;

/// What a secret prints as, and what [`redact`] puts in its place.
pub const REDACTED: &str = "***";

/// An API key. Its text is reachable only through [`Secret::expose`], which the client calls
/// once per request to build the `Authorization` header.
///
/// There is deliberately no `Serialize`, no `PartialEq` on the text and no `Deref<Target = str>`:
/// each would be a path for the key into an export, a log line or an error message.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The key's text, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty (an unset variable that was exported as `""`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Replaces every occurrence of every secret in `text` with [`REDACTED`].
///
/// Endpoints do echo keys: OpenAI's 401 message quotes the key it was given, and a proxy may
/// reflect the whole request. Everything the client keeps from a response goes through here.
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        if !secret.is_empty() && text.contains(secret.expose()) {
            text = text.replace(secret.expose(), REDACTED);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_key() {
        let secret = Secret::new("sk-live-abcdef123456");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(***)");
        assert_eq!(secret.expose(), "sk-live-abcdef123456");
    }

    #[test]
    fn redact_scrubs_every_occurrence_of_every_key() {
        let a = Secret::new("sk-aaaa1111");
        let b = Secret::new("sk-bbbb2222");
        let text = "bad key sk-aaaa1111 (Bearer sk-aaaa1111), other sk-bbbb2222.";
        let clean = redact(text, [&a, &b]);
        assert_eq!(clean, "bad key *** (Bearer ***), other ***.");
    }

    #[test]
    fn redact_ignores_empty_keys() {
        let empty = Secret::new("");
        assert_eq!(redact("unchanged", [&empty]), "unchanged");
    }
}
