//! OpenAI model-grader inputs (feature `model`): the templated `input` messages and the
//! `sampling_params` of `score_model` and `label_model` definitions, parsed, checked up front and
//! rendered against one row into [`crate::llm::Message`]s.
//!
//! A message's `content` may be a string, one content item `{"type":"input_text","text":…}`
//! (`output_text` too), or a list of them; the texts of a list are joined with a blank line.
//! Image and audio items are refused as config errors: the host's `llm` interface carries text.

use serde::Deserialize;

use crate::llm::{ChatRequest, Message};
use crate::template::Template;
use crate::{GradeError, Item, Sample};

/// The roles OpenAI accepts in an `input` message.
pub const ROLES: &[&str] = &["system", "developer", "user", "assistant"];

/// One `input` message of a model-grader definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// The message text: a template string, a content item or a list of content items.
    pub content: Content,
    /// `message` when present (OpenAI's `EvalItem.type`).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// A message's content, in any of OpenAI's shapes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// A plain template string.
    Text(String),
    /// One content item.
    Item(ContentItem),
    /// Several content items.
    Items(Vec<ContentItem>),
}

/// One content item; only the text kinds can be sent through the host.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentItem {
    /// `input_text` or `output_text` (others are refused).
    #[serde(rename = "type")]
    pub kind: String,
    /// The template text.
    #[serde(default)]
    pub text: Option<String>,
}

/// OpenAI's `sampling_params` (note OpenAI's spelling `max_completions_tokens`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingParams {
    /// Seed for reproducible sampling.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// The most tokens the answer may use (at least 1).
    #[serde(default)]
    pub max_completions_tokens: Option<u32>,
    /// Reasoning effort for reasoning models.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
}

impl SamplingParams {
    /// Checks the ranges OpenAI documents; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(format!(
                "`sampling_params.temperature`: {t} is outside [0, 2]"
            ));
        }
        if let Some(p) = self.top_p
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("`sampling_params.top_p`: {p} is outside [0, 1]"));
        }
        if self.max_completions_tokens == Some(0) {
            return Err("`sampling_params.max_completions_tokens`: must be at least 1".into());
        }
        if let Some(effort) = &self.reasoning_effort
            && !["none", "minimal", "low", "medium", "high", "xhigh", "max"]
                .contains(&effort.as_str())
        {
            return Err(format!(
                "`sampling_params.reasoning_effort`: unknown value `{effort}` (none, minimal, low, medium, high, xhigh, max)"
            ));
        }
        Ok(())
    }

    /// Copies the parameters into a request.
    pub fn apply(&self, request: &mut ChatRequest) {
        request.seed = self.seed;
        request.top_p = self.top_p;
        request.temperature = self.temperature;
        request.max_completion_tokens = self.max_completions_tokens;
        request.reasoning_effort.clone_from(&self.reasoning_effort);
    }
}

impl InputMessage {
    /// The message's template texts, in order.
    fn texts(&self, at: usize) -> Result<Vec<&str>, String> {
        let items: Vec<&ContentItem> = match &self.content {
            Content::Text(text) => return Ok(vec![text.as_str()]),
            Content::Item(item) => vec![item],
            Content::Items(items) => items.iter().collect(),
        };
        if items.is_empty() {
            return Err(format!("`input[{at}].content`: the list is empty"));
        }
        items
            .into_iter()
            .map(|item| match (item.kind.as_str(), &item.text) {
                ("input_text" | "output_text", Some(text)) => Ok(text.as_str()),
                ("input_text" | "output_text", None) => {
                    Err(format!("`input[{at}].content`: a text item has no `text`"))
                }
                (other, _) => Err(format!(
                    "`input[{at}].content`: `{other}` items are not supported; model graders send text only (input_text, output_text)"
                )),
            })
            .collect()
    }
}

/// Checks the messages: at least one, known roles, text content, templates that parse.
pub fn validate_input(input: &[InputMessage]) -> Result<(), String> {
    if input.is_empty() {
        return Err("`input`: needs at least one message".into());
    }
    for (at, message) in input.iter().enumerate() {
        if !ROLES.contains(&message.role.as_str()) {
            return Err(format!(
                "`input[{at}].role`: unknown role `{}` (system, developer, user, assistant)",
                message.role
            ));
        }
        if let Some(kind) = &message.kind
            && kind != "message"
        {
            return Err(format!(
                "`input[{at}].type`: must be `message`, not `{kind}`"
            ));
        }
        for text in message.texts(at)? {
            Template::parse(text).map_err(|e| format!("`input[{at}].content`: {e}"))?;
        }
    }
    Ok(())
}

/// Renders every message against one row. A variable missing from the row is an invalid-input
/// error naming the message.
pub fn render_input(
    input: &[InputMessage],
    sample: &Sample,
    item: &Item,
) -> Result<Vec<Message>, GradeError> {
    let mut messages = Vec::with_capacity(input.len());
    for (at, message) in input.iter().enumerate() {
        let texts = message.texts(at).map_err(GradeError::config)?;
        let mut rendered = Vec::with_capacity(texts.len());
        for text in texts {
            let template = Template::parse(text)
                .map_err(|e| GradeError::config(format!("`input[{at}].content`: {e}")))?;
            rendered.push(
                template
                    .render(sample, item)
                    .map_err(|e| GradeError::input(format!("`input[{at}].content`: {e}")))?,
            );
        }
        messages.push(Message::new(message.role.clone(), rendered.join("\n\n")));
    }
    Ok(messages)
}

/// What every model-grader definition sends: the model, an optional named endpoint, the
/// templated input and the sampling parameters. `score_model` and `label_model` differ only in
/// the answer schema and in how they read the answer.
#[derive(Debug, Clone, Copy)]
pub struct ModelCall<'a> {
    /// The model name.
    pub model: &'a str,
    /// A named endpoint configured on the host.
    pub endpoint: Option<&'a str>,
    /// The templated messages.
    pub input: &'a [InputMessage],
    /// Sampling parameters.
    pub sampling_params: Option<&'a SamplingParams>,
}

impl ModelCall<'_> {
    /// Checks the shared fields, naming the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(params) = self.sampling_params {
            params.validate()?;
        }
        if let Some(endpoint) = self.endpoint
            && endpoint.trim().is_empty()
        {
            return Err("`endpoint`: must name an endpoint when present".into());
        }
        validate_input(self.input)
    }

    /// The request for one row, asking for an answer that follows `json_schema`.
    pub fn request(
        &self,
        sample: &Sample,
        item: &Item,
        json_schema: String,
    ) -> Result<ChatRequest, GradeError> {
        let mut request = ChatRequest {
            model: Some(self.model.to_string()),
            endpoint: self.endpoint.map(str::to_string),
            messages: render_input(self.input, sample, item)?,
            json_schema: Some(json_schema),
            ..ChatRequest::default()
        };
        if let Some(params) = self.sampling_params {
            params.apply(&mut request);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Vec<InputMessage> {
        serde_json::from_str(json).expect("valid input JSON")
    }

    #[test]
    fn every_content_shape_renders() {
        let input = parse(
            r#"[{"role":"system","content":"Grade {{item.task}}"},
                {"role":"user","content":{"type":"input_text","text":"Answer: {{sample.output_text}}"},"type":"message"},
                {"role":"user","content":[{"type":"input_text","text":"a"},{"type":"output_text","text":"b"}]}]"#,
        );
        validate_input(&input).expect("valid");
        let sample = Sample::from_text("42");
        let item = Item::parse(r#"{"task":"sum"}"#).expect("item");
        let messages = render_input(&input, &sample, &item).expect("renders");
        assert_eq!(messages[0], Message::new("system", "Grade sum"));
        assert_eq!(messages[1], Message::new("user", "Answer: 42"));
        assert_eq!(messages[2].content, "a\n\nb");
    }

    #[test]
    fn bad_inputs_name_their_field() {
        assert!(validate_input(&[]).unwrap_err().contains("`input`"));
        let e = validate_input(&parse(r#"[{"role":"robot","content":"x"}]"#)).unwrap_err();
        assert!(e.contains("input[0].role"), "{e}");
        let e = validate_input(&parse(r#"[{"role":"user","content":"{{oops.x}}"}]"#)).unwrap_err();
        assert!(e.contains("input[0].content"), "{e}");
        let e = validate_input(&parse(
            r#"[{"role":"user","content":{"type":"input_image","image_url":"x"}}]"#,
        ))
        .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let missing = render_input(
            &parse(r#"[{"role":"user","content":"{{item.nope}}"}]"#),
            &Sample::from_text("x"),
            &Item::empty(),
        )
        .unwrap_err();
        assert!(
            matches!(missing, GradeError::InvalidInput(_)),
            "{missing:?}"
        );
    }

    #[test]
    fn sampling_params_are_range_checked_and_applied() {
        let bad = SamplingParams {
            temperature: Some(3.0),
            ..SamplingParams::default()
        };
        assert!(bad.validate().unwrap_err().contains("temperature"));
        let zero = SamplingParams {
            max_completions_tokens: Some(0),
            ..SamplingParams::default()
        };
        assert!(zero.validate().is_err());
        let good = SamplingParams {
            seed: Some(7),
            max_completions_tokens: Some(100),
            reasoning_effort: Some("low".into()),
            ..SamplingParams::default()
        };
        good.validate().expect("valid");
        let mut request = ChatRequest::default();
        good.apply(&mut request);
        assert_eq!(request.seed, Some(7));
        assert_eq!(request.max_completion_tokens, Some(100));
        assert_eq!(request.reasoning_effort.as_deref(), Some("low"));
    }
}
