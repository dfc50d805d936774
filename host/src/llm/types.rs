//! The client's request and answer types. They mirror the records of the WIT `llm` interface
//! (`wit/grader.wit`) field for field, so the `llm` host import converts one into the other
//! without deciding anything.

use std::ops::{Add, AddAssign};

use serde::Serialize;

/// One chat message (WIT `message`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with this role and text.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
}

/// A chat completion request (WIT `chat-request`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// The model name; the endpoint's (or the settings') default when absent.
    pub model: Option<String>,
    /// A named endpoint of [`super::LlmSettings::endpoints`]; the default endpoint when absent.
    pub endpoint: Option<String>,
    /// The conversation; must not be empty.
    pub messages: Vec<ChatMessage>,
    /// A JSON schema the answer must follow, as JSON text. Either the schema itself, or
    /// OpenAI's wrapper `{"name": …, "schema": {…}, "strict": …}` when the caller wants to name it.
    pub json_schema: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// A seed for reproducible sampling.
    pub seed: Option<i64>,
    /// The most tokens the answer may use.
    pub max_completion_tokens: Option<u32>,
    /// Reasoning effort for reasoning models (`low`, `medium`, `high`, …).
    pub reasoning_effort: Option<String>,
}

impl ChatRequest {
    /// A request with these messages and nothing else set.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
}

/// Tokens a call used (WIT `usage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens in the prompt (or in the embedded inputs).
    pub prompt_tokens: u32,
    /// Tokens in the answer (zero for embeddings).
    pub completion_tokens: u32,
}

impl Usage {
    /// Usage of this many prompt and completion tokens.
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
        }
    }

    /// Prompt and completion tokens together; what the run budget is charged.
    pub fn total(&self) -> u64 {
        u64::from(self.prompt_tokens) + u64::from(self.completion_tokens)
    }
}

/// Sums saturate: a row's usage is a record, not a reason to panic.
impl Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        *self = *self + other;
    }
}

/// A chat completion answer (WIT `chat-response`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    /// The answer's text.
    pub content: String,
    /// The model that answered, as the endpoint names it.
    pub model: String,
    /// Tokens used, as the endpoint reported them (estimated when it reported none).
    pub usage: Usage,
    /// How many HTTP attempts the call took (1 when no retry was needed).
    pub attempts: u32,
}

/// An embeddings request (WIT `embed`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmbedRequest {
    /// The model name; the settings' default embedding model when absent.
    pub model: Option<String>,
    /// A named endpoint; the default endpoint when absent.
    pub endpoint: Option<String>,
    /// The texts to embed; must not be empty.
    pub inputs: Vec<String>,
}

/// The answer to an embeddings request.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// The model that answered.
    pub model: String,
    /// Tokens used (prompt tokens only).
    pub usage: Usage,
    /// How many HTTP attempts the call took.
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_adds_up_and_saturates() {
        let mut total = Usage::new(1, 2) + Usage::new(3, 4);
        assert_eq!(total, Usage::new(4, 6));
        assert_eq!(total.total(), 10);
        total += Usage::new(u32::MAX, 0);
        assert_eq!(total.prompt_tokens, u32::MAX);
    }
}
