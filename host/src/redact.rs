//! Secret redaction: what an export applies to every string it writes, so API keys and
//! passwords that agents echoed into their inputs or outputs do not leave the service in a file.
//! A secret is replaced by `[REDACTED:<kind>]`; what surrounds it stays. This module owns the
//! pattern list below (its version, [`PATTERNS_VERSION`], is sent with each export) and the
//! [`Redactor`], which counts what it replaced.
//!
//! # Patterns (version 1), applied in this order
//!
//! | kind | matches |
//! |---|---|
//! | `private_key` | `-----BEGIN … PRIVATE KEY-----` … `-----END … PRIVATE KEY-----` (PEM, any key type), whole block |
//! | `anthropic_key` | `sk-ant-` + 20 or more of `[A-Za-z0-9_-]` |
//! | `openai_key` | `sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-` + 20 or more of `[A-Za-z0-9_-]` holding a digit (a random key does, a hyphenated phrase does not), at a word start |
//! | `stripe_key` | `sk_live_`, `rk_live_` + 20 or more alphanumerics |
//! | `aws_access_key_id` | `AKIA` or `ASIA` + 16 of `[A-Z0-9]`, a whole word |
//! | `aws_secret_access_key` | the 40-character value after `aws_secret_access_key` `=`/`:` (any case, optional quote); the name is kept |
//! | `github_token` | `ghp_`, `gho_`, `ghs_`, `ghu_`, `ghr_` + 36 or more alphanumerics; `github_pat_` + 22 or more of `[A-Za-z0-9_]` |
//! | `slack_token` | `xoxa-`, `xoxb-`, `xoxp-`, `xoxr-` + 10 or more of `[A-Za-z0-9-]` |
//! | `google_api_key` | `AIza` + 35 of `[A-Za-z0-9_-]` |
//! | `jwt` | three base64url parts joined by `.`, the first starting `eyJ` (a JSON header) |
//! | `bearer_token` | the token after `Bearer ` (any case; so `Authorization: Bearer …` too): 16 or more of `[A-Za-z0-9-._~+/]` then `=` padding, holding a digit; `Bearer ` is kept |
//! | `url_password` | the password in `scheme://user:PASSWORD@host`; scheme, user and host are kept |
//! | `connection_string_password` | the value after `password=`, `passwd=` or `pwd=` (any case; quoted, or up to `;`, `&` or white space), as in DSNs and ADO.NET strings; the name is kept |
//!
//! Look-alikes are left alone on purpose: `sk-` inside a word (`risk-based`), short prefixes
//! (`ghp_x`), UUIDs, git hashes, base64 that is not a JWT, `user@host` after a path, a URL with a
//! user and no password, and the word "password" without `=`. A provider-specific key is matched
//! before the generic bearer pattern, so `Bearer sk-…` is counted as `openai_key`. Text already
//! redacted (`[REDACTED:…]`) is never matched again, so redacting twice changes nothing.
//!
//! The list catches the common formats, not every secret: a password in free prose, or a key
//! of a provider not listed, goes out as written.

use std::sync::LazyLock;

use regex::{Captures, Regex, RegexSet};
use serde_json::Value;

/// The version of the pattern list, sent with each export (`X-Flywheel-Redaction`). Bump it
/// whenever a pattern is added or changed.
pub const PATTERNS_VERSION: u32 = 1;

/// One pattern: its kind, its expression, the capture group that holds the secret (0: the whole
/// match; the groups around it are kept), and a check the secret must pass.
struct Pattern {
    kind: &'static str,
    regex: &'static str,
    secret_group: usize,
    check: fn(&str) -> bool,
}

fn any(_: &str) -> bool {
    true
}

fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

fn not_redacted(s: &str) -> bool {
    !s.starts_with("[REDACTED:")
}

const PATTERNS: &[Pattern] = &[
    Pattern {
        kind: "private_key",
        regex: r"(?s)-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        secret_group: 0,
        check: any,
    },
    Pattern {
        kind: "anthropic_key",
        regex: r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
        secret_group: 0,
        check: any,
    },
    Pattern {
        kind: "openai_key",
        regex: r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
        secret_group: 0,
        check: has_digit,
    },
    Pattern {
        kind: "stripe_key",
        regex: r"\b(?:sk|rk)_live_[A-Za-z0-9]{20,}",
        secret_group: 0,
        check: any,
    },
    Pattern {
        kind: "aws_access_key_id",
        regex: r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        secret_group: 0,
        check: any,
    },
    Pattern {
        kind: "aws_secret_access_key",
        regex: r#"(?i)(aws_secret_access_key["']?\s*[=:]\s*["']?)([A-Za-z0-9/+]{40})"#,
        secret_group: 2,
        check: any,
    },
    Pattern {
        kind: "github_token",
        regex: r"\b(?:gh[posur]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
        secret_group: 0,
        check: any,
    },
    Pattern {
        kind: "slack_token",
        regex: r"\bxox[abpr]-[A-Za-z0-9\-]{10,}",
        secret_group: 0,
        check: any,
    },
    Pattern {
        kind: "google_api_key",
        regex: r"\bAIza[A-Za-z0-9_\-]{35}",
        secret_group: 0,
        check: any,
    },
    Pattern {
        kind: "jwt",
        regex: r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}",
        secret_group: 0,
        check: any,
    },
    Pattern {
        kind: "bearer_token",
        regex: r"(?i)(\bbearer\s+)([A-Za-z0-9\-._~+/]{16,}=*)",
        secret_group: 2,
        check: has_digit,
    },
    Pattern {
        kind: "url_password",
        regex: r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\[\]]+:)([^\s@/]+)(@)",
        secret_group: 2,
        check: not_redacted,
    },
    Pattern {
        kind: "connection_string_password",
        regex: r#"(?i)(\b(?:password|passwd|pwd)\s*=\s*)('[^']*'|"[^"]*"|[^\s;&'"]+)"#,
        secret_group: 2,
        check: not_redacted,
    },
];

/// The compiled patterns, and a set that says in one pass which of them may match.
struct Compiled {
    set: RegexSet,
    regexes: Vec<Regex>,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let sources: Vec<&str> = PATTERNS.iter().map(|p| p.regex).collect();
    Compiled {
        // The patterns are constants, covered by the unit tests: failing here is a bug.
        set: RegexSet::new(&sources).expect("redaction patterns compile"),
        regexes: sources
            .iter()
            .map(|s| Regex::new(s).expect("redaction pattern compiles"))
            .collect(),
    }
});

/// Replaces secrets in strings by `[REDACTED:<kind>]` and counts what it replaced.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Secrets replaced.
    pub replacements: u64,
    /// Strings in which at least one secret was replaced.
    pub values: u64,
}

impl Redactor {
    /// A redactor with its counts at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// `text` with its secrets replaced, or `None` when it holds none.
    pub fn redact_str(&mut self, text: &str) -> Option<String> {
        let compiled = &*COMPILED;
        let candidates = compiled.set.matches(text);
        if !candidates.matched_any() {
            return None;
        }
        let mut current: Option<String> = None;
        let mut replaced = 0u64;
        for index in candidates.iter() {
            let pattern = &PATTERNS[index];
            let source = current.as_deref().unwrap_or(text);
            let mut count = 0u64;
            let next = compiled.regexes[index].replace_all(source, |caps: &Captures| {
                let whole = caps.get(0).map_or("", |m| m.as_str());
                let secret = caps.get(pattern.secret_group).map_or("", |m| m.as_str());
                if !(pattern.check)(secret) {
                    return whole.to_owned();
                }
                count += 1;
                let mut out = String::with_capacity(whole.len());
                for group in 1..caps.len() {
                    if group == pattern.secret_group {
                        out.push_str("[REDACTED:");
                        out.push_str(pattern.kind);
                        out.push(']');
                    } else if pattern.secret_group != 0 {
                        out.push_str(caps.get(group).map_or("", |m| m.as_str()));
                    }
                }
                if pattern.secret_group == 0 {
                    out.push_str("[REDACTED:");
                    out.push_str(pattern.kind);
                    out.push(']');
                }
                out
            });
            if count > 0 {
                replaced += count;
                current = Some(next.into_owned());
            }
        }
        if replaced == 0 {
            return None;
        }
        self.replacements += replaced;
        self.values += 1;
        current
    }

    /// Redacts every string inside the object's values (keys are names, left as they are).
    pub fn redact_map(&mut self, map: &mut serde_json::Map<String, Value>) {
        map.values_mut().for_each(|v| self.redact_value(v));
    }

    /// Redacts every string inside `value` (object keys are left as they are: they are names).
    pub fn redact_value(&mut self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Some(clean) = self.redact_str(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.redact_value(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Realistic secrets (made up, in the providers' formats), each in a sentence: the text
    /// and what it must become.
    const SECRETS: &[(&str, &str)] = &[
        (
            "key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7CD0ef_gh-IJ in config",
            "key [REDACTED:openai_key] in config",
        ),
        (
            "OPENAI_API_KEY=sk-4fG7hJ2kL9mN3pQ6rS8tV1wX5yZ0aB4cD7eF2gH9jK3lM6nP",
            "OPENAI_API_KEY=[REDACTED:openai_key]",
        ),
        (
            "use sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe-Dc_BaZx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDc-AAAA now",
            "use [REDACTED:anthropic_key] now",
        ),
        (
            "stripe sk_live_51HxYzAbCdEfGhIjKlMnOpQr and rk_live_51HxYzAbCdEfGhIjKlMnOpQr",
            "stripe [REDACTED:stripe_key] and [REDACTED:stripe_key]",
        ),
        (
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_access_key_id = [REDACTED:aws_access_key_id]\naws_secret_access_key = [REDACTED:aws_secret_access_key]",
        ),
        (
            "{\"AWS_SECRET_ACCESS_KEY\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\", \"id\": \"ASIAY34FZKBOKMUTVV7A\"}",
            "{\"AWS_SECRET_ACCESS_KEY\": \"[REDACTED:aws_secret_access_key]\", \"id\": \"[REDACTED:aws_access_key_id]\"}",
        ),
        (
            "git clone https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r",
            "git clone https://[REDACTED:github_token]@github.com/o/r",
        ),
        (
            "tokens gho_16C7e42F292c6912E7710c838347Ae178B4a ghs_16C7e42F292c6912E7710c838347Ae178B4a ghu_16C7e42F292c6912E7710c838347Ae178B4a",
            "tokens [REDACTED:github_token] [REDACTED:github_token] [REDACTED:github_token]",
        ),
        (
            "GH_TOKEN=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW",
            "GH_TOKEN=[REDACTED:github_token]",
        ),
        (
            "slack xoxb-2048-1234567890-AbCdEfGhIjKlMnOpQrStUvWx and xoxp-12345-67890-abcdef",
            "slack [REDACTED:slack_token] and [REDACTED:slack_token]",
        ),
        (
            "maps key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY.",
            "maps key=[REDACTED:google_api_key].",
        ),
        (
            "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543-tok",
            "Authorization: Bearer [REDACTED:bearer_token]",
        ),
        (
            "curl -H 'authorization: bearer AbCdEf0123456789GhIjKl==' x",
            "curl -H 'authorization: bearer [REDACTED:bearer_token]' x",
        ),
        (
            "token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c ok",
            "token [REDACTED:jwt] ok",
        ),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWhlcmU",
            "Authorization: Bearer [REDACTED:jwt]",
        ),
        (
            "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE8Wc0Ck3pX0yQ==\n-----END RSA PRIVATE KEY-----\nend",
            "key:\n[REDACTED:private_key]\nend",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY----- and -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
            "[REDACTED:private_key] and [REDACTED:private_key]",
        ),
        (
            "DATABASE_URL=postgres://app:s3cr3t-P4ss@db.internal:5432/prod",
            "DATABASE_URL=postgres://app:[REDACTED:url_password]@db.internal:5432/prod",
        ),
        (
            "redis://default:hunter2@cache:6379 and https://bob:pa%40ss@example.com/x",
            "redis://default:[REDACTED:url_password]@cache:6379 and https://bob:[REDACTED:url_password]@example.com/x",
        ),
        (
            "Server=db;Database=app;User Id=sa;Password=Tr0ub4dor!3x;Encrypt=true",
            "Server=db;Database=app;User Id=sa;Password=[REDACTED:connection_string_password];Encrypt=true",
        ),
        (
            "host=db user=app password='two words' dbname=x and pwd=abc123",
            "host=db user=app password=[REDACTED:connection_string_password] dbname=x and pwd=[REDACTED:connection_string_password]",
        ),
    ];

    /// Text that looks like a secret and is not: it must come out unchanged.
    const LOOK_ALIKES: &[&str] = &[
        "a risk-based approach to task-based planning",
        "the sk-learn style and sk-this-is-a-long-hyphenated-phrase",
        "short ghp_x and gho_abc and github_pat_ alone",
        "run id 3f2b6c1e-8a4d-4f6e-9b2a-1c3d5e7f9a0b",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 and abbreviated 9fceb02",
        "base64 eyJmb28iOiJiYXIifQ== is a JSON object, not a token",
        "version 1.2.3 and eyJhbGc.short.x",
        "see https://example.com/user@host and mailto:me@example.com",
        "ssh://git@github.com/o/r.git and https://user@example.com/path",
        "http://localhost:8080/path@v2 and https://host:443/x",
        "send a password reset email; the password field is required",
        "the bearer of bad news; Bearer authentication-schemes",
        "AKIA is a prefix; AKIASHORT1 too",
        "AIza alone, xoxb- alone, sk_live_ alone",
        "BEGIN PRIVATE KEY without dashes",
        "[REDACTED:openai_key] and postgres://u:[REDACTED:url_password]@h",
    ];

    #[test]
    fn every_secret_in_the_corpus_is_redacted_and_its_surroundings_kept() {
        for (text, expected) in SECRETS {
            let mut redactor = Redactor::new();
            let got = redactor.redact_str(text);
            assert_eq!(got.as_deref(), Some(*expected), "redacting {text:?}");
            assert_eq!(redactor.values, 1);
            assert_eq!(
                redactor.replacements,
                expected.matches("[REDACTED:").count() as u64,
                "{text:?}"
            );
        }
    }

    #[test]
    fn look_alikes_survive() {
        let mut redactor = Redactor::new();
        for text in LOOK_ALIKES {
            assert_eq!(redactor.redact_str(text), None, "{text:?} was changed");
        }
        assert_eq!((redactor.values, redactor.replacements), (0, 0));
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let mut redactor = Redactor::new();
        for (_, expected) in SECRETS {
            assert_eq!(redactor.redact_str(expected), None, "{expected:?}");
        }
    }

    #[test]
    fn every_pattern_is_exercised_by_the_corpus() {
        for pattern in PATTERNS {
            let tag = format!("[REDACTED:{}]", pattern.kind);
            assert!(
                SECRETS.iter().any(|(_, e)| e.contains(&tag)),
                "no corpus case for {}",
                pattern.kind
            );
        }
    }

    #[test]
    fn values_are_walked_and_counted_once_each() {
        let mut value = serde_json::json!({
            "item": {"task": "use sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "n": 3, "ok": true},
            "list": ["plain", "ghp_16C7e42F292c6912E7710c838347Ae178B4a and AKIAIOSFODNN7EXAMPLE"],
            "sample": null,
        });
        let mut redactor = Redactor::new();
        redactor.redact_value(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "item": {"task": "use [REDACTED:anthropic_key]", "n": 3, "ok": true},
                "list": ["plain", "[REDACTED:github_token] and [REDACTED:aws_access_key_id]"],
                "sample": null,
            })
        );
        assert_eq!((redactor.values, redactor.replacements), (2, 3));
    }
}
