//! The key a model answer is cached by: the SHA-256 of the endpoint's URL, the model, the
//! rendered messages, the sampling parameters and the repeat index. The API key is no part of
//! it: two keys for one endpoint get the same answers, and the key never reaches the database.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::llm::ChatMessage;

/// The sampling parameters of a task-model call (part of the key: another temperature is
/// another answer).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sampling {
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// A seed for reproducible sampling.
    pub seed: Option<i64>,
    /// The most tokens the answer may use.
    pub max_completion_tokens: Option<u32>,
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
    fn roles_are_part_of_the_key() {
        let sampling = Sampling::default();
        assert_ne!(
            cache_key("u", "m", &[ChatMessage::user("x")], &sampling, 0),
            cache_key("u", "m", &[ChatMessage::system("x")], &sampling, 0)
        );
    }
}
