//! Every setting's names, written once: the environment variable, the flag and what it accepts.
//! Clap's attributes ([`super::args`]), the environment reader and every error message take them
//! from here, so a renamed variable cannot leave a stale message or flag behind.

use super::ConfigError;

/// One setting's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The environment variable, e.g. `FLYWHEEL_BIND`.
    pub variable: &'static str,
    /// The flag without its dashes, e.g. `bind`.
    pub flag: &'static str,
    /// What a valid value looks like, for error messages.
    pub accepted: &'static str,
    /// A secret is never echoed in an error.
    pub secret: bool,
}

const fn field(variable: &'static str, flag: &'static str, accepted: &'static str) -> Field {
    Field {
        variable,
        flag,
        accepted,
        secret: false,
    }
}

const fn secret(variable: &'static str, flag: &'static str, accepted: &'static str) -> Field {
    Field {
        variable,
        flag,
        accepted,
        secret: true,
    }
}

pub const DATABASE_URL: Field = secret(
    "DATABASE_URL",
    "database-url",
    "sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB",
);
pub const DATA_DIR: Field = field("FLYWHEEL_DATA_DIR", "data-dir", "a directory");
pub const BIND: Field = field(
    "FLYWHEEL_BIND",
    "bind",
    "IP:PORT such as 127.0.0.1:8080 or [::1]:8080",
);
pub const TOKENS: Field = secret(
    "FLYWHEEL_TOKENS",
    "tokens",
    "comma-separated name:role:secret with role read, agent or admin",
);
pub const TOKENS_FILE: Field = field(
    "FLYWHEEL_TOKENS_FILE",
    "tokens-file",
    "a readable file of name:role:secret lines (role read, agent or admin)",
);
pub const ENABLE_PROMPT_OPTIMIZATION: Field = field(
    "ENABLE_PROMPT_OPTIMIZATION",
    "enable-prompt-optimization",
    "true, false, 1, 0, yes, no, on, off",
);
pub const AB_EVALUATE_SECS: Field = field(
    "FLYWHEEL_AB_EVALUATE_SECS",
    "ab-evaluate-secs",
    "a whole number of seconds from 1 to 86400, such as 60",
);
pub const AB_TEST_TRAFFIC_SPLIT: Field = field(
    "PROMPT_AB_TEST_TRAFFIC_SPLIT",
    "ab-test-traffic-split",
    "a number from 0 to 1 inclusive, such as 0.5",
);
pub const MIN_SAMPLES_FOR_OPTIMIZATION: Field = field(
    "PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION",
    "min-samples-for-optimization",
    "a whole number from 1 to 4294967295",
);
pub const GRADERS_DIR: Field = field("FLYWHEEL_GRADERS_DIR", "graders-dir", "a directory");
pub const CACHE_DIR: Field = field("FLYWHEEL_CACHE_DIR", "cache-dir", "a directory");
pub const GRADER_TIMEOUT_MS: Field = field(
    "FLYWHEEL_GRADER_TIMEOUT_MS",
    "grader-timeout-ms",
    "a whole number of milliseconds from 10 to 600000, such as 2000",
);
pub const GRADER_MEMORY_MB: Field = field(
    "FLYWHEEL_GRADER_MEMORY_MB",
    "grader-memory-mb",
    "a whole number of MiB from 2 to 4096, such as 64",
);
pub const GRADER_MAX_CONCURRENCY: Field = field(
    "FLYWHEEL_GRADER_MAX_CONCURRENCY",
    "grader-max-concurrency",
    "a whole number from 1 to 256, such as 16",
);
pub const OPENAI_BASE_URL: Field = field(
    "OPENAI_BASE_URL",
    "openai-base-url",
    "http://HOST[:PORT]/PATH or https://…, without credentials",
);
pub const OPENAI_API_KEY: Field = secret("OPENAI_API_KEY", "openai-api-key", "any key");
pub const LLM_MODEL: Field = field("FLYWHEEL_LLM_MODEL", "llm-model", "a model name");
pub const LLM_EMBEDDING_MODEL: Field = field(
    "FLYWHEEL_LLM_EMBEDDING_MODEL",
    "llm-embedding-model",
    "a model name",
);
pub const LLM_TIMEOUT_SECS: Field = field(
    "FLYWHEEL_LLM_TIMEOUT_SECS",
    "llm-timeout-secs",
    "a whole number of seconds from 1 to 3600",
);
pub const LLM_MAX_RETRIES: Field = field(
    "FLYWHEEL_LLM_MAX_RETRIES",
    "llm-max-retries",
    "a whole number from 0 to 10",
);
pub const LLM_MAX_CONCURRENCY: Field = field(
    "FLYWHEEL_LLM_MAX_CONCURRENCY",
    "llm-max-concurrency",
    "a whole number from 1 to 1024",
);
pub const LLM_ENDPOINTS: Field = field(
    "FLYWHEEL_LLM_ENDPOINTS",
    "llm-endpoints",
    "comma-separated name=URL entries; names of 1-64 characters a-z, 0-9, -, _",
);
pub const LLM_RUN_TOKEN_BUDGET: Field = field(
    "FLYWHEEL_LLM_RUN_TOKEN_BUDGET",
    "llm-run-token-budget",
    "a whole number of tokens, such as 200000, or unset for no limit",
);
pub const JOB_LEASE_SECS: Field = field(
    "FLYWHEEL_JOB_LEASE_SECS",
    "job-lease-secs",
    "a whole number of seconds from 1 to 3600, such as 30",
);
pub const REQUEST_TIMEOUT_SECS: Field = field(
    "FLYWHEEL_REQUEST_TIMEOUT_SECS",
    "request-timeout-secs",
    "a whole number of seconds from 1 to 3600, such as 30",
);
pub const LOG_FORMAT: Field = field("FLYWHEEL_LOG_FORMAT", "log-format", "text, json");

impl Field {
    /// The refusal of `value` (shown unless the setting is secret) for `problem`.
    pub fn error(&self, value: &str, problem: impl Into<String>) -> ConfigError {
        self.error_accepting(value, problem, self.accepted)
    }

    /// [`Field::error`] with a more precise statement of what is accepted.
    pub fn error_accepting(
        &self,
        value: &str,
        problem: impl Into<String>,
        accepted: &'static str,
    ) -> ConfigError {
        let shown = (!self.secret).then_some(value);
        ConfigError::new(self.variable, self.flag, shown, problem, accepted)
    }

    /// Parses `raw` when given (an empty value counts as not given): `Ok(None)` when absent,
    /// the refusal naming this setting when `parse` returns `None`.
    pub fn parse<T>(
        &self,
        raw: Option<&str>,
        problem: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match raw {
            None => Ok(None),
            Some(value) => parse(value)
                .map(Some)
                .ok_or_else(|| self.error(value, problem)),
        }
    }

    /// [`Field::parse`] for a parser that says what is wrong; the value is not echoed (it may
    /// hold a secret, as a database URL's password or a token list does).
    pub fn parse_with<T>(
        &self,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match raw {
            None => Ok(None),
            Some(value) => parse(value).map(Some).map_err(|problem| {
                ConfigError::new(self.variable, self.flag, None, problem, self.accepted)
            }),
        }
    }

    /// The value of the variable in this process's environment.
    pub fn from_env(&self) -> Option<String> {
        std::env::var(self.variable).ok()
    }
}
