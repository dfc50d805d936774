//! [`LlmSettings`]: where the model endpoints are and how calls to them behave, validated once.
//!
//! [`LlmSettings::from_env`] reads the variables below; the `config` module may call it or build
//! the settings from its own flags. Nothing else in the client reads the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `OPENAI_BASE_URL` | default endpoint, OpenAI-compatible, ending in `/v1` | `https://api.openai.com/v1` when a key is set, else no endpoint |
//! | `OPENAI_API_KEY` | its API key | none (local servers need none) |
//! | `FLYWHEEL_LLM_MODEL` | chat model when a request names none | `gpt-4.1-mini` |
//! | `FLYWHEEL_LLM_EMBEDDING_MODEL` | embeddings model when a request names none | `text-embedding-3-small` |
//! | `FLYWHEEL_LLM_TIMEOUT_SECS` | time limit of one call, retries and waits included | 120 |
//! | `FLYWHEEL_LLM_MAX_RETRIES` | retries after the first attempt | 3 |
//! | `FLYWHEEL_LLM_MAX_CONCURRENCY` | calls in flight at once, all endpoints together | 8 |
//! | `FLYWHEEL_LLM_ENDPOINTS` | named endpoints: `name=url,name=url` | none |
//! | `FLYWHEEL_LLM_ENDPOINT_<NAME>_API_KEY` | the key of endpoint `name` (upper case, `-` → `_`) | none |

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;
use thiserror::Error;

use super::secret::Secret;

/// Default chat model: a small, cheap model is the right default for grading.
pub const DEFAULT_MODEL: &str = "gpt-4.1-mini";
/// Default embeddings model.
pub const DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-3-small";
/// OpenAI's own endpoint, used when only a key is configured.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Reasoning models can take a minute on a long prompt; two leave room for one retry.
pub const DEFAULT_TIMEOUT_PER_CALL: Duration = Duration::from_secs(120);
/// Three retries ride out a short outage without turning one bad row into minutes of waiting.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// First backoff step; each retry doubles it (before jitter).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Ceiling for a backoff step and for an honoured `Retry-After`.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Eight calls in flight stay under typical per-key request rate limits.
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;

/// A settings value that cannot be used; the text names the variable (or field).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{name}: {reason}")]
pub struct SettingsError {
    /// The variable or field at fault.
    pub name: String,
    /// Why, and what is accepted.
    pub reason: String,
}

impl SettingsError {
    fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// One OpenAI-compatible endpoint.
#[derive(Clone, Debug)]
pub struct EndpointSettings {
    base_url: Url,
    /// The key sent as `Authorization: Bearer …`; none for servers that need none.
    pub api_key: Option<Secret>,
    /// The chat model for requests sent here that name none; the settings' default when absent.
    pub default_model: Option<String>,
}

impl EndpointSettings {
    /// An endpoint at `base_url` (`http` or `https`, such as `https://api.openai.com/v1`).
    pub fn new(base_url: &str, api_key: Option<Secret>) -> Result<Self, SettingsError> {
        let parsed = Url::parse(base_url.trim()).map_err(|error| {
            SettingsError::new("base_url", format!("not a URL ({error}): {base_url}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SettingsError::new(
                "base_url",
                format!("scheme must be http or https, not {}", parsed.scheme()),
            ));
        }
        // A key in the URL would end up wherever URLs are logged; keys go in the header.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(SettingsError::new(
                "base_url",
                "must not contain credentials; set the API key instead",
            ));
        }
        Ok(Self {
            base_url: parsed,
            api_key: api_key.filter(|key| !key.is_empty()),
            default_model: None,
        })
    }

    /// The same endpoint with a default chat model.
    pub fn with_default_model(mut self, model: impl Into<String>) -> Self {
        self.default_model = Some(model.into());
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The URL of an API path below the base, such as `chat/completions`.
    pub(crate) fn url_of(&self, path: &str) -> String {
        format!("{}/{}", self.base_url.as_str().trim_end_matches('/'), path)
    }
}

/// How the model client reaches endpoints and how its calls behave.
#[derive(Clone, Debug)]
pub struct LlmSettings {
    /// The endpoint used when a request names none; `None` means "not configured".
    pub default_endpoint: Option<EndpointSettings>,
    /// Endpoints a grader definition may name.
    pub endpoints: BTreeMap<String, EndpointSettings>,
    /// Chat model when neither the request nor the endpoint names one.
    pub default_model: String,
    /// Embeddings model when the request names none.
    pub default_embedding_model: String,
    /// Time limit of one call: every attempt, backoff wait and `Retry-After` wait included.
    pub timeout_per_call: Duration,
    /// Retries after the first attempt, on 429, 5xx and connection errors.
    pub max_retries: u32,
    /// First backoff step; step `n` is drawn uniformly from `[0, min(max, base × 2ⁿ)]`.
    pub backoff_base: Duration,
    /// Ceiling for a backoff step and for an honoured `Retry-After`.
    pub backoff_max: Duration,
    /// Calls in flight at once, over all endpoints.
    pub max_concurrency: usize,
}

impl Default for LlmSettings {
    /// No endpoint (every call is "not configured") and the default limits.
    fn default() -> Self {
        Self {
            default_endpoint: None,
            endpoints: BTreeMap::new(),
            default_model: DEFAULT_MODEL.to_owned(),
            default_embedding_model: DEFAULT_EMBEDDING_MODEL.to_owned(),
            timeout_per_call: DEFAULT_TIMEOUT_PER_CALL,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
        }
    }
}

impl LlmSettings {
    /// Settings with this default endpoint and the default limits.
    pub fn with_endpoint(endpoint: EndpointSettings) -> Self {
        Self {
            default_endpoint: Some(endpoint),
            ..Self::default()
        }
    }

    /// Reads the process environment (see the module docs for the variables).
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`, so tests and the `config` module can supply them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let mut settings = Self::default();
        let key = get("OPENAI_API_KEY").map(Secret::from);
        let base_url =
            get("OPENAI_BASE_URL").or_else(|| key.as_ref().map(|_| OPENAI_BASE_URL.to_owned()));
        if let Some(base_url) = base_url {
            settings.default_endpoint = Some(
                EndpointSettings::new(&base_url, key)
                    .map_err(|error| SettingsError::new("OPENAI_BASE_URL", error.reason))?,
            );
        }
        if let Some(model) = get("FLYWHEEL_LLM_MODEL") {
            settings.default_model = model;
        }
        if let Some(model) = get("FLYWHEEL_LLM_EMBEDDING_MODEL") {
            settings.default_embedding_model = model;
        }
        if let Some(value) = get("FLYWHEEL_LLM_TIMEOUT_SECS") {
            let secs: u64 = parse_number("FLYWHEEL_LLM_TIMEOUT_SECS", &value, 1, 3600)?;
            settings.timeout_per_call = Duration::from_secs(secs);
        }
        if let Some(value) = get("FLYWHEEL_LLM_MAX_RETRIES") {
            settings.max_retries = parse_number("FLYWHEEL_LLM_MAX_RETRIES", &value, 0, 10)?;
        }
        if let Some(value) = get("FLYWHEEL_LLM_MAX_CONCURRENCY") {
            settings.max_concurrency =
                parse_number("FLYWHEEL_LLM_MAX_CONCURRENCY", &value, 1, 1024)?;
        }
        if let Some(list) = get("FLYWHEEL_LLM_ENDPOINTS") {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let (name, url) = entry.split_once('=').ok_or_else(|| {
                    SettingsError::new(
                        "FLYWHEEL_LLM_ENDPOINTS",
                        format!("entry `{entry}` is not `name=url`"),
                    )
                })?;
                let name = name.trim();
                validate_endpoint_name(name)
                    .map_err(|reason| SettingsError::new("FLYWHEEL_LLM_ENDPOINTS", reason))?;
                let key_var = endpoint_key_variable(name);
                let endpoint = EndpointSettings::new(url, get(&key_var).map(Secret::from))
                    .map_err(|error| {
                        SettingsError::new(
                            "FLYWHEEL_LLM_ENDPOINTS",
                            format!("endpoint `{name}`: {}", error.reason),
                        )
                    })?;
                if settings
                    .endpoints
                    .insert(name.to_owned(), endpoint)
                    .is_some()
                {
                    return Err(SettingsError::new(
                        "FLYWHEEL_LLM_ENDPOINTS",
                        format!("endpoint `{name}` is named twice"),
                    ));
                }
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the limits; the client calls this too, so hand-built settings are checked as well.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.timeout_per_call.is_zero() {
            return Err(SettingsError::new("timeout_per_call", "must be above zero"));
        }
        if self.max_concurrency == 0 {
            return Err(SettingsError::new("max_concurrency", "must be at least 1"));
        }
        if self.backoff_base > self.backoff_max {
            return Err(SettingsError::new(
                "backoff_base",
                "must not exceed backoff_max",
            ));
        }
        for name in self.endpoints.keys() {
            validate_endpoint_name(name)
                .map_err(|reason| SettingsError::new("endpoints", reason))?;
        }
        Ok(())
    }

    /// Every configured key, for redaction.
    pub(crate) fn secrets(&self) -> Vec<Secret> {
        self.default_endpoint
            .iter()
            .chain(self.endpoints.values())
            .filter_map(|endpoint| endpoint.api_key.clone())
            .collect()
    }
}

/// The variable holding the key of the named endpoint.
pub fn endpoint_key_variable(name: &str) -> String {
    format!(
        "FLYWHEEL_LLM_ENDPOINT_{}_API_KEY",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

fn validate_endpoint_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "endpoint name `{name}` must be 1-64 characters of a-z, 0-9, `-`, `_`"
        ))
    }
}

fn parse_number<T>(name: &str, value: &str, min: T, max: T) -> Result<T, SettingsError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match value.trim().parse::<T>() {
        Ok(number) if number >= min && number <= max => Ok(number),
        _ => Err(SettingsError::new(
            name,
            format!("`{value}` is not a whole number from {min} to {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<LlmSettings, SettingsError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LlmSettings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_set_means_not_configured() {
        let settings = from(&[]).expect("empty environment is valid");
        assert!(settings.default_endpoint.is_none());
        assert!(settings.endpoints.is_empty());
    }

    #[test]
    fn a_key_alone_means_openai() {
        let settings = from(&[("OPENAI_API_KEY", "sk-test-123456")]).expect("valid");
        let endpoint = settings.default_endpoint.expect("configured");
        assert_eq!(endpoint.base_url().as_str(), "https://api.openai.com/v1");
        assert_eq!(
            endpoint.api_key.as_ref().map(Secret::expose),
            Some("sk-test-123456")
        );
        assert_eq!(
            endpoint.url_of("chat/completions"),
            "https://api.openai.com/v1/chat/completions"
        );
    }

    #[test]
    fn named_endpoints_take_their_keys_from_their_own_variables() {
        let settings = from(&[
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1/"),
            (
                "FLYWHEEL_LLM_ENDPOINTS",
                "local-vllm=http://127.0.0.1:8000/v1, azure=https://example.test/openai/v1",
            ),
            ("FLYWHEEL_LLM_ENDPOINT_AZURE_API_KEY", "az-key-999999"),
            ("FLYWHEEL_LLM_MAX_RETRIES", "5"),
        ])
        .expect("valid");
        let default = settings.default_endpoint.as_ref().expect("configured");
        assert!(default.api_key.is_none());
        assert_eq!(
            default.url_of("embeddings"),
            "http://127.0.0.1:11434/v1/embeddings"
        );
        assert!(settings.endpoints["local-vllm"].api_key.is_none());
        assert!(settings.endpoints["azure"].api_key.is_some());
        assert_eq!(settings.max_retries, 5);
        assert_eq!(settings.secrets().len(), 1);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("OPENAI_BASE_URL", "not a url")], "OPENAI_BASE_URL"),
            (&[("OPENAI_BASE_URL", "ftp://x/v1")], "OPENAI_BASE_URL"),
            (
                &[("OPENAI_BASE_URL", "https://user:pw@x/v1")],
                "OPENAI_BASE_URL",
            ),
            (
                &[("FLYWHEEL_LLM_TIMEOUT_SECS", "0")],
                "FLYWHEEL_LLM_TIMEOUT_SECS",
            ),
            (
                &[("FLYWHEEL_LLM_TIMEOUT_SECS", "ten")],
                "FLYWHEEL_LLM_TIMEOUT_SECS",
            ),
            (
                &[("FLYWHEEL_LLM_MAX_RETRIES", "-1")],
                "FLYWHEEL_LLM_MAX_RETRIES",
            ),
            (
                &[("FLYWHEEL_LLM_MAX_CONCURRENCY", "0")],
                "FLYWHEEL_LLM_MAX_CONCURRENCY",
            ),
            (
                &[("FLYWHEEL_LLM_ENDPOINTS", "nourl")],
                "FLYWHEEL_LLM_ENDPOINTS",
            ),
            (
                &[("FLYWHEEL_LLM_ENDPOINTS", "Bad Name=http://x/v1")],
                "FLYWHEEL_LLM_ENDPOINTS",
            ),
            (
                &[("FLYWHEEL_LLM_ENDPOINTS", "a=http://x/v1,a=http://y/v1")],
                "FLYWHEEL_LLM_ENDPOINTS",
            ),
        ];
        for (vars, variable) in cases {
            let error = from(vars).expect_err("must be refused");
            assert_eq!(&error.name, variable, "{vars:?} gave {error}");
        }
    }

    #[test]
    fn debug_output_of_settings_hides_keys() {
        let settings = from(&[("OPENAI_API_KEY", "sk-very-secret-000")]).expect("valid");
        let printed = format!("{settings:?}");
        assert!(!printed.contains("sk-very-secret-000"), "{printed}");
        assert!(printed.contains("***"));
    }
}
