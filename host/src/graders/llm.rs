//! The host side of the `llm` import offered to `model-grader` components.
//!
//! The implementation sits behind [`LlmBackend`] so the model-graders work can swap in an
//! OpenAI-compatible client (endpoint, key, retries, budget) without touching the runtime. Until
//! then [`NotConfigured`] answers every call with `llm-error::not-configured`.

use crate::graders::bindings::llm::{ChatRequest, ChatResponse, LlmError};

/// What answers a component's `llm` calls. Implementations keep the API key: nothing here ever
/// hands it to the component.
#[async_trait::async_trait]
pub trait LlmBackend: Send + Sync + 'static {
    /// One chat completion.
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, LlmError>;
    /// One embedding vector per input, in order.
    async fn embed(
        &self,
        model: Option<String>,
        inputs: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, LlmError>;
}

/// The backend used while no model endpoint is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotConfigured;

#[async_trait::async_trait]
impl LlmBackend for NotConfigured {
    async fn complete(&self, _request: ChatRequest) -> Result<ChatResponse, LlmError> {
        Err(LlmError::NotConfigured(
            "no model endpoint is configured on this host".to_string(),
        ))
    }

    async fn embed(
        &self,
        _model: Option<String>,
        _inputs: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        Err(LlmError::NotConfigured(
            "no embeddings endpoint is configured on this host".to_string(),
        ))
    }
}
