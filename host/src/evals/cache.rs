//! The key a model answer is cached by: the SHA-256 of the endpoint's URL, the model, the
//! rendered messages, the sampling parameters and the repeat index. The API key is no part of
//! it: two keys for one endpoint get the same answers, and the key never reaches the database.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::llm::ChatMessage;

/// The sampling parameters of a task-model call, set per evaluation (part of the key: another
/// temperature is another answer). Absent ones are not sent: the model's defaults apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sampling {
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling: above 0, at most 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// A seed for reproducible sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// The most tokens the answer may use, 1 to 1,000,000 (`maxTokens` is read as well).
    #[serde(default, alias = "maxTokens", skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
}

/// Most tokens an answer may be allowed.
pub const MAX_COMPLETION_TOKENS: u32 = 1_000_000;

impl Sampling {
    /// Whether no parameter is set.
    pub fn is_default(&self) -> bool {
        *self == Sampling::default()
    }

    /// Why these parameters cannot be sent, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if let Some(t) = self.temperature
            && !(t.is_finite() && (0.0..=2.0).contains(&t))
        {
            return Err("sampling.temperature must be 0 to 2".into());
        }
        if let Some(p) = self.top_p
            && !(p.is_finite() && p > 0.0 && p <= 1.0)
        {
            return Err("sampling.topP must be above 0 and at most 1".into());
        }
        if let Some(n) = self.max_completion_tokens
            && !(1..=MAX_COMPLETION_TOKENS).contains(&n)
        {
            return Err(format!(
                "sampling.maxCompletionTokens must be 1 to {MAX_COMPLETION_TOKENS}"
            ));
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct KeyParts<'a> {
    endpoint: &'a str,
    model: &'a str,
    messages: &'a [ChatMessage],
    sampling: &'a Sampling,
    repeat: i64,
}

/// The cache key (lowercase hex) of one call.
pub fn cache_key(
    endpoint_url: &str,
    model: &str,
    messages: &[ChatMessage],
    sampling: &Sampling,
    repeat: i64,
) -> String {
    let parts = KeyParts {
        endpoint: endpoint_url,
        model,
        messages,
        sampling,
        repeat,
    };
    // Serializing these plain structs cannot fail; an empty text would still be a stable key.
    let canonical = serde_json::to_vec(&parts).unwrap_or_default();
    hex::encode(Sha256::digest(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        endpoint: &str,
        model: &str,
        text: &str,
        temperature: Option<f64>,
        repeat: i64,
    ) -> String {
        let sampling = Sampling {
            temperature,
            ..Sampling::default()
        };
        cache_key(
            endpoint,
            model,
            &[ChatMessage::user(text)],
            &sampling,
            repeat,
        )
    }

    #[test]
    fn every_part_of_the_request_changes_the_key_and_nothing_else_does() {
        let base = key("http://127.0.0.1:1/v1", "m", "hi", None, 0);
        assert_eq!(base, key("http://127.0.0.1:1/v1", "m", "hi", None, 0));
        assert_eq!(base.len(), 64);
        for other in [
            key("http://127.0.0.1:2/v1", "m", "hi", None, 0),
            key("http://127.0.0.1:1/v1", "n", "hi", None, 0),
            key("http://127.0.0.1:1/v1", "m", "ho", None, 0),
            key("http://127.0.0.1:1/v1", "m", "hi", Some(0.5), 0),
            key("http://127.0.0.1:1/v1", "m", "hi", None, 1),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn every_sampling_parameter_changes_the_key() {
        let key = |sampling: &Sampling| cache_key("u", "m", &[ChatMessage::user("x")], sampling, 0);
        let base = key(&Sampling::default());
        for other in [
            Sampling {
                temperature: Some(0.0),
                ..Sampling::default()
            },
            Sampling {
                top_p: Some(0.5),
                ..Sampling::default()
            },
            Sampling {
                seed: Some(7),
                ..Sampling::default()
            },
            Sampling {
                max_completion_tokens: Some(64),
                ..Sampling::default()
            },
        ] {
            assert_ne!(base, key(&other), "{other:?}");
        }
    }

    #[test]
    fn sampling_out_of_range_is_refused_and_max_tokens_is_an_alias() {
        assert!(Sampling::default().check().is_ok());
        let ok: Sampling = serde_json::from_value(serde_json::json!(
            {"temperature": 2.0, "topP": 1.0, "seed": -3, "maxTokens": 1}
        ))
        .unwrap();
        assert_eq!(ok.max_completion_tokens, Some(1));
        assert!(ok.check().is_ok());
        for (bad, field) in [
            (serde_json::json!({"temperature": -0.1}), "temperature"),
            (serde_json::json!({"temperature": 2.5}), "temperature"),
            (serde_json::json!({"topP": 0.0}), "topP"),
            (serde_json::json!({"topP": 1.5}), "topP"),
            (
                serde_json::json!({"maxCompletionTokens": 0}),
                "maxCompletionTokens",
            ),
            (
                serde_json::json!({"maxCompletionTokens": 1_000_001}),
                "maxCompletionTokens",
            ),
        ] {
            let sampling: Sampling = serde_json::from_value(bad.clone()).unwrap();
            let error = sampling.check().expect_err(&bad.to_string());
            assert!(error.contains(field), "{error}");
        }
        assert!(
            serde_json::from_value::<Sampling>(serde_json::json!({"temprature": 1})).is_err(),
            "a misspelt parameter is refused, not ignored"
        );
    }

    #[test]
    fn roles_are_part_of_the_key() {
        let sampling = Sampling::default();
        assert_ne!(
            cache_key("u", "m", &[ChatMessage::user("x")], &sampling, 0),
            cache_key("u", "m", &[ChatMessage::system("x")], &sampling, 0)
        );
    }
}
