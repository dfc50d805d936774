//! API tokens as configured: roles, secrets that never print, and the `name:role:secret` syntax
//! shared by `FLYWHEEL_TOKENS` and `--tokens-file`.
//!
//! Verifying a presented token is the API's job (`api::auth`); this module only parses and holds.

use std::fmt;
use std::str::FromStr;

/// What a token may do. Ordered: `Read < Agent < Annotator < Admin`; a role may do everything a
/// lower one may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read prompts, versions, history and failure modes.
    Read,
    /// What `Read` may, plus resolve a prompt for a task, record runs and report outcomes.
    Agent,
    /// What `Agent` may, plus annotate runs (rating, feedback, failure mode): the role of the
    /// people who review outputs, without the power to deploy.
    Annotator,
    /// Everything: create versions, deploy, roll back.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Read, Role::Agent, Role::Annotator, Role::Admin];

    /// The name used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Agent => "agent",
            Role::Annotator => "annotator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (accepted: read, agent, annotator, admin)"))
    }
}

/// A secret string (API key, token) whose `Debug` and `Display` print `***`, so logging a
/// settings struct can never leak it. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used (a comparison, an outgoing header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One configured API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// Who holds it; recorded as the actor of deploys and rollbacks.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The bearer secret.
    pub secret: Secret,
}

/// Secrets shorter than this are refused: a bearer token is only as strong as its length.
pub const MIN_SECRET_LEN: usize = 8;

/// Parses one `name:role:secret` entry. The error never contains the secret.
pub fn parse_token(entry: &str) -> Result<TokenSpec, String> {
    let mut parts = entry.trim().splitn(3, ':');
    let (Some(name), Some(role), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected name:role:secret".to_owned());
    };
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        return Err(format!(
            "token name {name:?} must be non-empty and use only letters, digits, - _ . @"
        ));
    }
    let role: Role = role.trim().parse()?;
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN || secret.chars().any(|c| c.is_whitespace() || c == ',') {
        return Err(format!(
            "secret of token {name:?} must be at least {MIN_SECRET_LEN} characters without spaces or commas"
        ));
    }
    Ok(TokenSpec {
        name: name.to_owned(),
        role,
        secret: Secret::new(secret),
    })
}

/// Parses a comma-separated list of entries (`FLYWHEEL_TOKENS`).
pub fn parse_token_list(list: &str) -> Result<Vec<TokenSpec>, String> {
    list.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .enumerate()
        .map(|(i, entry)| parse_token(entry).map_err(|e| format!("entry {}: {e}", i + 1)))
        .collect()
}

/// Parses a tokens file: one entry per line, blank lines and `#` comments ignored.
pub fn parse_token_file(text: &str) -> Result<Vec<TokenSpec>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#')
        })
        .map(|(i, line)| parse_token(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_read_agent_admin() {
        assert!(Role::Read < Role::Agent && Role::Agent < Role::Annotator);
        assert!(Role::Annotator < Role::Admin);
        assert_eq!("annotator".parse::<Role>(), Ok(Role::Annotator));
        assert_eq!("agent".parse::<Role>(), Ok(Role::Agent));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn secret_never_prints() {
        let t = parse_token("ci:admin:s3cr3t-value").expect("valid entry");
        let printed = format!("{t:?} {}", t.secret);
        assert!(!printed.contains("s3cr3t-value"), "{printed}");
        assert_eq!(t.secret.expose(), "s3cr3t-value");
    }

    #[test]
    fn list_and_file_parse_and_errors_hide_the_secret() {
        let list = parse_token_list("a:read:aaaaaaaa, b:agent:bbbbbbbb").expect("valid list");
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].role, Role::Agent);
        let file = parse_token_file("# ops\n\nops:admin:cccccccc\n").expect("valid file");
        assert_eq!(file[0].name, "ops");

        let err = parse_token_list("a:read:aaaaaaaa,b:boss:topsecret1").unwrap_err();
        assert!(err.contains("entry 2") && err.contains("boss"), "{err}");
        assert!(!err.contains("topsecret1"), "{err}");
        assert!(parse_token("x:read:short").is_err());
        assert!(parse_token("x:read").is_err());
        assert!(parse_token("bad name:read:aaaaaaaa").is_err());
        let err = parse_token_file("ok:read:aaaaaaaa\nnope\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
    }
}
