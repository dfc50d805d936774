//! The reflection step: the request that asks the reflection model for a revised prompt, built
//! from the current prompt, its failing train rows (input, answer, every grader's result, the
//! person's critique and failure mode), the failure-mode counts and the taxonomy; and the parser
//! that reads the revised prompt out of the answer and checks it keeps exactly the starting
//! prompt's template variables.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::state::RowScore;
use crate::llm::ChatMessage;
use crate::prompts::template::Template;
use crate::store::FailureMode;

/// Failing rows shown to the reflection model per round.
pub const MAX_EXAMPLES: usize = 8;
/// Longest value (input, answer, reasoning) shown per example.
const MAX_VALUE_CHARS: usize = 1500;

/// The instructions of every reflection request.
const SYSTEM: &str = "You improve the instructions of a prompt template for a language model. \
You are shown the current template, examples where the model's answer failed with the graders' \
results and a reviewer's critique, and how often each failure mode occurred. Find what the \
failures have in common and write a revised template that fixes them without breaking what \
works. Keep every template variable exactly as written ({{name}}), add none. Answer with the \
complete revised template only, inside one ``` block.";

/// One failing row as the reflection model sees it.
#[derive(Debug, Clone)]
pub struct Example<'a> {
    /// The row's `item`.
    pub item: &'a Map<String, Value>,
    /// The candidate's result on it.
    pub score: &'a RowScore,
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_VALUE_CHARS {
        text.to_owned()
    } else {
        let mut kept: String = text.chars().take(MAX_VALUE_CHARS).collect();
        kept.push('…');
        kept
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The failure mode of a row's annotation, when it has one.
pub fn failure_mode(item: &Map<String, Value>) -> Option<&str> {
    item.get("failure_mode").and_then(Value::as_str)
}

/// The messages of one reflection request.
pub fn request(
    current: &str,
    variables: &[String],
    examples: &[Example<'_>],
    counts: &BTreeMap<String, usize>,
    taxonomy: &[FailureMode],
) -> Vec<ChatMessage> {
    let mut text = String::new();
    text.push_str("Current template:\n```\n");
    text.push_str(current);
    text.push_str("\n```\n\n");
    let names: Vec<String> = variables.iter().map(|v| format!("{{{{{v}}}}}")).collect();
    text.push_str(&format!(
        "Template variables it must keep, exactly these and no others: {}\n\n",
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        }
    ));
    if !counts.is_empty() {
        text.push_str("Failure modes among the failing training rows (count):\n");
        for (code, count) in counts {
            let meaning = taxonomy
                .iter()
                .find(|m| &m.code == code)
                .map(|m| format!(" — {}", m.description))
                .unwrap_or_default();
            text.push_str(&format!("- {code}: {count}{meaning}\n"));
        }
        text.push('\n');
    }
    text.push_str("Failing examples:\n");
    for (n, example) in examples.iter().take(MAX_EXAMPLES).enumerate() {
        text.push_str(&format!("\n### Example {}\n", n + 1));
        text.push_str("Input:\n");
        for name in variables {
            if let Some(value) = example.item.get(name.split('.').next().unwrap_or(name)) {
                text.push_str(&format!("- {name}: {}\n", cut(&text_of(value))));
            }
        }
        match (&example.score.output, &example.score.error) {
            (Some(output), _) => text.push_str(&format!("Answer:\n{}\n", cut(output))),
            (None, Some(error)) => text.push_str(&format!("No answer ({error}).\n")),
            (None, None) => text.push_str("No answer.\n"),
        }
        for (grader, verdict) in &example.score.graders {
            let mut line = format!("Grader {grader}:");
            if let Some(score) = verdict.score {
                line.push_str(&format!(" score {score}"));
            }
            match verdict.passed {
                Some(true) => line.push_str(", passed"),
                Some(false) => line.push_str(", failed"),
                None => {}
            }
            if let Some(error) = &verdict.error {
                line.push_str(&format!(", could not grade ({error})"));
            }
            if let Some(reasoning) = &verdict.reasoning {
                line.push_str(&format!(". {}", cut(reasoning)));
            }
            text.push_str(&line);
            text.push('\n');
        }
        if let Some(critique) = example.item.get("output_feedback").filter(|v| !v.is_null()) {
            text.push_str(&format!("Critique: {}\n", cut(&text_of(critique))));
        }
        if let Some(mode) = failure_mode(example.item) {
            text.push_str(&format!("Failure mode: {mode}\n"));
        }
        if let Some(rating) = example.item.get("rating").and_then(Value::as_str) {
            text.push_str(&format!("Rating: {rating}\n"));
        }
    }
    text.push_str(
        "\nWrite the complete revised template, keeping the template variables, inside one \
         ``` block.",
    );
    vec![ChatMessage::system(SYSTEM), ChatMessage::user(text)]
}

/// Why a proposal is not a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No template text in the answer.
    Unparseable,
    /// Not a template.
    InvalidTemplate(String),
    /// Other variables than the starting prompt's.
    WrongVariables {
        /// Variables added.
        added: Vec<String>,
        /// Variables dropped.
        dropped: Vec<String>,
    },
}

/// The template text of a reflection answer: the inside of its first ``` block (a language tag
/// on the opening line is dropped), else the whole answer; trimmed. `None` when empty.
pub fn parse_answer(answer: &str) -> Option<String> {
    let text = match answer.find("```") {
        Some(open) => {
            let rest = &answer[open + 3..];
            // A tag such as ```text ends at the first newline.
            let rest = match rest.find('\n') {
                Some(newline) if !rest[..newline].trim().contains(' ') => &rest[newline + 1..],
                _ => rest,
            };
            match rest.find("```") {
                Some(close) => &rest[..close],
                None => rest,
            }
        }
        None => answer,
    };
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Checks a proposal: it parses as a template with exactly `variables` (as a set).
pub fn check(text: &str, variables: &[String]) -> Result<(), Refused> {
    let template = Template::parse(text).map_err(|e| Refused::InvalidTemplate(e.to_string()))?;
    let wanted: BTreeSet<&String> = variables.iter().collect();
    let got: BTreeSet<&String> = template.variables().iter().collect();
    if wanted == got {
        return Ok(());
    }
    Err(Refused::WrongVariables {
        added: got.difference(&wanted).map(|v| (*v).clone()).collect(),
        dropped: wanted.difference(&got).map(|v| (*v).clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::state::GraderScore;

    #[test]
    fn the_answer_s_first_block_is_the_template() {
        assert_eq!(
            parse_answer("Here:\n```text\nBe brief: {{q}}\n```\nDone").as_deref(),
            Some("Be brief: {{q}}")
        );
        assert_eq!(
            parse_answer("```\nAsk {{q}}\n```").as_deref(),
            Some("Ask {{q}}")
        );
        assert_eq!(parse_answer("  Ask {{q}}  ").as_deref(), Some("Ask {{q}}"));
        assert_eq!(parse_answer("```\n\n```"), None);
        assert_eq!(parse_answer(""), None);
    }

    #[test]
    fn a_proposal_keeps_exactly_the_variables() {
        let vars = vec!["q".to_owned()];
        assert_eq!(check("Answer {{q}} well", &vars), Ok(()));
        assert_eq!(check("{{q}} and {{q}}", &vars), Ok(()));
        assert_eq!(
            check("Answer {{q}} in {{lang}}", &vars),
            Err(Refused::WrongVariables {
                added: vec!["lang".into()],
                dropped: vec![]
            })
        );
        assert_eq!(
            check("Answer well", &vars),
            Err(Refused::WrongVariables {
                added: vec![],
                dropped: vec!["q".into()]
            })
        );
        assert!(matches!(
            check("Answer {{q", &vars),
            Err(Refused::InvalidTemplate(_))
        ));
    }

    #[test]
    fn the_request_shows_failures_critiques_and_counts() {
        let item: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "q": "what is 2+2", "expected": "4", "output_feedback": "no source cited",
            "failure_mode": "no_citation", "rating": "bad"
        }))
        .unwrap();
        let score = RowScore {
            score: 0.0,
            passed: Some(false),
            graders: [(
                "exact".to_owned(),
                GraderScore {
                    score: Some(0.0),
                    passed: Some(false),
                    reasoning: Some("differs".into()),
                    error: None,
                },
            )]
            .into_iter()
            .collect(),
            output: Some("5".into()),
            error: None,
        };
        let counts = [("no_citation".to_owned(), 3)].into_iter().collect();
        let taxonomy = vec![FailureMode {
            prompt_id: "qa".into(),
            code: "no_citation".into(),
            description: "cites nothing".into(),
        }];
        let messages = request(
            "Answer {{q}}",
            &["q".to_owned()],
            &[Example {
                item: &item,
                score: &score,
            }],
            &counts,
            &taxonomy,
        );
        assert_eq!(messages.len(), 2);
        let text = &messages[1].content;
        for expected in [
            "Answer {{q}}",
            "{{q}}",
            "- q: what is 2+2",
            "Answer:\n5",
            "Grader exact: score 0, failed. differs",
            "Critique: no source cited",
            "Failure mode: no_citation",
            "- no_citation: 3 — cites nothing",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from {text}");
        }
        assert!(
            !text.contains("expected"),
            "only the template's variables are shown"
        );
    }
}
