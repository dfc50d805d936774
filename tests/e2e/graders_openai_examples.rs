//! Every OpenAI grader example of the shared reference (`openai-grader-schemas.yaml`, the OpenAI
//! API spec, and `openai-formats.md`), copied into `fixtures/openai_grader_examples.json` with
//! its source line, is fed to the host's definition parser and to the real compiled component
//! that runs it: the component's own `validate-config`, then one sample row graded through the
//! runtime (model graders ask the fake OpenAI-compatible server on 127.0.0.1). Both must accept
//! it, except the examples the fixture marks as refused, which must be refused for the reason it
//! gives (image and audio content, which the host's text-only `llm` interface cannot carry; the
//! spec's own malformed `multi`).

use std::collections::BTreeSet;
use std::time::Duration;

use fake_model::{Behaviour, FakeModel};
use flywheel::graders::{
    Definition, GraderRuntime, Outcome, Registry, RegistryOptions, RuntimeOptions,
};
use flywheel::llm::{EndpointSettings, LlmClient, LlmSettings, Secret};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::graders_support::cache_dir;

/// The examples, with their source in the shared reference.
const EXAMPLES: &str = include_str!("fixtures/openai_grader_examples.json");

#[derive(Deserialize)]
struct Fixture {
    examples: Vec<Example>,
}

#[derive(Deserialize)]
struct Example {
    source: String,
    #[serde(default)]
    refused_by_host: Option<Refusal>,
    #[serde(default)]
    refused_by_component: Option<Refusal>,
    grader: Value,
}

#[derive(Deserialize)]
struct Refusal {
    containing: String,
}

/// A model that always answers in the shape the asking grader requested: the first label for a
/// `label_model`, a score of 1 otherwise.
fn fake_model() -> FakeModel {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::answer_with(|request| {
        let schema = &request["response_format"]["json_schema"];
        if schema["name"] == "label_model_result" {
            let label = &schema["schema"]["properties"]["label"]["enum"][0];
            json!({ "label": label }).to_string()
        } else {
            r#"{"result":1,"steps":[]}"#.to_string()
        }
    }));
    fake
}

/// Every built-in (the python grader too, when this build could make it) on a runtime whose
/// `llm` import calls `fake`.
async fn registry(fake: &FakeModel) -> std::sync::Arc<Registry> {
    let endpoint = EndpointSettings::new(&fake.base_url(), Some(Secret::new("sk-e2e-examples")))
        .expect("valid URL");
    let settings = LlmSettings {
        timeout_per_call: Duration::from_secs(10),
        max_retries: 1,
        ..LlmSettings::with_endpoint(endpoint)
    };
    let runtime = GraderRuntime::new(RuntimeOptions {
        llm: Some(LlmClient::new(settings).expect("valid settings")),
        ..RuntimeOptions::default()
    })
    .expect("the grader engine builds");
    Registry::start(
        runtime,
        RegistryOptions {
            graders_dir: None,
            cache_dir: Some(cache_dir()),
            builtins: flywheel::graders::builtin::builtins(),
            watch: false,
        },
    )
    .await
}

/// One row carrying every variable the examples' templates name.
fn sample_row() -> (String, String) {
    let sample = json!({
        "output_text": "positive",
        "output_json": {"name": "Ada Lovelace", "email": "ada@example.com"}
    });
    let item = json!({
        "input": "- Traffic alert: accident on Main Street.",
        "response": "I love it",
        "label": "positive",
        "correct_label": "positive",
        "ground_truth": "positive",
        "reference_answer": "positive",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "target_phrase": "Please deliver the package on Tuesday",
        "audio_clip_b64": "AAAA"
    });
    (sample.to_string(), item.to_string())
}

#[tokio::test]
async fn every_openai_grader_example_is_accepted_by_the_host_parser_and_its_component() {
    let fixture: Fixture = serde_json::from_str(EXAMPLES).expect("the fixture is valid JSON");
    let kinds: BTreeSet<&str> = fixture
        .examples
        .iter()
        .filter_map(|e| e.grader["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "label_model",
            "multi",
            "python",
            "score_model",
            "string_check",
            "text_similarity"
        ]),
        "every OpenAI grader type has examples"
    );
    let fake = fake_model();
    let registry = registry(&fake).await;
    let python = registry.get("python").is_some();
    if !python {
        let reason = registry
            .load_error("python")
            .unwrap_or_else(|| "not embedded in this build (no python3/pip)".into());
        if std::env::var_os("FLYWHEEL_REQUIRE_PYTHON_GRADER").is_some() {
            panic!("the python grader is unavailable: {reason}");
        }
        eprintln!("SKIPPED: the python examples: {reason}");
    }
    let (sample, item) = sample_row();
    let mut graded = 0usize;
    for example in &fixture.examples {
        let source = &example.source;
        let parsed = Definition::parse(&example.grader);
        if let Some(refusal) = &example.refused_by_host {
            let error = parsed.expect_err(source);
            assert!(
                error.to_string().contains(&refusal.containing),
                "{source}: refused for another reason: {error}"
            );
            continue;
        }
        let definition = parsed.unwrap_or_else(|e| panic!("{source}: the host refuses it: {e}"));
        if !python && definition.components().contains(&"python") {
            continue;
        }
        let validated = definition.validate(&registry).await;
        if let Some(refusal) = &example.refused_by_component {
            let error = validated.expect_err(source);
            assert!(
                error.field.ends_with("config") && error.message.contains(&refusal.containing),
                "{source}: refused for another reason: {error}"
            );
            continue;
        }
        validated.unwrap_or_else(|e| panic!("{source}: the component refuses it: {e}"));
        let resolved = definition
            .resolve(&registry)
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        match resolved.grade(registry.runtime(), &sample, &item).await {
            Outcome::Graded { grade } => {
                assert!(grade.score.is_finite(), "{source}: {grade:?}")
            }
            other => panic!("{source}: the sample row was not graded: {other:?}"),
        }
        graded += 1;
    }
    let expected = fixture
        .examples
        .iter()
        .filter(|e| e.refused_by_host.is_none() && e.refused_by_component.is_none())
        .filter(|e| python || e.grader["type"] != "python")
        .count();
    assert_eq!(graded, expected);
    assert!(graded >= 25, "only {graded} examples were graded");
    assert!(fake.calls() > 0, "the model graders asked the model");
}
