//! The OpenAI wire format of the two calls the client makes, and the translation between it and
//! the client's types. Only what the client needs is read; unknown fields are ignored, since
//! OpenAI-compatible servers differ in what else they send.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::types::{ChatMessage, ChatRequest, Usage};

/// The schema name sent when the caller gave a bare schema.
const DEFAULT_SCHEMA_NAME: &str = "grader_response";

/// The body of `POST /chat/completions`.
#[derive(Serialize)]
pub struct ChatBody<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
}

impl<'a> ChatBody<'a> {
    /// The body for `request` sent to `model`; fails when the schema is not a JSON object.
    pub fn new(model: &'a str, request: &'a ChatRequest) -> Result<Self, String> {
        let response_format = request
            .json_schema
            .as_deref()
            .map(response_format)
            .transpose()?;
        Ok(Self {
            model,
            messages: &request.messages,
            response_format,
            temperature: request.temperature,
            top_p: request.top_p,
            seed: request.seed,
            max_completion_tokens: request.max_completion_tokens,
            reasoning_effort: request.reasoning_effort.as_deref(),
        })
    }
}

/// OpenAI's structured-output `response_format` for a schema given as JSON text: either a bare
/// schema, or the `{"name", "schema", "strict"?}` wrapper when the caller names it itself.
fn response_format(schema_text: &str) -> Result<Value, String> {
    let schema: Value = serde_json::from_str(schema_text)
        .map_err(|error| format!("json-schema is not valid JSON: {error}"))?;
    let Value::Object(object) = &schema else {
        return Err("json-schema must be a JSON object".to_owned());
    };
    let json_schema = match (object.get("name"), object.get("schema")) {
        (Some(Value::String(name)), Some(Value::Object(_))) => {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "json-schema name `{name}` must be 1-64 characters of a-z, A-Z, 0-9, `_`, `-`"
                ));
            }
            let mut wrapper = object.clone();
            wrapper.entry("strict").or_insert(Value::Bool(true));
            Value::Object(wrapper)
        }
        _ => json!({"name": DEFAULT_SCHEMA_NAME, "schema": schema, "strict": true}),
    };
    Ok(json!({"type": "json_schema", "json_schema": json_schema}))
}

/// The body of `POST /embeddings`.
#[derive(Serialize)]
pub struct EmbeddingsBody<'a> {
    /// The model.
    pub model: &'a str,
    /// The texts.
    pub input: &'a [String],
    /// Always `float`: the client returns `f32` vectors.
    pub encoding_format: &'static str,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        let clamp = |n: Option<u64>| u32::try_from(n.unwrap_or(0)).unwrap_or(u32::MAX);
        Usage::new(clamp(self.prompt_tokens), clamp(self.completion_tokens))
    }
}

#[derive(Deserialize)]
struct ChatAnswer {
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: AnswerMessage,
}

#[derive(Deserialize)]
struct AnswerMessage {
    content: Option<String>,
    refusal: Option<String>,
}

/// What a successful chat answer says.
#[derive(Debug)]
pub struct ParsedChat {
    /// The first choice's text.
    pub content: String,
    /// The model that answered, if named.
    pub model: Option<String>,
    /// Reported usage, if any.
    pub usage: Option<Usage>,
}

/// Reads a 2xx chat answer; the error says what is wrong with it.
pub fn parse_chat(body: &[u8]) -> Result<ParsedChat, String> {
    let answer: ChatAnswer = serde_json::from_slice(body).map_err(|error| {
        format!("the endpoint's answer is not a valid chat completion: {error}")
    })?;
    let Some(choice) = answer.choices.into_iter().next() else {
        return Err("the endpoint's answer has no choices".to_owned());
    };
    let content = match (choice.message.content, choice.message.refusal) {
        (_, Some(refusal)) if !refusal.is_empty() => {
            return Err(format!("the model refused: {refusal}"));
        }
        (Some(content), _) => content,
        (None, _) => return Err("the endpoint's answer has no message content".to_owned()),
    };
    Ok(ParsedChat {
        content,
        model: answer.model,
        usage: answer.usage.as_ref().map(WireUsage::to_usage),
    })
}

#[derive(Deserialize)]
struct EmbeddingsAnswer {
    model: Option<String>,
    data: Vec<EmbeddingItem>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

/// What a successful embeddings answer says.
#[derive(Debug)]
pub struct ParsedEmbeddings {
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// The model that answered, if named.
    pub model: Option<String>,
    /// Reported usage, if any.
    pub usage: Option<Usage>,
}

/// Reads a 2xx embeddings answer for `inputs` texts: exactly one vector per input index.
pub fn parse_embeddings(body: &[u8], inputs: usize) -> Result<ParsedEmbeddings, String> {
    let answer: EmbeddingsAnswer = serde_json::from_slice(body).map_err(|error| {
        format!("the endpoint's answer is not a valid embeddings list: {error}")
    })?;
    if answer.data.len() != inputs {
        return Err(format!(
            "the endpoint returned {} embeddings for {inputs} inputs",
            answer.data.len()
        ));
    }
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; inputs];
    for item in answer.data {
        match vectors.get_mut(item.index) {
            Some(slot @ None) => *slot = Some(item.embedding),
            _ => {
                return Err(format!(
                    "the endpoint returned a duplicate or out-of-range embedding index {}",
                    item.index
                ));
            }
        }
    }
    Ok(ParsedEmbeddings {
        // Every slot is filled: `inputs` items, each index distinct and in range.
        vectors: vectors.into_iter().flatten().collect(),
        model: answer.model,
        usage: answer.usage.as_ref().map(WireUsage::to_usage),
    })
}

/// The message of an OpenAI-style error body (`{"error": {"message": …}}`), or the start of
/// the body as text.
pub fn error_message(body: &[u8]) -> String {
    const MAX_CHARS: usize = 500;
    let from_json = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| {
            let error = value.get("error")?;
            match error {
                Value::String(text) => Some(text.clone()),
                _ => error.get("message")?.as_str().map(str::to_owned),
            }
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if text.chars().count() > MAX_CHARS {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    } else if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(request: &ChatRequest) -> Value {
        let body = ChatBody::new("m", request).expect("valid request");
        serde_json::to_value(&body).expect("serialisable")
    }

    #[test]
    fn a_bare_schema_is_wrapped_strict_with_a_default_name() {
        let request = ChatRequest {
            json_schema: Some(
                r#"{"type":"object","properties":{"result":{"type":"number"}}}"#.to_owned(),
            ),
            ..ChatRequest::new(vec![ChatMessage::user("hi")])
        };
        let body = body_of(&request);
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(
            body["response_format"]["json_schema"]["name"],
            DEFAULT_SCHEMA_NAME
        );
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        assert_eq!(
            body["response_format"]["json_schema"]["schema"]["properties"]["result"]["type"],
            "number"
        );
    }

    #[test]
    fn a_named_wrapper_is_kept_and_unset_options_are_left_out() {
        let request = ChatRequest {
            json_schema: Some(
                r#"{"name":"score","schema":{"type":"object"},"strict":false}"#.to_owned(),
            ),
            ..ChatRequest::new(vec![ChatMessage::user("hi")])
        };
        let body = body_of(&request);
        assert_eq!(body["response_format"]["json_schema"]["name"], "score");
        assert_eq!(body["response_format"]["json_schema"]["strict"], false);
        for absent in [
            "temperature",
            "top_p",
            "seed",
            "max_completion_tokens",
            "reasoning_effort",
        ] {
            assert!(
                body.get(absent).is_none(),
                "{absent} should be absent: {body}"
            );
        }
    }

    #[test]
    fn bad_schemas_are_refused_before_any_call() {
        for schema in ["{not json", "[1,2]", r#"{"name":"bad name!","schema":{}}"#] {
            let request = ChatRequest {
                json_schema: Some(schema.to_owned()),
                ..ChatRequest::new(vec![ChatMessage::user("hi")])
            };
            assert!(ChatBody::new("m", &request).is_err(), "{schema}");
        }
    }

    #[test]
    fn chat_answers_are_read_and_bad_ones_explained() {
        let ok = br#"{"model":"m1","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        let parsed = parse_chat(ok).expect("valid");
        assert_eq!(parsed.content, "hi");
        assert_eq!(parsed.usage, Some(Usage::new(3, 1)));
        assert!(
            parse_chat(b"{\"choices\": [")
                .expect_err("refused")
                .contains("not a valid chat completion")
        );
        assert!(
            parse_chat(br#"{"choices":[]}"#)
                .expect_err("refused")
                .contains("no choices")
        );
        assert!(
            parse_chat(br#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#)
                .expect_err("refused")
                .contains("refused")
        );
        assert!(
            parse_chat(br#"{"choices":[{"message":{"content":null}}]}"#)
                .expect_err("refused")
                .contains("no message content")
        );
    }

    #[test]
    fn embeddings_are_put_in_input_order_and_checked() {
        let body = br#"{"data":[{"index":1,"embedding":[2.0]},{"index":0,"embedding":[1.0]}]}"#;
        let parsed = parse_embeddings(body, 2).expect("valid");
        assert_eq!(parsed.vectors, vec![vec![1.0], vec![2.0]]);
        assert!(parse_embeddings(body, 3).is_err());
        let duplicate =
            br#"{"data":[{"index":0,"embedding":[2.0]},{"index":0,"embedding":[1.0]}]}"#;
        assert!(parse_embeddings(duplicate, 2).is_err());
        let out_of_range = br#"{"data":[{"index":5,"embedding":[2.0]}]}"#;
        assert!(parse_embeddings(out_of_range, 1).is_err());
    }

    #[test]
    fn error_messages_come_from_the_error_object_or_the_text() {
        assert_eq!(
            error_message(br#"{"error":{"message":"slow down"}}"#),
            "slow down"
        );
        assert_eq!(error_message(b"Bad Gateway"), "Bad Gateway");
        assert_eq!(error_message(b""), "(empty body)");
        assert!(error_message("x".repeat(2000).as_bytes()).chars().count() <= 501);
    }
}
