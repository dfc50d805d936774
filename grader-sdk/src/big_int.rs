//! Integers too large for `i64`/`u64` in a row's JSON, kept as their digits.
//!
//! serde_json (without `arbitrary_precision`, which the workspace does not enable: it changes
//! how numbers deserialize through `#[serde(untagged)]` and `#[serde(flatten)]`) parses
//! `123456789012345678901234` into the `f64` `1.2345678901234569e23`. OpenAI's templates are
//! Python, whose `int` keeps every digit, so a template must render the digits. The parser
//! cannot keep them, so this module scans the raw text for such integer literals and records
//! each one's digits beside the `f64` serde_json made of it; rendering looks the `f64` up.

use serde_json::Value;

/// Integer literals of one JSON text that do not fit `i64`/`u64`: the `f64` serde_json parses
/// each into, and its digits.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BigInts(Vec<(f64, String)>);

impl BigInts {
    /// Scans `json` (already known to be valid JSON) for integer literals outside strings that
    /// serde_json cannot hold exactly.
    pub(crate) fn scan(json: &str) -> Self {
        let bytes = json.as_bytes();
        // Fast path: no run of 19 digits, no integer beyond i64/u64.
        if !has_digit_run(bytes, 19) {
            return Self::default();
        }
        let mut found = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    while i < bytes.len()
                        && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                    {
                        i += 1;
                    }
                    let literal = &json[start..i];
                    let integer = literal.trim_start_matches('-');
                    if !integer.is_empty()
                        && integer.bytes().all(|b| b.is_ascii_digit())
                        && literal.parse::<i64>().is_err()
                        && literal.parse::<u64>().is_err()
                        && let Ok(Value::Number(n)) = serde_json::from_str::<Value>(literal)
                        && let Some(f) = n.as_f64()
                    {
                        found.push((f, literal.to_owned()));
                    }
                }
                _ => i += 1,
            }
        }
        Self(found)
    }

    /// The digits of the integer literal that parsed to `value`, when exactly one distinct
    /// literal did (two different integers rounding to the same `f64` cannot be told apart).
    pub(crate) fn digits(&self, value: f64) -> Option<&str> {
        let mut matching = self.0.iter().filter(|(f, _)| *f == value).map(|(_, d)| d);
        let first = matching.next()?;
        matching.all(|d| d == first).then_some(first.as_str())
    }
}

fn has_digit_run(bytes: &[u8], len: usize) -> bool {
    let mut run = 0;
    for b in bytes {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run >= len {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json makes of a literal (its float parsing is not always correctly rounded,
    /// so a Rust literal could differ in the last bit).
    fn parsed(literal: &str) -> f64 {
        serde_json::from_str::<Value>(literal)
            .unwrap()
            .as_f64()
            .unwrap()
    }

    #[test]
    fn keeps_only_integers_beyond_64_bits_outside_strings() {
        let json = r#"{"big":123456789012345678901234,"neg":-98765432109876543210,
            "u64":18446744073709551615,"i64":-9223372036854775808,"float":1.5e300,
            "s":"123456789012345678901234567","esc":"\"99999999999999999999999\"",
            "list":[1, 200000000000000000000]}"#;
        let big = BigInts::scan(json);
        let digits: Vec<&str> = big.0.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(
            digits,
            [
                "123456789012345678901234",
                "-98765432109876543210",
                "200000000000000000000"
            ]
        );
        assert_eq!(
            big.digits(parsed("123456789012345678901234")),
            Some("123456789012345678901234")
        );
        assert_eq!(big.digits(1.5), None);
        assert!(BigInts::scan(r#"{"a":12345}"#).0.is_empty());
    }

    #[test]
    fn ambiguous_values_are_not_guessed() {
        // Both round to the same f64.
        let big = BigInts::scan(r#"[123456789012345678901234, 123456789012345678901235]"#);
        assert_eq!(big.digits(parsed("123456789012345678901234")), None);
    }
}
