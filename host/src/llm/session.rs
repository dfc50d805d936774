//! [`LlmSession`]: the model access of one grader call or batch, as the `llm` host import holds
//! it in its wasmtime `Store`. It adds to the shared [`LlmClient`] what belongs to one grading
//! run and one grader: the run's [`RunBudget`], the endpoint the grader definition names, and a
//! tally of the tokens used, which the runtime records with the row.

use super::budget::RunBudget;
use super::client::LlmClient;
use super::error::LlmError;
use super::types::{ChatRequest, ChatResponse, EmbedRequest, Usage};

/// The most texts one `embed` call may carry (OpenAI's own limit per request).
pub const MAX_EMBED_INPUTS: usize = 2048;

/// The most bytes of message text (or embedding input) one call may carry. A component's
/// memory limit already bounds it; this keeps one row from sending a huge prompt on the run's
/// budget, and the endpoint would refuse most such requests anyway.
pub const MAX_REQUEST_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// Model access for one grader call or batch.
#[derive(Clone, Debug)]
pub struct LlmSession {
    client: Option<LlmClient>,
    budget: RunBudget,
    endpoint: Option<String>,
    usage: Usage,
    calls: u32,
}

impl LlmSession {
    /// A session on `client`, spending `budget` (shared by the whole grading run).
    pub fn new(client: LlmClient, budget: RunBudget) -> Self {
        Self {
            client: Some(client),
            budget,
            endpoint: None,
            usage: Usage::default(),
            calls: 0,
        }
    }

    /// A session where every call answers [`LlmError::NotConfigured`]: for a host that has no
    /// model client at all.
    pub fn unconfigured() -> Self {
        Self {
            client: None,
            budget: RunBudget::unlimited(),
            endpoint: None,
            usage: Usage::default(),
            calls: 0,
        }
    }

    /// Uses the named endpoint (from the grader definition) for requests that name none.
    pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// Asks for one chat completion (the WIT `complete`).
    pub async fn complete(&mut self, mut request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let client = self.client()?;
        let text: usize = request
            .messages
            .iter()
            .map(|m| m.content.len())
            .sum::<usize>()
            + request.json_schema.as_ref().map_or(0, String::len);
        if text > MAX_REQUEST_TEXT_BYTES {
            return Err(LlmError::Failed(format!(
                "the request carries {text} bytes of text; the limit is {MAX_REQUEST_TEXT_BYTES}"
            )));
        }
        if request.endpoint.is_none() {
            request.endpoint.clone_from(&self.endpoint);
        }
        self.calls += 1;
        let response = client.complete(&request, &self.budget).await?;
        self.usage += response.usage;
        Ok(response)
    }

    /// Embeds texts, one vector per input in order (the WIT `embed`).
    pub async fn embed(
        &mut self,
        model: Option<String>,
        inputs: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        let client = self.client()?;
        if inputs.len() > MAX_EMBED_INPUTS {
            return Err(LlmError::Failed(format!(
                "{} inputs in one call; the limit is {MAX_EMBED_INPUTS}",
                inputs.len()
            )));
        }
        let text: usize = inputs.iter().map(String::len).sum();
        if text > MAX_REQUEST_TEXT_BYTES {
            return Err(LlmError::Failed(format!(
                "the inputs carry {text} bytes of text; the limit is {MAX_REQUEST_TEXT_BYTES}"
            )));
        }
        let request = EmbedRequest {
            model,
            endpoint: self.endpoint.clone(),
            inputs,
        };
        self.calls += 1;
        let embeddings = client.embed(&request, &self.budget).await?;
        self.usage += embeddings.usage;
        Ok(embeddings.vectors)
    }

    /// Tokens used by the session's calls so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Returns the tokens used since the last call of this method and starts a new tally: for
    /// recording usage row by row when one session serves several rows.
    pub fn take_usage(&mut self) -> Usage {
        std::mem::take(&mut self.usage)
    }

    /// Model calls the session made (answered or not; calls refused before sending included).
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// The run budget the session spends.
    pub fn budget(&self) -> &RunBudget {
        &self.budget
    }

    fn client(&self) -> Result<LlmClient, LlmError> {
        self.client.clone().ok_or_else(|| {
            LlmError::NotConfigured("this host has no model client configured".to_owned())
        })
    }
}
