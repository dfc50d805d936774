//! Settings from flags and environment, validated once into typed values.
//!
//! [`ConfigArgs`] is the raw form (strings, so that every bad value is reported by this module
//! with the variable's name and the accepted values, not by clap), read by the command line in
//! groups ([`args`]); [`Settings`] is what the rest of the program sees. Each variable's names
//! are written once, in [`field`]. Nothing outside this module reads the environment.

pub mod args;
pub mod field;
pub mod grader_limits;
pub mod tokens;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;

pub use args::ConfigArgs;
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
/// How long a claim on a grading job holds without renewal, by default: long enough that a busy
/// instance renews it in time, short enough that a dead instance's job restarts within a minute.
pub const DEFAULT_JOB_LEASE: Duration = Duration::from_secs(30);
/// The server-side time limit of one API request by default (`FLYWHEEL_REQUEST_TIMEOUT_SECS`):
/// far above any normal answer (grader validation is bounded well below it), short enough that a
/// stuck request frees its connection and database handle instead of holding them for minutes.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often running A/B tests are evaluated by default (`FLYWHEEL_AB_EVALUATE_SECS`).
pub const DEFAULT_AB_EVALUATE: Duration = Duration::from_secs(60);

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
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
    pub(crate) fn new(
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
    /// How often the server evaluates running A/B tests (`FLYWHEEL_AB_EVALUATE_SECS`).
    pub ab_evaluate_interval: Duration,
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
    /// How long a claim on a grading job holds without renewal (`FLYWHEEL_JOB_LEASE_SECS`).
    pub job_lease: Duration,
    /// Server-side time limit of one API request (`FLYWHEEL_REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
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
        let database_url = field::DATABASE_URL
            .parse_with(given_secret(&args.database_url), DatabaseUrl::parse)?
            .unwrap_or_else(|| DatabaseUrl::sqlite_file(&data_dir.join(DEFAULT_SQLITE_FILE)));
        let bind = field::BIND
            .parse(
                Some(given(&args.bind).unwrap_or(DEFAULT_BIND)),
                "not an IP:PORT socket address",
                |v| v.parse::<SocketAddr>().ok(),
            )?
            .expect("a default is given");
        let tokens = read_tokens(args)?;
        let enable_prompt_optimization = field::ENABLE_PROMPT_OPTIMIZATION
            .parse(
                given(&args.enable_prompt_optimization),
                "not a boolean",
                parse_bool,
            )?
            .unwrap_or(true);
        let ab_test_traffic_split = field::AB_TEST_TRAFFIC_SPLIT
            .parse(
                given(&args.ab_test_traffic_split),
                "not a number between 0 and 1",
                |v| v.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)),
            )?
            .unwrap_or(DEFAULT_AB_TEST_TRAFFIC_SPLIT);
        let ab_evaluate_interval = field::AB_EVALUATE_SECS
            .parse(
                given(&args.ab_evaluate_secs),
                "not a whole number of seconds from 1 to 86400",
                |v| v.parse::<u64>().ok().filter(|n| (1..=86_400).contains(n)),
            )?
            .map_or(DEFAULT_AB_EVALUATE, Duration::from_secs);
        let min_samples_for_optimization = field::MIN_SAMPLES_FOR_OPTIMIZATION
            .parse(
                given(&args.min_samples_for_optimization),
                "not a whole number of at least 1",
                |v| v.parse::<u32>().ok().filter(|n| *n >= 1),
            )?
            .unwrap_or(DEFAULT_MIN_SAMPLES_FOR_OPTIMIZATION);
        let graders_dir = given(&args.graders_dir)
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("graders"));
        let cache_dir = given(&args.cache_dir)
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("cache"));
        let openai_base_url = field::OPENAI_BASE_URL.parse(
            given(&args.openai_base_url),
            "not an http(s) URL",
            |v| {
                (v.starts_with("http://") || v.starts_with("https://"))
                    .then(|| v.trim_end_matches('/').to_owned())
            },
        )?;
        let openai_api_key = given_secret(&args.openai_api_key).map(Secret::new);
        let llm = llm_settings(args)?;
        let llm_run_token_budget = field::LLM_RUN_TOKEN_BUDGET.parse(
            given(&args.llm_run_token_budget),
            "not a whole number of at least 1",
            |v| v.parse::<u64>().ok().filter(|n| *n >= 1),
        )?;
        let log_format = field::LOG_FORMAT
            .parse(given(&args.log_format), "unknown log format", |v| {
                LogFormat::from_str(v, true).ok()
            })?
            .unwrap_or(LogFormat::Text);
        let job_lease = field::JOB_LEASE_SECS
            .parse(
                given(&args.job_lease_secs),
                "not a whole number of seconds from 1 to 3600",
                |v| v.parse::<u64>().ok().filter(|n| (1..=3600).contains(n)),
            )?
            .map_or(DEFAULT_JOB_LEASE, Duration::from_secs);
        let request_timeout = field::REQUEST_TIMEOUT_SECS
            .parse(
                given(&args.request_timeout_secs),
                "not a whole number of seconds from 1 to 3600",
                |v| v.parse::<u64>().ok().filter(|n| (1..=3600).contains(n)),
            )?
            .map_or(DEFAULT_REQUEST_TIMEOUT, Duration::from_secs);
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
            ab_evaluate_interval,
            min_samples_for_optimization,
            graders_dir,
            cache_dir,
            openai_base_url,
            openai_api_key,
            llm,
            llm_run_token_budget,
            log_format,
            resolve_cache_ttl: crate::prompts::DEFAULT_RESOLVE_CACHE_TTL,
            job_lease,
            request_timeout,
        })
    }

    /// Refuses to serve on a non-loopback address with no token configured: such a service
    /// would be open to the network.
    pub fn check_bind_is_safe(&self) -> Result<(), ConfigError> {
        if self.tokens.is_empty() && !self.bind.ip().is_loopback() {
            return Err(field::BIND.error_accepting(
                &self.bind.to_string(),
                format!(
                    "a non-loopback address needs at least one API token ({} or --{})",
                    field::TOKENS.variable,
                    field::TOKENS_FILE.flag
                ),
                "a loopback address such as 127.0.0.1:8080, or configure FLYWHEEL_TOKENS",
            ));
        }
        Ok(())
    }
}

/// The tokens of `FLYWHEEL_TOKENS` and the file of `FLYWHEEL_TOKENS_FILE`, each name and secret
/// used once.
fn read_tokens(args: &ConfigArgs) -> Result<Vec<TokenSpec>, ConfigError> {
    let mut tokens = field::TOKENS
        .parse_with(given_secret(&args.tokens), tokens::parse_token_list)?
        .unwrap_or_default();
    if let Some(path) = &args.tokens_file {
        let shown = path.display().to_string();
        let file_error = |problem: String| field::TOKENS_FILE.error(&shown, problem);
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        tokens.extend(tokens::parse_token_file(&text).map_err(file_error)?);
    }
    for (i, token) in tokens.iter().enumerate() {
        if tokens[..i].iter().any(|other| other.name == token.name) {
            return Err(field::TOKENS.error_accepting(
                "",
                format!("token name {:?} is configured twice", token.name),
                "unique token names",
            ));
        }
        if tokens[..i].iter().any(|other| other.secret == token.secret) {
            return Err(field::TOKENS.error_accepting(
                "",
                format!("token {:?} reuses another token's secret", token.name),
                "a distinct secret per token",
            ));
        }
    }
    Ok(tokens)
}

/// The model client's settings, validated by [`crate::llm::LlmSettings::from_lookup`] from the
/// flags and variables above. The keys of named endpoints have variable names made from the
/// endpoint names (`FLYWHEEL_LLM_ENDPOINT_<NAME>_API_KEY`), so they cannot be clap flags: they
/// are read from the environment here, the only place that reads it.
fn llm_settings(args: &ConfigArgs) -> Result<crate::llm::LlmSettings, ConfigError> {
    let lookup = |name: &str| -> Option<String> {
        if name.starts_with("FLYWHEEL_LLM_ENDPOINT_") && name.ends_with("_API_KEY") {
            return std::env::var(name).ok().map(|v| v.trim().to_owned());
        }
        args.model_value(name)
    };
    crate::llm::LlmSettings::from_lookup(lookup).map_err(|error| {
        let field = [
            field::OPENAI_BASE_URL,
            field::LLM_TIMEOUT_SECS,
            field::LLM_MAX_RETRIES,
            field::LLM_MAX_CONCURRENCY,
        ]
        .into_iter()
        .find(|f| f.variable == error.name)
        .unwrap_or(field::LLM_ENDPOINTS);
        // The reason may quote the value (never a key: keys are not parsed, only carried).
        ConfigError::new(
            field.variable,
            field.flag,
            None,
            error.reason,
            field.accepted,
        )
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
mod tests;
