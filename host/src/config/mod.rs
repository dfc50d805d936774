//! Settings from flags and environment, validated once into typed values.
//!
//! [`ConfigArgs`] is what clap reads (raw strings, so that every bad value is reported by this
//! module with the variable's name and the accepted values, not by clap); [`Settings`] is what the
//! rest of the program sees. Nothing outside this module reads the environment.

pub mod grader_limits;
pub mod tokens;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};

pub use grader_limits::GraderLimits;
pub use tokens::{Role, Secret, TokenSpec};

/// Where the service listens unless told otherwise: loopback, so a fresh start exposes nothing.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// The data directory unless told otherwise (SQLite file, graders, compile cache).
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The SQLite file name inside the data directory.
pub const DEFAULT_SQLITE_FILE: &str = "flywheel.db";
/// The requirements' default: half the traffic to version B.
pub const DEFAULT_AB_TEST_TRAFFIC_SPLIT: f64 = 0.5;
/// The requirements' default: annotated rows needed before export or optimization.
pub const DEFAULT_MIN_SAMPLES_FOR_OPTIMIZATION: u32 = 50;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The configuration as read from flags and environment variables, before validation. Values
/// that may hold a secret (tokens, API key, a database password) are [`Secret`]s already, so
/// even this raw form never prints them.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// Database: `sqlite://PATH` (default: `sqlite://<data-dir>/flywheel.db`) or
    /// `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Address the server listens on, IP:PORT [default: 127.0.0.1:8080]. A non-loopback address
    /// needs at least one token.
    #[arg(long, env = "FLYWHEEL_BIND", global = true)]
    pub bind: Option<String>,

    /// Data directory: the default SQLite file and graders directory live here [default: ./data].
    #[arg(long, env = "FLYWHEEL_DATA_DIR", global = true)]
    pub data_dir: Option<String>,

    /// API tokens, comma-separated `name:role:secret` entries; roles: read, agent, admin.
    #[arg(long, env = "FLYWHEEL_TOKENS", global = true, hide_env_values = true)]
    pub tokens: Option<Secret>,

    /// File of API tokens, one `name:role:secret` per line, `#` starts a comment.
    #[arg(long, env = "FLYWHEEL_TOKENS_FILE", global = true)]
    pub tokens_file: Option<PathBuf>,

    /// Collect runs, A/B test, export and optimize (true/false) [default: true]. Prompts are
    /// served either way.
    #[arg(long, env = "ENABLE_PROMPT_OPTIMIZATION", global = true)]
    pub enable_prompt_optimization: Option<String>,

    /// Default share of traffic sent to version B of an A/B test, 0 to 1 [default: 0.5].
    #[arg(long, env = "PROMPT_AB_TEST_TRAFFIC_SPLIT", global = true)]
    pub ab_test_traffic_split: Option<String>,

    /// Annotated runs required before export or optimization, a whole number >= 1 [default: 50].
    #[arg(long, env = "PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION", global = true)]
    pub min_samples_for_optimization: Option<String>,

    /// Directory of grader components (`.wasm`), watched for changes
    /// [default: <data-dir>/graders].
    #[arg(long, env = "FLYWHEEL_GRADERS_DIR", global = true)]
    pub graders_dir: Option<String>,

    /// Directory of compiled grader components (a cache keyed by content hash and engine
    /// version; safe to share between instances of the same build, writable only by Flywheel)
    /// [default: <data-dir>/cache].
    #[arg(long, env = "FLYWHEEL_CACHE_DIR", global = true)]
    pub cache_dir: Option<String>,

    /// OpenAI-compatible model endpoint for model graders and the optimizer, http(s)://….
    #[arg(long, env = "OPENAI_BASE_URL", global = true)]
    pub openai_base_url: Option<String>,

    /// API key for the model endpoint (never printed or logged).
    #[arg(long, env = "OPENAI_API_KEY", global = true, hide_env_values = true)]
    pub openai_api_key: Option<Secret>,

    /// Chat model model graders use when their definition names none [default: gpt-4.1-mini].
    #[arg(long, env = "FLYWHEEL_LLM_MODEL", global = true)]
    pub llm_model: Option<String>,

    /// Embeddings model for text_similarity cosine [default: text-embedding-3-small].
    #[arg(long, env = "FLYWHEEL_LLM_EMBEDDING_MODEL", global = true)]
    pub llm_embedding_model: Option<String>,

    /// Time limit of one model call, retries and waits included, 1-3600 seconds [default: 120].
    #[arg(long, env = "FLYWHEEL_LLM_TIMEOUT_SECS", global = true)]
    pub llm_timeout_secs: Option<String>,

    /// Retries of a model call after 429, 5xx or a connection error, 0-10 [default: 3].
    #[arg(long, env = "FLYWHEEL_LLM_MAX_RETRIES", global = true)]
    pub llm_max_retries: Option<String>,

    /// Model calls in flight at once, all endpoints together, 1-1024 [default: 8].
    #[arg(long, env = "FLYWHEEL_LLM_MAX_CONCURRENCY", global = true)]
    pub llm_max_concurrency: Option<String>,

    /// Named model endpoints a grader definition may select with `"endpoint"`:
    /// `name=URL,name=URL`; the key of endpoint `name` is read from
    /// FLYWHEEL_LLM_ENDPOINT_<NAME>_API_KEY.
    #[arg(long, env = "FLYWHEEL_LLM_ENDPOINTS", global = true)]
    pub llm_endpoints: Option<String>,

    /// Tokens (prompt + completion) one grading run may spend on model calls; unset means no
    /// limit. When spent the run ends cleanly: remaining rows report budget_exhausted.
    #[arg(long, env = "FLYWHEEL_LLM_RUN_TOKEN_BUDGET", global = true)]
    pub llm_run_token_budget: Option<String>,
    /// Wall time of one grader call (a row or a batch), milliseconds, 10 to 600000
    /// [default: 2000].
    #[arg(long, env = "FLYWHEEL_GRADER_TIMEOUT_MS", global = true)]
    pub grader_timeout_ms: Option<String>,

    /// Linear memory one grader instance may grow to, MiB, 2 to 4096 [default: 64].
    #[arg(long, env = "FLYWHEEL_GRADER_MEMORY_MB", global = true)]
    pub grader_memory_mb: Option<String>,

    /// Grader calls running at once (sizes the instance pool), 1 to 256 [default: 16].
    #[arg(long, env = "FLYWHEEL_GRADER_MAX_CONCURRENCY", global = true)]
    pub grader_max_concurrency: Option<String>,

    /// Log format: text or json [default: text].
    #[arg(long, env = "FLYWHEEL_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

/// A configuration value that was refused; the message names the variable and what it accepts.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable} (--{flag}){shown}: {problem}; accepted: {accepted}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// The equivalent flag, without dashes.
    pub flag: &'static str,
    /// ` = "value"` when the value may be shown (never for secrets).
    shown: String,
    /// What is wrong.
    pub problem: String,
    /// What would be accepted.
    pub accepted: &'static str,
}

impl ConfigError {
    fn new(
        variable: &'static str,
        flag: &'static str,
        value: Option<&str>,
        problem: impl Into<String>,
        accepted: &'static str,
    ) -> Self {
        ConfigError {
            variable,
            flag,
            shown: value.map(|v| format!(" = {v:?}")).unwrap_or_default(),
            problem: problem.into(),
            accepted,
        }
    }
}

/// Which backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The validated settings every part of the program reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Database URL (secret-free in `Debug`: a password in it is masked).
    pub database_url: DatabaseUrl,
    /// Listening address.
    pub bind: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// API tokens; empty means none configured (only allowed on a loopback address).
    pub tokens: Vec<TokenSpec>,
    /// Feature flag for collection, A/B, export and optimization.
    pub enable_prompt_optimization: bool,
    /// Default share of traffic to version B, in `[0, 1]`.
    pub ab_test_traffic_split: f64,
    /// Annotated runs required before export or optimization.
    pub min_samples_for_optimization: u32,
    /// Directory of grader components.
    pub graders_dir: PathBuf,
    /// Directory of compiled components (`<cache-dir>/components`).
    pub cache_dir: PathBuf,
    /// OpenAI-compatible endpoint, if configured.
    pub openai_base_url: Option<String>,
    /// Its API key, if configured.
    pub openai_api_key: Option<Secret>,
    /// The model client's settings: the default endpoint (`OPENAI_BASE_URL`, `OPENAI_API_KEY`),
    /// named endpoints and their keys, models, time limit, retries, concurrency.
    pub llm: crate::llm::LlmSettings,
    /// Tokens one grading run may spend on model calls (`None`: no limit).
    pub llm_run_token_budget: Option<u64>,
    /// Log format.
    pub log_format: LogFormat,
    /// How long resolve may serve the active version from memory.
    pub resolve_cache_ttl: Duration,
    /// Limits of the grader runtime.
    pub grader_limits: GraderLimits,
}

/// A database URL whose `Debug`/`Display` masks a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    kind: DatabaseKind,
}

impl DatabaseUrl {
    /// Parses and classifies a URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let kind = if url.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DatabaseKind::Postgres
        } else {
            return Err("unknown scheme".to_owned());
        };
        let rest = url.split_once(':').map(|(_, r)| r).unwrap_or_default();
        if rest.trim_start_matches('/').is_empty() {
            return Err("no database given after the scheme".to_owned());
        }
        Ok(DatabaseUrl {
            url: url.to_owned(),
            kind,
        })
    }

    /// The SQLite URL of a file.
    pub fn sqlite_file(path: &Path) -> Self {
        DatabaseUrl {
            url: format!("sqlite://{}", path.display()),
            kind: DatabaseKind::Sqlite,
        }
    }

    /// The full URL, password included; pass it only to the store.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// Which backend.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return self.url.clone();
        };
        match rest.split_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
                None => self.url.clone(),
            },
            None => self.url.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Treats an empty value as unset, so `VAR=` behaves like no `VAR`.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// [`given`] for a secret value.
fn given_secret(value: &Option<Secret>) -> Option<&str> {
    value
        .as_ref()
        .map(|v| v.expose().trim())
        .filter(|v| !v.is_empty())
}

impl Settings {
    /// Validates raw arguments into settings. Reads the tokens file if one is named.
    pub fn from_args(args: &ConfigArgs) -> Result<Settings, ConfigError> {
        let data_dir = PathBuf::from(given(&args.data_dir).unwrap_or(DEFAULT_DATA_DIR));

        let database_url = match given_secret(&args.database_url) {
            None => DatabaseUrl::sqlite_file(&data_dir.join(DEFAULT_SQLITE_FILE)),
            // The value may hold a password, so it is not echoed.
            Some(url) => DatabaseUrl::parse(url).map_err(|problem| {
                ConfigError::new(
                    "DATABASE_URL",
                    "database-url",
                    None,
                    problem,
                    "sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB",
                )
            })?,
        };

        let bind_raw = given(&args.bind).unwrap_or(DEFAULT_BIND);
        let bind: SocketAddr = bind_raw.parse().map_err(|_| {
            ConfigError::new(
                "FLYWHEEL_BIND",
                "bind",
                Some(bind_raw),
                "not an IP:PORT socket address",
                "IP:PORT such as 127.0.0.1:8080 or [::1]:8080",
            )
        })?;

        let mut tokens = match given_secret(&args.tokens) {
            None => Vec::new(),
            Some(list) => tokens::parse_token_list(list).map_err(|problem| {
                ConfigError::new(
                    "FLYWHEEL_TOKENS",
                    "tokens",
                    None,
                    problem,
                    "comma-separated name:role:secret with role read, agent or admin",
                )
            })?,
        };
        if let Some(path) = &args.tokens_file {
            let file_error = |problem: String| {
                ConfigError::new(
                    "FLYWHEEL_TOKENS_FILE",
                    "tokens-file",
                    Some(&path.display().to_string()),
                    problem,
                    "a readable file of name:role:secret lines (role read, agent or admin)",
                )
            };
            let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
            tokens.extend(tokens::parse_token_file(&text).map_err(file_error)?);
        }
        for (i, token) in tokens.iter().enumerate() {
            if tokens[..i].iter().any(|other| other.name == token.name) {
                return Err(ConfigError::new(
                    "FLYWHEEL_TOKENS",
                    "tokens",
                    None,
                    format!("token name {:?} is configured twice", token.name),
                    "unique token names",
                ));
            }
            if tokens[..i].iter().any(|other| other.secret == token.secret) {
                return Err(ConfigError::new(
                    "FLYWHEEL_TOKENS",
                    "tokens",
                    None,
                    format!("token {:?} reuses another token's secret", token.name),
                    "a distinct secret per token",
                ));
            }
        }

        let enable_prompt_optimization = match given(&args.enable_prompt_optimization) {
            None => true,
            Some(v) => parse_bool(v).ok_or_else(|| {
                ConfigError::new(
                    "ENABLE_PROMPT_OPTIMIZATION",
                    "enable-prompt-optimization",
                    Some(v),
                    "not a boolean",
                    "true, false, 1, 0, yes, no, on, off",
                )
            })?,
        };

        let ab_test_traffic_split = match given(&args.ab_test_traffic_split) {
            None => DEFAULT_AB_TEST_TRAFFIC_SPLIT,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| (0.0..=1.0).contains(x))
                .ok_or_else(|| {
                    ConfigError::new(
                        "PROMPT_AB_TEST_TRAFFIC_SPLIT",
                        "ab-test-traffic-split",
                        Some(v),
                        "not a number between 0 and 1",
                        "a number from 0 to 1 inclusive, such as 0.5",
                    )
                })?,
        };

        let min_samples_for_optimization = match given(&args.min_samples_for_optimization) {
            None => DEFAULT_MIN_SAMPLES_FOR_OPTIMIZATION,
            Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                ConfigError::new(
                    "PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION",
                    "min-samples-for-optimization",
                    Some(v),
                    "not a whole number of at least 1",
                    "a whole number from 1 to 4294967295",
                )
            })?,
        };

        let graders_dir = given(&args.graders_dir)
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("graders"));
        let cache_dir = given(&args.cache_dir)
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("cache"));

        let openai_base_url = match given(&args.openai_base_url) {
            None => None,
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => {
                Some(v.trim_end_matches('/').to_owned())
            }
            Some(v) => {
                return Err(ConfigError::new(
                    "OPENAI_BASE_URL",
                    "openai-base-url",
                    Some(v),
                    "not an http(s) URL",
                    "http://HOST[:PORT]/PATH or https://…",
                ));
            }
        };
        let openai_api_key = given_secret(&args.openai_api_key).map(Secret::new);

        let llm = llm_settings(args)?;
        let llm_run_token_budget = match given(&args.llm_run_token_budget) {
            None => None,
            Some(v) => Some(v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                ConfigError::new(
                    "FLYWHEEL_LLM_RUN_TOKEN_BUDGET",
                    "llm-run-token-budget",
                    Some(v),
                    "not a whole number of at least 1",
                    "a whole number of tokens, such as 200000, or unset for no limit",
                )
            })?),
        };

        let log_format = match given(&args.log_format) {
            None => LogFormat::Text,
            Some(v) => LogFormat::from_str(v, true).map_err(|_| {
                ConfigError::new(
                    "FLYWHEEL_LOG_FORMAT",
                    "log-format",
                    Some(v),
                    "unknown log format",
                    "text, json",
                )
            })?,
        };

        let grader_limits = GraderLimits::parse(
            given(&args.grader_timeout_ms),
            given(&args.grader_memory_mb),
            given(&args.grader_max_concurrency),
        )?;

        Ok(Settings {
            grader_limits,
            database_url,
            bind,
            data_dir,
            tokens,
            enable_prompt_optimization,
            ab_test_traffic_split,
            min_samples_for_optimization,
            graders_dir,
            cache_dir,
            openai_base_url,
            openai_api_key,
            llm,
            llm_run_token_budget,
            log_format,
            resolve_cache_ttl: crate::prompts::DEFAULT_RESOLVE_CACHE_TTL,
        })
    }

    /// Refuses to serve on a non-loopback address with no token configured: such a service
    /// would be open to the network.
    pub fn check_bind_is_safe(&self) -> Result<(), ConfigError> {
        if self.tokens.is_empty() && !self.bind.ip().is_loopback() {
            return Err(ConfigError::new(
                "FLYWHEEL_BIND",
                "bind",
                Some(&self.bind.to_string()),
                "a non-loopback address needs at least one API token (FLYWHEEL_TOKENS or --tokens-file)",
                "a loopback address such as 127.0.0.1:8080, or configure FLYWHEEL_TOKENS",
            ));
        }
        Ok(())
    }
}

/// The model client's settings, validated by [`crate::llm::LlmSettings::from_lookup`] from the
/// flags and variables above. The keys of named endpoints have variable names made from the
/// endpoint names (`FLYWHEEL_LLM_ENDPOINT_<NAME>_API_KEY`), so they cannot be clap flags: they
/// are read from the environment here, the only place that reads it.
fn llm_settings(args: &ConfigArgs) -> Result<crate::llm::LlmSettings, ConfigError> {
    let lookup = |name: &str| -> Option<String> {
        let value = match name {
            "OPENAI_BASE_URL" => args.openai_base_url.clone(),
            "OPENAI_API_KEY" => args.openai_api_key.as_ref().map(|k| k.expose().to_owned()),
            "FLYWHEEL_LLM_MODEL" => args.llm_model.clone(),
            "FLYWHEEL_LLM_EMBEDDING_MODEL" => args.llm_embedding_model.clone(),
            "FLYWHEEL_LLM_TIMEOUT_SECS" => args.llm_timeout_secs.clone(),
            "FLYWHEEL_LLM_MAX_RETRIES" => args.llm_max_retries.clone(),
            "FLYWHEEL_LLM_MAX_CONCURRENCY" => args.llm_max_concurrency.clone(),
            "FLYWHEEL_LLM_ENDPOINTS" => args.llm_endpoints.clone(),
            key if key.starts_with("FLYWHEEL_LLM_ENDPOINT_") && key.ends_with("_API_KEY") => {
                std::env::var(key).ok()
            }
            _ => None,
        };
        value.map(|v| v.trim().to_owned())
    };
    crate::llm::LlmSettings::from_lookup(lookup).map_err(|error| {
        let (variable, flag, accepted) = match error.name.as_str() {
            "OPENAI_BASE_URL" => (
                "OPENAI_BASE_URL",
                "openai-base-url",
                "http://HOST[:PORT]/PATH or https://…, without credentials",
            ),
            "FLYWHEEL_LLM_TIMEOUT_SECS" => (
                "FLYWHEEL_LLM_TIMEOUT_SECS",
                "llm-timeout-secs",
                "a whole number of seconds from 1 to 3600",
            ),
            "FLYWHEEL_LLM_MAX_RETRIES" => (
                "FLYWHEEL_LLM_MAX_RETRIES",
                "llm-max-retries",
                "a whole number from 0 to 10",
            ),
            "FLYWHEEL_LLM_MAX_CONCURRENCY" => (
                "FLYWHEEL_LLM_MAX_CONCURRENCY",
                "llm-max-concurrency",
                "a whole number from 1 to 1024",
            ),
            _ => (
                "FLYWHEEL_LLM_ENDPOINTS",
                "llm-endpoints",
                "comma-separated name=URL entries; names of 1-64 characters a-z, 0-9, -, _",
            ),
        };
        // The reason may quote the value (never a key: keys are not parsed, only carried).
        ConfigError::new(variable, flag, None, error.reason, accepted)
    })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(edit: impl FnOnce(&mut ConfigArgs)) -> Result<Settings, ConfigError> {
        let mut args = ConfigArgs::default();
        edit(&mut args);
        Settings::from_args(&args)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = settings(|_| {}).expect("defaults are valid");
        assert_eq!(s.bind.to_string(), DEFAULT_BIND);
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.database_url.expose(), "sqlite://./data/flywheel.db");
        assert_eq!(s.graders_dir, PathBuf::from("./data/graders"));
        assert!(s.enable_prompt_optimization);
        assert_eq!(s.ab_test_traffic_split, 0.5);
        assert_eq!(s.min_samples_for_optimization, 50);
        assert!(s.tokens.is_empty());
        assert_eq!(s.grader_limits, GraderLimits::default());
        s.check_bind_is_safe()
            .expect("loopback without tokens is allowed");
    }

    type Edit = Box<dyn FnOnce(&mut ConfigArgs)>;

    #[test]
    fn each_bad_value_names_its_variable_and_the_accepted_values() {
        let cases: Vec<(&str, Edit, &str)> = vec![
            (
                "DATABASE_URL",
                Box::new(|a| a.database_url = Some("mysql://x".into())),
                "sqlite://",
            ),
            (
                "FLYWHEEL_BIND",
                Box::new(|a| a.bind = Some("localhost".into())),
                "IP:PORT",
            ),
            (
                "FLYWHEEL_TOKENS",
                Box::new(|a| a.tokens = Some("a:god:12345678".into())),
                "read, agent or admin",
            ),
            (
                "ENABLE_PROMPT_OPTIMIZATION",
                Box::new(|a| a.enable_prompt_optimization = Some("maybe".into())),
                "true, false",
            ),
            (
                "PROMPT_AB_TEST_TRAFFIC_SPLIT",
                Box::new(|a| a.ab_test_traffic_split = Some("1.5".into())),
                "from 0 to 1",
            ),
            (
                "PROMPT_AB_TEST_TRAFFIC_SPLIT",
                Box::new(|a| a.ab_test_traffic_split = Some("half".into())),
                "from 0 to 1",
            ),
            (
                "PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION",
                Box::new(|a| a.min_samples_for_optimization = Some("-3".into())),
                "whole number",
            ),
            (
                "OPENAI_BASE_URL",
                Box::new(|a| a.openai_base_url = Some("ftp://x".into())),
                "http",
            ),
            (
                "FLYWHEEL_LOG_FORMAT",
                Box::new(|a| a.log_format = Some("xml".into())),
                "text, json",
            ),
            (
                "FLYWHEEL_LLM_TIMEOUT_SECS",
                Box::new(|a| a.llm_timeout_secs = Some("0".into())),
                "1 to 3600",
            ),
            (
                "FLYWHEEL_LLM_MAX_RETRIES",
                Box::new(|a| a.llm_max_retries = Some("many".into())),
                "0 to 10",
            ),
            (
                "FLYWHEEL_LLM_MAX_CONCURRENCY",
                Box::new(|a| a.llm_max_concurrency = Some("0".into())),
                "1 to 1024",
            ),
            (
                "FLYWHEEL_LLM_ENDPOINTS",
                Box::new(|a| a.llm_endpoints = Some("Bad Name=http://x/v1".into())),
                "name=URL",
            ),
            (
                "FLYWHEEL_LLM_RUN_TOKEN_BUDGET",
                Box::new(|a| a.llm_run_token_budget = Some("0".into())),
                "whole number of tokens",
            ),
            (
                "FLYWHEEL_TOKENS_FILE",
                Box::new(|a| a.tokens_file = Some("/nonexistent/tokens".into())),
                "readable file",
            ),
            (
                "FLYWHEEL_GRADER_TIMEOUT_MS",
                Box::new(|a| a.grader_timeout_ms = Some("0".into())),
                "10 to 600000",
            ),
            (
                "FLYWHEEL_GRADER_MEMORY_MB",
                Box::new(|a| a.grader_memory_mb = Some("lots".into())),
                "2 to 4096",
            ),
            (
                "FLYWHEEL_GRADER_MAX_CONCURRENCY",
                Box::new(|a| a.grader_max_concurrency = Some("1000".into())),
                "1 to 256",
            ),
        ];
        for (variable, edit, accepted) in cases {
            let err = settings(edit).expect_err(variable).to_string();
            assert!(err.contains(variable), "{variable}: {err}");
            assert!(err.contains(accepted), "{variable}: {err}");
        }
    }

    #[test]
    fn secrets_do_not_appear_in_errors_or_debug() {
        let err = settings(|a| a.tokens = Some("ok:read:abcdefgh,bad:nope:hunter2hunter2".into()))
            .expect_err("bad role")
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let s = settings(|a| {
            a.tokens = Some("ok:admin:abcdefgh".into());
            a.openai_api_key = Some("sk-very-secret".into());
            a.database_url = Some("postgres://u:pgpass@h/db".into());
        })
        .expect("valid");
        let debug = format!("{s:?}");
        for secret in ["abcdefgh", "sk-very-secret", "pgpass"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        let raw = ConfigArgs {
            tokens: Some("ok:admin:abcdefgh".into()),
            openai_api_key: Some("sk-very-secret".into()),
            database_url: Some("postgres://u:pgpass@h/db".into()),
            ..ConfigArgs::default()
        };
        let debug = format!("{raw:?}");
        for secret in ["abcdefgh", "sk-very-secret", "pgpass"] {
            assert!(
                !debug.contains(secret),
                "{secret} leaked from raw args: {debug}"
            );
        }
    }

    #[test]
    fn duplicate_token_names_or_secrets_are_refused() {
        assert!(settings(|a| a.tokens = Some("a:read:abcdefgh,a:admin:zyxwvuts".into())).is_err());
        assert!(settings(|a| a.tokens = Some("a:read:abcdefgh,b:admin:abcdefgh".into())).is_err());
    }

    #[test]
    fn non_loopback_without_tokens_is_refused() {
        let s = settings(|a| a.bind = Some("0.0.0.0:8080".into())).expect("parses");
        let err = s.check_bind_is_safe().expect_err("open to the network");
        assert!(err.to_string().contains("FLYWHEEL_TOKENS"), "{err}");
        let s = settings(|a| {
            a.bind = Some("0.0.0.0:8080".into());
            a.tokens = Some("ops:admin:abcdefgh".into());
        })
        .expect("parses");
        s.check_bind_is_safe().expect("tokens make it safe");
    }

    #[test]
    fn tokens_from_the_variable_and_the_file_are_combined() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("tokens");
        std::fs::write(
            &file,
            "# operators
ops:admin:file-secret-1

bot:agent:file-secret-2
",
        )
        .expect("write tokens file");
        let s = settings(|a| {
            a.tokens = Some("reader:read:env-secret-1".into());
            a.tokens_file = Some(file.clone());
        })
        .expect("valid");
        let names: Vec<(&str, Role)> = s.tokens.iter().map(|t| (t.name.as_str(), t.role)).collect();
        assert_eq!(
            names,
            vec![
                ("reader", Role::Read),
                ("ops", Role::Admin),
                ("bot", Role::Agent)
            ]
        );
        std::fs::write(
            &file,
            "ops:admin:file-secret-1
broken line
",
        )
        .expect("write");
        let err = settings(|a| a.tokens_file = Some(file.clone()))
            .expect_err("bad line")
            .to_string();
        assert!(
            err.contains("FLYWHEEL_TOKENS_FILE") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn data_dir_moves_the_default_database_and_graders_dir() {
        let s = settings(|a| a.data_dir = Some("/srv/fw".into())).expect("valid");
        assert_eq!(s.database_url.expose(), "sqlite:///srv/fw/flywheel.db");
        assert_eq!(s.graders_dir, PathBuf::from("/srv/fw/graders"));
    }
}
