//! The settings as the command line reads them, in groups, so each subcommand flattens only the
//! groups it uses and its `--help` lists only those: `serve` takes every group, the prompt
//! commands [`StorageArgs`] and [`LogArgs`], `grade` the storage, grader, model and log groups.
//!
//! Whatever a command does not read from its flags is still read from the environment
//! ([`ConfigArgs::from_env`]), and everything is validated together by
//! [`super::Settings::from_args`]: a database-mode prompt command builds the same application as
//! `flywheel serve`, so a bad value anywhere in the environment is reported by every command
//! rather than surfacing later in the service.

use std::path::PathBuf;

use clap::Args;

use super::Secret;
use super::field::{self, Field};

/// Every setting, raw (strings, so that this module, not clap, reports a bad value with the
/// variable's name and the accepted values). Values that may hold a secret are [`Secret`]s
/// already, so even this raw form never prints them.
#[derive(Debug, Clone, Default)]
pub struct ConfigArgs {
    /// `DATABASE_URL`.
    pub database_url: Option<Secret>,
    /// `FLYWHEEL_BIND`.
    pub bind: Option<String>,
    /// `FLYWHEEL_DATA_DIR`.
    pub data_dir: Option<String>,
    /// `FLYWHEEL_TOKENS`.
    pub tokens: Option<Secret>,
    /// `FLYWHEEL_TOKENS_FILE`.
    pub tokens_file: Option<PathBuf>,
    /// `ENABLE_PROMPT_OPTIMIZATION`.
    pub enable_prompt_optimization: Option<String>,
    /// `PROMPT_AB_TEST_TRAFFIC_SPLIT`.
    pub ab_test_traffic_split: Option<String>,
    /// `FLYWHEEL_AB_EVALUATE_SECS`.
    pub ab_evaluate_secs: Option<String>,
    /// `PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION`.
    pub min_samples_for_optimization: Option<String>,
    /// `FLYWHEEL_GRADERS_DIR`.
    pub graders_dir: Option<String>,
    /// `FLYWHEEL_CACHE_DIR`.
    pub cache_dir: Option<String>,
    /// `OPENAI_BASE_URL`.
    pub openai_base_url: Option<String>,
    /// `OPENAI_API_KEY`.
    pub openai_api_key: Option<Secret>,
    /// `FLYWHEEL_LLM_MODEL`.
    pub llm_model: Option<String>,
    /// `FLYWHEEL_LLM_EMBEDDING_MODEL`.
    pub llm_embedding_model: Option<String>,
    /// `FLYWHEEL_LLM_TIMEOUT_SECS`.
    pub llm_timeout_secs: Option<String>,
    /// `FLYWHEEL_LLM_MAX_RETRIES`.
    pub llm_max_retries: Option<String>,
    /// `FLYWHEEL_LLM_MAX_CONCURRENCY`.
    pub llm_max_concurrency: Option<String>,
    /// `FLYWHEEL_LLM_ENDPOINTS`.
    pub llm_endpoints: Option<String>,
    /// `FLYWHEEL_LLM_RUN_TOKEN_BUDGET`.
    pub llm_run_token_budget: Option<String>,
    /// `FLYWHEEL_GRADER_TIMEOUT_MS`.
    pub grader_timeout_ms: Option<String>,
    /// `FLYWHEEL_JOB_LEASE_SECS`.
    pub job_lease_secs: Option<String>,
    /// `FLYWHEEL_GRADER_MEMORY_MB`.
    pub grader_memory_mb: Option<String>,
    /// `FLYWHEEL_GRADER_MAX_CONCURRENCY`.
    pub grader_max_concurrency: Option<String>,
    /// `FLYWHEEL_LOG_FORMAT`.
    pub log_format: Option<String>,
    /// `FLYWHEEL_REQUEST_TIMEOUT_SECS`.
    pub request_timeout_secs: Option<String>,
}

impl ConfigArgs {
    /// Every setting from this process's environment (flags come on top, see [`Overlay`]).
    pub fn from_env() -> ConfigArgs {
        let text = |f: Field| f.from_env();
        let secret = |f: Field| f.from_env().map(Secret::new);
        ConfigArgs {
            database_url: secret(field::DATABASE_URL),
            bind: text(field::BIND),
            data_dir: text(field::DATA_DIR),
            tokens: secret(field::TOKENS),
            tokens_file: text(field::TOKENS_FILE).map(PathBuf::from),
            enable_prompt_optimization: text(field::ENABLE_PROMPT_OPTIMIZATION),
            ab_test_traffic_split: text(field::AB_TEST_TRAFFIC_SPLIT),
            ab_evaluate_secs: text(field::AB_EVALUATE_SECS),
            min_samples_for_optimization: text(field::MIN_SAMPLES_FOR_OPTIMIZATION),
            graders_dir: text(field::GRADERS_DIR),
            cache_dir: text(field::CACHE_DIR),
            openai_base_url: text(field::OPENAI_BASE_URL),
            openai_api_key: secret(field::OPENAI_API_KEY),
            llm_model: text(field::LLM_MODEL),
            llm_embedding_model: text(field::LLM_EMBEDDING_MODEL),
            llm_timeout_secs: text(field::LLM_TIMEOUT_SECS),
            llm_max_retries: text(field::LLM_MAX_RETRIES),
            llm_max_concurrency: text(field::LLM_MAX_CONCURRENCY),
            llm_endpoints: text(field::LLM_ENDPOINTS),
            llm_run_token_budget: text(field::LLM_RUN_TOKEN_BUDGET),
            grader_timeout_ms: text(field::GRADER_TIMEOUT_MS),
            job_lease_secs: text(field::JOB_LEASE_SECS),
            grader_memory_mb: text(field::GRADER_MEMORY_MB),
            grader_max_concurrency: text(field::GRADER_MAX_CONCURRENCY),
            log_format: text(field::LOG_FORMAT),
            request_timeout_secs: text(field::REQUEST_TIMEOUT_SECS),
        }
    }

    /// The raw value of a model setting by its variable name, for
    /// [`crate::llm::LlmSettings::from_lookup`].
    pub(super) fn model_value(&self, variable: &str) -> Option<String> {
        let value = if variable == field::OPENAI_BASE_URL.variable {
            self.openai_base_url.clone()
        } else if variable == field::OPENAI_API_KEY.variable {
            self.openai_api_key.as_ref().map(|k| k.expose().to_owned())
        } else if variable == field::LLM_MODEL.variable {
            self.llm_model.clone()
        } else if variable == field::LLM_EMBEDDING_MODEL.variable {
            self.llm_embedding_model.clone()
        } else if variable == field::LLM_TIMEOUT_SECS.variable {
            self.llm_timeout_secs.clone()
        } else if variable == field::LLM_MAX_RETRIES.variable {
            self.llm_max_retries.clone()
        } else if variable == field::LLM_MAX_CONCURRENCY.variable {
            self.llm_max_concurrency.clone()
        } else if variable == field::LLM_ENDPOINTS.variable {
            self.llm_endpoints.clone()
        } else {
            None
        };
        value.map(|v| v.trim().to_owned())
    }
}

/// A group of flags that sets its part of [`ConfigArgs`].
pub trait Overlay {
    /// Writes the values given on the command line (or clap's env fallback) over `config`.
    fn overlay(&self, config: &mut ConfigArgs);
}

/// Writes each given value over the one in `config`.
macro_rules! overlay_fields {
    ($self:ident, $config:ident, $($name:ident),+) => {
        $( if $self.$name.is_some() { $config.$name = $self.$name.clone(); } )+
    };
}

/// Where the data lives: the database and the data directory.
#[derive(Debug, Clone, Default, Args)]
pub struct StorageArgs {
    /// Database: `sqlite://PATH` (default: `sqlite://<data-dir>/flywheel.db`) or
    /// `postgres://USER@HOST:PORT/DB`.
    #[arg(long = field::DATABASE_URL.flag, env = field::DATABASE_URL.variable, global = true, hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Data directory: the default SQLite file, graders directory and compile cache live here
    /// [default: ./data].
    #[arg(long = field::DATA_DIR.flag, env = field::DATA_DIR.variable, global = true)]
    pub data_dir: Option<String>,
}

impl Overlay for StorageArgs {
    fn overlay(&self, config: &mut ConfigArgs) {
        overlay_fields!(self, config, database_url, data_dir);
    }
}

/// What only the HTTP service reads: address, tokens, and the optimization settings.
#[derive(Debug, Clone, Default, Args)]
pub struct ServiceArgs {
    /// Address the server listens on, IP:PORT [default: 127.0.0.1:8080]. A non-loopback address
    /// needs at least one token.
    #[arg(long = field::BIND.flag, env = field::BIND.variable)]
    pub bind: Option<String>,

    /// API tokens, comma-separated `name:role:secret` entries; roles: read, agent, annotator, admin.
    #[arg(long = field::TOKENS.flag, env = field::TOKENS.variable, hide_env_values = true)]
    pub tokens: Option<Secret>,

    /// File of API tokens, one `name:role:secret` per line, `#` starts a comment.
    #[arg(long = field::TOKENS_FILE.flag, env = field::TOKENS_FILE.variable)]
    pub tokens_file: Option<PathBuf>,

    /// Collect runs, A/B test, export and optimize (true/false) [default: true]. Prompts are
    /// served either way.
    #[arg(long = field::ENABLE_PROMPT_OPTIMIZATION.flag, env = field::ENABLE_PROMPT_OPTIMIZATION.variable)]
    pub enable_prompt_optimization: Option<String>,

    /// Default share of traffic sent to version B of an A/B test, 0 to 1 [default: 0.5].
    #[arg(long = field::AB_TEST_TRAFFIC_SPLIT.flag, env = field::AB_TEST_TRAFFIC_SPLIT.variable)]
    pub ab_test_traffic_split: Option<String>,

    /// How often the server evaluates running A/B tests and carries out a reached `autoDeploy`
    /// decision, 1 to 86400 seconds [default: 60].
    #[arg(long = field::AB_EVALUATE_SECS.flag, env = field::AB_EVALUATE_SECS.variable)]
    pub ab_evaluate_secs: Option<String>,

    /// Annotated runs required before export or optimization, a whole number >= 1 [default: 50].
    #[arg(long = field::MIN_SAMPLES_FOR_OPTIMIZATION.flag, env = field::MIN_SAMPLES_FOR_OPTIMIZATION.variable)]
    pub min_samples_for_optimization: Option<String>,

    /// Server-side time limit of one API request until its response starts, 1 to 3600
    /// seconds; past it the request is answered 503 `request_timeout` [default: 30].
    #[arg(long = field::REQUEST_TIMEOUT_SECS.flag, env = field::REQUEST_TIMEOUT_SECS.variable)]
    pub request_timeout_secs: Option<String>,
}

impl Overlay for ServiceArgs {
    fn overlay(&self, config: &mut ConfigArgs) {
        overlay_fields!(
            self,
            config,
            bind,
            tokens,
            tokens_file,
            enable_prompt_optimization,
            ab_test_traffic_split,
            ab_evaluate_secs,
            min_samples_for_optimization,
            request_timeout_secs
        );
    }
}

/// The grader components and the sandbox's limits.
#[derive(Debug, Clone, Default, Args)]
pub struct GraderArgs {
    /// Directory of grader components (`.wasm`), watched for changes
    /// [default: <data-dir>/graders].
    #[arg(long = field::GRADERS_DIR.flag, env = field::GRADERS_DIR.variable, global = true)]
    pub graders_dir: Option<String>,

    /// Directory of compiled grader components (a cache keyed by content hash and engine
    /// version; safe to share between instances of the same build, writable only by Flywheel)
    /// [default: <data-dir>/cache].
    #[arg(long = field::CACHE_DIR.flag, env = field::CACHE_DIR.variable, global = true)]
    pub cache_dir: Option<String>,

    /// Wall time of one grader call (a row or a batch), milliseconds, 10 to 600000
    /// [default: 2000].
    #[arg(long = field::GRADER_TIMEOUT_MS.flag, env = field::GRADER_TIMEOUT_MS.variable, global = true)]
    pub grader_timeout_ms: Option<String>,

    /// Linear memory one grader instance may grow to, MiB, 2 to 4096 [default: 64].
    #[arg(long = field::GRADER_MEMORY_MB.flag, env = field::GRADER_MEMORY_MB.variable, global = true)]
    pub grader_memory_mb: Option<String>,

    /// Grader calls running at once (sizes the instance pool), 1 to 256 [default: 16].
    #[arg(long = field::GRADER_MAX_CONCURRENCY.flag, env = field::GRADER_MAX_CONCURRENCY.variable, global = true)]
    pub grader_max_concurrency: Option<String>,

    /// How long an instance's claim on a grading job holds without renewal, 1 to 3600 seconds;
    /// a job whose instance died is taken over by another once it expires [default: 30].
    #[arg(long = field::JOB_LEASE_SECS.flag, env = field::JOB_LEASE_SECS.variable, global = true)]
    pub job_lease_secs: Option<String>,
}

impl Overlay for GraderArgs {
    fn overlay(&self, config: &mut ConfigArgs) {
        overlay_fields!(
            self,
            config,
            graders_dir,
            cache_dir,
            grader_timeout_ms,
            grader_memory_mb,
            grader_max_concurrency,
            job_lease_secs
        );
    }
}

/// The model endpoint(s) model graders (and later the optimizer) call.
#[derive(Debug, Clone, Default, Args)]
pub struct ModelArgs {
    /// OpenAI-compatible model endpoint for model graders and the optimizer, http(s)://….
    #[arg(long = field::OPENAI_BASE_URL.flag, env = field::OPENAI_BASE_URL.variable, global = true)]
    pub openai_base_url: Option<String>,

    /// API key for the model endpoint (never printed or logged).
    #[arg(long = field::OPENAI_API_KEY.flag, env = field::OPENAI_API_KEY.variable, global = true, hide_env_values = true)]
    pub openai_api_key: Option<Secret>,

    /// Chat model model graders use when their definition names none [default: gpt-4.1-mini].
    #[arg(long = field::LLM_MODEL.flag, env = field::LLM_MODEL.variable, global = true)]
    pub llm_model: Option<String>,

    /// Embeddings model for text_similarity cosine [default: text-embedding-3-small].
    #[arg(long = field::LLM_EMBEDDING_MODEL.flag, env = field::LLM_EMBEDDING_MODEL.variable, global = true)]
    pub llm_embedding_model: Option<String>,

    /// Time limit of one model call, retries and waits included, 1-3600 seconds [default: 120].
    #[arg(long = field::LLM_TIMEOUT_SECS.flag, env = field::LLM_TIMEOUT_SECS.variable, global = true)]
    pub llm_timeout_secs: Option<String>,

    /// Retries of a model call after 429, 5xx or a connection error, 0-10 [default: 3].
    #[arg(long = field::LLM_MAX_RETRIES.flag, env = field::LLM_MAX_RETRIES.variable, global = true)]
    pub llm_max_retries: Option<String>,

    /// Model calls in flight at once, all endpoints together, 1-1024 [default: 8].
    #[arg(long = field::LLM_MAX_CONCURRENCY.flag, env = field::LLM_MAX_CONCURRENCY.variable, global = true)]
    pub llm_max_concurrency: Option<String>,

    /// Named model endpoints a grader definition may select with `"endpoint"`:
    /// `name=URL,name=URL`; the key of endpoint `name` is read from
    /// FLYWHEEL_LLM_ENDPOINT_<NAME>_API_KEY.
    #[arg(long = field::LLM_ENDPOINTS.flag, env = field::LLM_ENDPOINTS.variable, global = true)]
    pub llm_endpoints: Option<String>,

    /// Tokens (prompt + completion) one grading run may spend on model calls; unset means no
    /// limit. When spent the run ends cleanly: remaining rows report budget_exhausted.
    #[arg(long = field::LLM_RUN_TOKEN_BUDGET.flag, env = field::LLM_RUN_TOKEN_BUDGET.variable, global = true)]
    pub llm_run_token_budget: Option<String>,
}

impl Overlay for ModelArgs {
    fn overlay(&self, config: &mut ConfigArgs) {
        overlay_fields!(
            self,
            config,
            openai_base_url,
            openai_api_key,
            llm_model,
            llm_embedding_model,
            llm_timeout_secs,
            llm_max_retries,
            llm_max_concurrency,
            llm_endpoints,
            llm_run_token_budget
        );
    }
}

/// How the program logs.
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// Log format: text or json [default: text].
    #[arg(long = field::LOG_FORMAT.flag, env = field::LOG_FORMAT.variable, global = true)]
    pub log_format: Option<String>,
}

impl Overlay for LogArgs {
    fn overlay(&self, config: &mut ConfigArgs) {
        overlay_fields!(self, config, log_format);
    }
}
