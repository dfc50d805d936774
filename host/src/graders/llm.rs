//! The host side of the `llm` import offered to `model-grader` components, over the model
//! client of [`crate::llm`].
//!
//! - [`LlmRun`]: what one grading run shares: its token budget. Every row of the run spends it;
//!   once spent, rows still to grade report `budget_exhausted` without calling the model.
//! - [`RowLlm`]: what one row's store holds: an [`LlmSession`] of its own (so the row's usage is
//!   exact) and whether a call hit the spent budget. It converts the WIT records to and from the
//!   client's types one to one; the API key stays in the client and never crosses to the guest
//!   (answers are scrubbed of it too, in case the endpoint echoes it).

use crate::graders::bindings::llm as wit;
use crate::llm::{ChatMessage, ChatRequest, LlmClient, LlmError, LlmSession, RunBudget, Usage};

/// One grading run's share of model access: its token budget (cloning shares it).
#[derive(Clone, Debug)]
pub struct LlmRun {
    budget: RunBudget,
}

impl LlmRun {
    /// A run limited to `tokens` (prompt and completion together), or unlimited.
    pub fn new(tokens: Option<u64>) -> Self {
        Self {
            budget: RunBudget::new(tokens),
        }
    }

    /// A run with no token limit (usage is still counted).
    pub fn unlimited() -> Self {
        Self::new(None)
    }

    /// The run's budget.
    pub fn budget(&self) -> &RunBudget {
        &self.budget
    }
}

impl Default for LlmRun {
    fn default() -> Self {
        Self::unlimited()
    }
}

/// The model access of one row's store.
pub struct RowLlm {
    session: LlmSession,
    /// The client, to scrub keys from answers before they cross into the guest.
    client: Option<LlmClient>,
    budget_hit: bool,
}

impl RowLlm {
    /// A row's access on `client` (not configured when `None`), spending `run`'s budget, using
    /// `endpoint` (named in the grader definition) unless a request names its own.
    pub fn new(client: Option<&LlmClient>, run: &LlmRun, endpoint: Option<String>) -> Self {
        let session = match client {
            Some(client) => {
                LlmSession::new(client.clone(), run.budget.clone()).with_endpoint(endpoint)
            }
            None => LlmSession::unconfigured(),
        };
        Self {
            session,
            client: client.cloned(),
            budget_hit: false,
        }
    }

    /// Tokens the row used, when it made any model call.
    pub fn usage(&self) -> Option<Usage> {
        (self.session.calls() > 0).then(|| self.session.usage())
    }

    /// Whether a call of this row was refused because the run's budget was spent.
    pub fn budget_hit(&self) -> bool {
        self.budget_hit
    }

    pub(crate) async fn complete(
        &mut self,
        request: wit::ChatRequest,
    ) -> Result<wit::ChatResponse, wit::LlmError> {
        if self.client.is_none() {
            return Err(not_configured());
        }
        let request = ChatRequest {
            model: request.model,
            endpoint: request.endpoint,
            messages: request
                .messages
                .into_iter()
                .map(|m| ChatMessage::new(m.role, m.content))
                .collect(),
            json_schema: request.json_schema,
            temperature: request.temperature,
            top_p: request.top_p,
            seed: request.seed,
            max_completion_tokens: request.max_completion_tokens,
            reasoning_effort: request.reasoning_effort,
        };
        match self.session.complete(request).await {
            // An endpoint (or a proxy) may echo the key anywhere in its answer; the guest would
            // then hold it and could put it in its reasoning. Every string is scrubbed at the
            // border, not only the content.
            Ok(answer) => Ok(wit::ChatResponse {
                content: self.scrub(answer.content),
                model: self.scrub(answer.model),
                usage: wit::Usage {
                    prompt_tokens: answer.usage.prompt_tokens,
                    completion_tokens: answer.usage.completion_tokens,
                },
            }),
            Err(error) => Err(self.record_error(error)),
        }
    }

    pub(crate) async fn embed(
        &mut self,
        model: Option<String>,
        inputs: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, wit::LlmError> {
        if self.client.is_none() {
            return Err(not_configured());
        }
        match self.session.embed(model, inputs).await {
            Ok(vectors) => Ok(vectors),
            Err(error) => Err(self.record_error(error)),
        }
    }

    /// The client's errors are redacted where they are made; they are scrubbed again here so
    /// that no string reaches a guest unchecked, whatever a later error path forgets.
    fn record_error(&mut self, error: LlmError) -> wit::LlmError {
        match error {
            LlmError::NotConfigured(m) => wit::LlmError::NotConfigured(self.scrub(m)),
            LlmError::BudgetExhausted => {
                self.budget_hit = true;
                wit::LlmError::BudgetExhausted
            }
            LlmError::Timeout(_) => wit::LlmError::Timeout,
            LlmError::RateLimited(m) => wit::LlmError::RateLimited(self.scrub(m)),
            LlmError::Failed(m) => wit::LlmError::Failed(self.scrub(m)),
        }
    }

    /// `text` with every configured key replaced by `***`.
    fn scrub(&self, text: String) -> String {
        match &self.client {
            Some(client) => client.redact(&text),
            None => text,
        }
    }
}

/// The answer of a host with no model client at all.
fn not_configured() -> wit::LlmError {
    wit::LlmError::NotConfigured(
        "no model endpoint is configured on this host (set OPENAI_BASE_URL or FLYWHEEL_LLM_ENDPOINTS)"
            .to_string(),
    )
}
