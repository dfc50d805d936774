//! Model access for model graders (feature `model`): a safe wrapper over the host's `llm`
//! import.
//!
//! Inside a component, [`complete`] and [`embed`] call the host, which holds the endpoint, the
//! API key, retries and the token budget. On any other target (native `cargo test`) they call
//! the hook installed with [`set_mock`] / [`set_embed_mock`] on the current thread, or return
//! [`LlmError::NotConfigured`] when none is installed, so grader logic is testable without a
//! host.

/// One chat message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A message with this role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A chat completion request; unset fields take the host's defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The model name.
    pub model: Option<String>,
    /// A named endpoint configured on the host.
    pub endpoint: Option<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// A JSON schema the answer must follow, as JSON text.
    pub json_schema: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// A seed for reproducible sampling.
    pub seed: Option<i64>,
    /// The most tokens the answer may use.
    pub max_completion_tokens: Option<u32>,
    /// Reasoning effort for reasoning models.
    pub reasoning_effort: Option<String>,
}

/// Tokens a call used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens in the answer.
    pub completion_tokens: u32,
}

/// A chat completion answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The answer's text.
    pub content: String,
    /// The model that answered.
    pub model: String,
    /// Tokens used.
    pub usage: Usage,
}

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The host has no model endpoint configured (or not the named one).
    #[error("model not configured: {0}")]
    NotConfigured(String),
    /// The grading run's token budget is spent.
    #[error("token budget exhausted")]
    BudgetExhausted,
    /// The call did not finish in time, retries included.
    #[error("model call timed out")]
    Timeout,
    /// The endpoint kept answering 429 after the retries.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// Any other failure.
    #[error("model call failed: {0}")]
    Failed(String),
}

/// Asks the model for one chat completion.
pub fn complete(request: &ChatRequest) -> Result<ChatResponse, LlmError> {
    imp::complete(request)
}

/// Embeds texts: one vector per input, in order.
pub fn embed(model: Option<&str>, inputs: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
    imp::embed(model, inputs)
}

/// The hook [`complete`] calls on native targets.
pub type CompleteMock = Box<dyn Fn(&ChatRequest) -> Result<ChatResponse, LlmError>>;
/// The hook [`embed`] calls on native targets.
pub type EmbedMock = Box<dyn Fn(Option<&str>, &[String]) -> Result<Vec<Vec<f32>>, LlmError>>;

/// Installs the hook [`complete`] calls on this thread (native targets only; ignored inside a
/// component). Each test thread has its own hook, so parallel tests do not interfere.
pub fn set_mock(mock: impl Fn(&ChatRequest) -> Result<ChatResponse, LlmError> + 'static) {
    #[cfg(not(target_arch = "wasm32"))]
    imp::COMPLETE.with(|slot| *slot.borrow_mut() = Some(Box::new(mock)));
    #[cfg(target_arch = "wasm32")]
    drop(mock);
}

/// Installs the hook [`embed`] calls on this thread (native targets only).
pub fn set_embed_mock(
    mock: impl Fn(Option<&str>, &[String]) -> Result<Vec<Vec<f32>>, LlmError> + 'static,
) {
    #[cfg(not(target_arch = "wasm32"))]
    imp::EMBED.with(|slot| *slot.borrow_mut() = Some(Box::new(mock)));
    #[cfg(target_arch = "wasm32")]
    drop(mock);
}

/// Removes this thread's hooks.
pub fn clear_mocks() {
    #[cfg(not(target_arch = "wasm32"))]
    {
        imp::COMPLETE.with(|slot| *slot.borrow_mut() = None);
        imp::EMBED.with(|slot| *slot.borrow_mut() = None);
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::bindings::flywheel::grader::llm as wit;

    pub fn complete(request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let request = wit::ChatRequest {
            model: request.model.clone(),
            endpoint: request.endpoint.clone(),
            messages: request
                .messages
                .iter()
                .map(|m| wit::Message {
                    role: m.role.clone(),
                    content: m.content.clone(),
                })
                .collect(),
            json_schema: request.json_schema.clone(),
            temperature: request.temperature,
            top_p: request.top_p,
            seed: request.seed,
            max_completion_tokens: request.max_completion_tokens,
            reasoning_effort: request.reasoning_effort.clone(),
        };
        wit::complete(&request)
            .map(|r| ChatResponse {
                content: r.content,
                model: r.model,
                usage: Usage {
                    prompt_tokens: r.usage.prompt_tokens,
                    completion_tokens: r.usage.completion_tokens,
                },
            })
            .map_err(from_wit)
    }

    pub fn embed(model: Option<&str>, inputs: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        wit::embed(model, inputs).map_err(from_wit)
    }

    fn from_wit(error: wit::LlmError) -> LlmError {
        match error {
            wit::LlmError::NotConfigured(m) => LlmError::NotConfigured(m),
            wit::LlmError::BudgetExhausted => LlmError::BudgetExhausted,
            wit::LlmError::Timeout => LlmError::Timeout,
            wit::LlmError::RateLimited(m) => LlmError::RateLimited(m),
            wit::LlmError::Failed(m) => LlmError::Failed(m),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        pub static COMPLETE: RefCell<Option<CompleteMock>> = const { RefCell::new(None) };
        pub static EMBED: RefCell<Option<EmbedMock>> = const { RefCell::new(None) };
    }

    pub fn complete(request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        COMPLETE.with(|slot| match slot.borrow().as_ref() {
            Some(mock) => mock(request),
            None => Err(LlmError::NotConfigured(
                "no host outside a component: install a mock with grader_sdk::llm::set_mock".into(),
            )),
        })
    }

    pub fn embed(model: Option<&str>, inputs: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        EMBED.with(|slot| match slot.borrow().as_ref() {
            Some(mock) => mock(model, inputs),
            None => Err(LlmError::NotConfigured(
                "no host outside a component: install a mock with grader_sdk::llm::set_embed_mock"
                    .into(),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_mock_native_calls_say_not_configured() {
        clear_mocks();
        let err = complete(&ChatRequest::default()).unwrap_err();
        assert!(matches!(err, LlmError::NotConfigured(_)));
        assert!(matches!(embed(None, &[]), Err(LlmError::NotConfigured(_))));
    }

    #[test]
    fn the_mock_sees_the_request_and_its_answer_is_returned() {
        set_mock(|request| {
            Ok(ChatResponse {
                content: format!("echo {}", request.messages[0].content),
                model: request.model.clone().unwrap_or_default(),
                usage: Usage {
                    prompt_tokens: 3,
                    completion_tokens: 2,
                },
            })
        });
        let request = ChatRequest {
            model: Some("m".into()),
            messages: vec![Message::new("user", "hi")],
            ..ChatRequest::default()
        };
        let answer = complete(&request).unwrap();
        assert_eq!(answer.content, "echo hi");
        assert_eq!(answer.usage.prompt_tokens, 3);
        set_mock(|_| Err(LlmError::BudgetExhausted));
        assert_eq!(complete(&request), Err(LlmError::BudgetExhausted));
        set_embed_mock(|_, inputs| Ok(inputs.iter().map(|s| vec![s.len() as f32]).collect()));
        assert_eq!(embed(None, &["abc".into()]).unwrap(), vec![vec![3.0]]);
        clear_mocks();
    }
}
