//! Model graders end to end: OpenAI `score_model`, `label_model` and `text_similarity` cosine
//! definitions run by the built-in model-grader components in the real wasm runtime, whose `llm`
//! import calls the real model client, against the fake OpenAI-compatible server on 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_model::{Behaviour, FakeModel, UsageMode, embedding_for, last_user_message};
use flywheel::graders::definition::{Definition, Resolved};
use flywheel::graders::{
    GraderErrorKind, GraderRuntime, LlmRun, Outcome, Registry, RegistryOptions, RuntimeOptions,
    World,
};
use flywheel::grading::file::{RowReport, Summary, grade_rows_in};
use flywheel::llm::{EndpointSettings, LlmClient, LlmSettings, Secret};
use flywheel_e2e::{ADMIN_TOKEN, TestApp, TestDb};
use serde_json::{Value, json};

use crate::graders_support::{LogBuffer, cache_dir};

/// A key no real service would send back unless it echoed ours.
const KEY: &str = "sk-flywheel-e2e-model-key-7f3a9c1d5e";

/// Client settings for `fake`: the test key, short waits, `concurrency` calls at once.
fn settings_for(fake: &FakeModel, concurrency: usize) -> LlmSettings {
    let endpoint =
        EndpointSettings::new(&fake.base_url(), Some(Secret::new(KEY))).expect("valid URL");
    LlmSettings {
        timeout_per_call: Duration::from_secs(5),
        max_retries: 2,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_secs(2),
        max_concurrency: concurrency,
        ..LlmSettings::with_endpoint(endpoint)
    }
}

/// A registry of the built-ins on a runtime of its own whose `llm` import uses `settings` (none:
/// not configured). The compile cache is shared, so the built-ins compile once per process.
async fn registry(settings: Option<LlmSettings>) -> Arc<Registry> {
    let llm = settings.map(|s| LlmClient::new(s).expect("valid settings"));
    let runtime = GraderRuntime::new(RuntimeOptions {
        llm,
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

fn resolve(registry: &Registry, definition: &Value) -> Resolved {
    Definition::parse(definition)
        .and_then(|d| d.resolve(registry))
        .unwrap_or_else(|e| panic!("{definition}: {e}"))
}

fn score_model(extra: Value) -> Value {
    let mut definition = json!({
        "type": "score_model",
        "name": "answer_quality",
        "model": "judge-1",
        "input": [
            {"role": "system", "content": "Score the answer to {{item.question}} from 0 to 1."},
            {"role": "user", "content": {"type": "input_text", "text": "Answer: {{sample.output_text}}"}}
        ],
        "pass_threshold": 0.5
    });
    if let (Some(base), Some(extra)) = (definition.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    definition
}

fn label_model() -> Value {
    json!({
        "type": "label_model",
        "name": "tone",
        "model": "judge-1",
        "input": [{"role": "user", "content": "Classify: {{sample.output_text}}"}],
        "labels": ["positive", "neutral", "negative"],
        "passing_labels": ["positive"]
    })
}

fn row(output: &str) -> (String, String) {
    (
        json!({"output_text": output}).to_string(),
        json!({"question": "2+2"}).to_string(),
    )
}

fn lines(rows: &[(String, String)]) -> Vec<std::io::Result<String>> {
    rows.iter()
        .map(|(sample, item)| {
            Ok(format!(
                r#"{{"item":{item},"sample":{sample}}}"#,
                item = item,
                sample = sample
            ))
        })
        .collect()
}

async fn grade_all(
    resolved: &Resolved,
    registry: &Registry,
    run: &LlmRun,
    rows: &[(String, String)],
) -> (Vec<RowReport>, Summary) {
    grade_rows_in(resolved, registry.runtime(), run, lines(rows), &mut |_| {}).await
}

async fn grade_one(resolved: &Resolved, registry: &Registry, output: &str) -> Outcome {
    let (sample, item) = row(output);
    resolved.grade(registry.runtime(), &sample, &item).await
}

fn graded(outcome: &Outcome) -> &flywheel::graders::GradeResult {
    match outcome {
        Outcome::Graded { grade } => grade,
        other => panic!("expected a grade, got {other:?}"),
    }
}

fn failed_message(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::GraderError {
            kind: GraderErrorKind::Failed,
            message,
        } => message,
        other => panic!("expected a failed error, got {other:?}"),
    }
}

#[tokio::test]
async fn score_model_scores_a_good_answer_and_sends_a_structured_output_request() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_usage(UsageMode::Fixed(40, 12))
        .set_default(Behaviour::answer(
            r#"{"steps":[{"description":"compared with 4","conclusion":"correct"}],"result":0.9}"#,
        ));
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let resolved = resolve(
        &registry,
        &score_model(json!({"sampling_params": {"seed": 7, "temperature": 0}})),
    );

    let outcome = grade_one(&resolved, &registry, "4").await;
    let grade = graded(&outcome);
    assert_eq!(grade.score, 0.9);
    assert_eq!(grade.passed, Some(true));
    assert_eq!(grade.reasoning.as_deref(), Some("compared with 4: correct"));
    let usage = grade.usage.expect("usage recorded");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (40, 12));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let body = requests[0].json.clone().expect("JSON body");
    assert_eq!(body["model"], "judge-1");
    assert_eq!(body["seed"], 7);
    assert_eq!(
        body["messages"][0]["content"],
        "Score the answer to 2+2 from 0 to 1."
    );
    assert_eq!(body["messages"][1]["content"], "Answer: 4");
    assert_eq!(body["response_format"]["type"], "json_schema", "{body}");
    let schema = body["response_format"]["json_schema"].to_string();
    assert!(
        schema.contains("result") && schema.contains("steps"),
        "{schema}"
    );
}

#[tokio::test]
async fn score_model_clamps_to_the_range_and_scores_non_numeric_answers_zero() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::answer_with(|request| {
        match last_user_message(request).unwrap_or_default() {
            "Answer: high" => r#"{"result":9,"steps":[]}"#.into(),
            "Answer: low" => r#"{"result":-4,"steps":[]}"#.into(),
            "Answer: words" => r#"{"result":"excellent","steps":[]}"#.into(),
            _ => "not json at all".into(),
        }
    }));
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let resolved = resolve(
        &registry,
        &score_model(json!({"range": [1, 5], "pass_threshold": 3.5})),
    );

    let high = grade_one(&resolved, &registry, "high").await;
    assert_eq!(graded(&high).score, 5.0);
    assert_eq!(graded(&high).passed, Some(true));
    assert!(
        graded(&high)
            .reasoning
            .clone()
            .unwrap_or_default()
            .contains("clamped")
    );
    let low = grade_one(&resolved, &registry, "low").await;
    assert_eq!(graded(&low).score, 1.0);
    assert_eq!(graded(&low).passed, Some(false));
    for (text, reason) in [("words", "no numeric"), ("prose", "not JSON")] {
        let outcome = grade_one(&resolved, &registry, text).await;
        let grade = graded(&outcome);
        assert_eq!(grade.score, 0.0, "{text}");
        assert_eq!(grade.passed, Some(false));
        let kept = grade.reasoning.clone().unwrap_or_default();
        assert!(kept.contains(reason), "{text}: {kept}");
    }
}

#[tokio::test]
async fn a_malformed_answer_from_the_server_is_an_error_with_its_reason_kept() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::Malformed("{\"choices\": [".into()));
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let resolved = resolve(&registry, &score_model(json!({})));
    let outcome = grade_one(&resolved, &registry, "4").await;
    let message = failed_message(&outcome);
    assert!(message.contains("not a valid chat completion"), "{message}");
    assert_eq!(fake.calls(), 1, "a malformed answer is not retried");
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_the_row_is_graded() {
    let fake = FakeModel::start().expect("fake server");
    fake.push(Behaviour::rate_limited_secs(1))
        .set_default(Behaviour::answer(r#"{"result":1,"steps":[]}"#));
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let resolved = resolve(&registry, &score_model(json!({})));
    let started = Instant::now();
    let outcome = grade_one(&resolved, &registry, "4").await;
    assert_eq!(graded(&outcome).score, 1.0);
    assert_eq!(fake.calls(), 2);
    let requests = fake.requests();
    let waited = requests[1].received_at - requests[0].received_at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_500_then_success_grades_the_row() {
    let fake = FakeModel::start().expect("fake server");
    fake.push(Behaviour::server_error())
        .set_default(Behaviour::answer(r#"{"result":0.25,"steps":[]}"#));
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let resolved = resolve(&registry, &score_model(json!({})));
    let outcome = grade_one(&resolved, &registry, "4").await;
    assert_eq!(graded(&outcome).score, 0.25);
    assert_eq!(graded(&outcome).passed, Some(false));
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn a_stalled_call_times_out_for_its_row_while_the_run_goes_on() {
    let fake = FakeModel::start().expect("fake server");
    fake.push(Behaviour::Stall)
        .set_default(Behaviour::answer(r#"{"result":1,"steps":[]}"#));
    let settings = LlmSettings {
        timeout_per_call: Duration::from_secs(1),
        ..settings_for(&fake, 8)
    };
    let registry = registry(Some(settings)).await;
    let resolved = resolve(&registry, &score_model(json!({})));
    let rows: Vec<_> = (0..4).map(|i| row(&format!("a{i}"))).collect();
    let (reports, summary) = grade_all(&resolved, &registry, &LlmRun::unlimited(), &rows).await;
    assert_eq!(summary.rows, 4);
    assert_eq!(summary.graded, 3, "{reports:?}");
    let timed_out: Vec<_> = reports
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Graded { .. }))
        .collect();
    assert_eq!(timed_out.len(), 1);
    let message = failed_message(&timed_out[0].outcome);
    assert!(message.contains("timed out"), "{message}");
}

#[tokio::test]
async fn a_spent_budget_ends_the_run_cleanly_and_stops_calling_the_model() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_usage(UsageMode::Fixed(10, 5))
        .set_default(Behaviour::answer(r#"{"result":1,"steps":[]}"#));
    // One call at a time, so exactly two calls fit in 30 tokens.
    let registry = registry(Some(settings_for(&fake, 1))).await;
    let resolved = resolve(&registry, &score_model(json!({})));
    let run = LlmRun::new(Some(30));
    let rows: Vec<_> = (0..10).map(|i| row(&format!("r{i}"))).collect();
    let (reports, summary) = grade_all(&resolved, &registry, &run, &rows).await;
    assert_eq!(summary.graded, 2, "{reports:?}");
    assert_eq!(
        summary.errors.get("budget_exhausted"),
        Some(&8),
        "{summary:?}"
    );
    for report in reports.iter().filter(|r| r.outcome.score().is_none()) {
        let Outcome::BudgetExhausted { message } = &report.outcome else {
            panic!("expected budget_exhausted, got {:?}", report.outcome);
        };
        assert!(message.contains("budget"), "{message}");
    }
    assert_eq!(fake.calls(), 2);
    assert_eq!(run.budget().used(), 30);
    assert_eq!((summary.prompt_tokens, summary.completion_tokens), (20, 10));

    // More rows in the same run: none of them reaches the server.
    let (more, _) = grade_all(&resolved, &registry, &run, &rows[..3]).await;
    assert!(
        more.iter()
            .all(|r| r.outcome.kind_name() == "budget_exhausted")
    );
    assert_eq!(fake.calls(), 2, "the call count stopped growing");
}

#[tokio::test]
async fn label_model_passes_fails_and_refuses_unknown_labels() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::answer_with(|request| {
        let label = match last_user_message(request).unwrap_or_default() {
            "Classify: great" => "positive",
            "Classify: meh" => "neutral",
            _ => "ecstatic",
        };
        json!({ "label": label }).to_string()
    }));
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let resolved = resolve(&registry, &label_model());

    let pass = grade_one(&resolved, &registry, "great").await;
    let grade = graded(&pass);
    assert_eq!((grade.score, grade.passed), (1.0, Some(true)));
    assert_eq!(grade.label.as_deref(), Some("positive"));
    let fail = grade_one(&resolved, &registry, "meh").await;
    let grade = graded(&fail);
    assert_eq!((grade.score, grade.passed), (0.0, Some(false)));
    assert_eq!(grade.label.as_deref(), Some("neutral"));
    let unknown = grade_one(&resolved, &registry, "wow").await;
    let grade = graded(&unknown);
    assert_eq!((grade.score, grade.passed), (0.0, Some(false)));
    assert!(
        grade
            .reasoning
            .clone()
            .unwrap_or_default()
            .contains("not one of the labels")
    );
    let body = fake.requests()[0].json.clone().expect("JSON body");
    let schema = body["response_format"]["json_schema"].to_string();
    assert!(
        schema.contains(r#"["positive","neutral","negative"]"#),
        "{schema}"
    );
}

#[tokio::test]
async fn usage_is_recorded_per_row_and_adds_up_to_the_run() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_usage(UsageMode::Computed)
        .set_default(Behaviour::answer(r#"{"result":1,"steps":[]}"#));
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let resolved = resolve(&registry, &score_model(json!({})));
    let run = LlmRun::unlimited();
    let rows = vec![row("short"), row(&"long answer ".repeat(200))];
    let (reports, summary) = grade_all(&resolved, &registry, &run, &rows).await;
    let usages: Vec<_> = reports
        .iter()
        .map(|r| graded(&r.outcome).usage.expect("usage per row"))
        .collect();
    assert!(
        usages[1].prompt_tokens > usages[0].prompt_tokens + 500,
        "{usages:?}"
    );
    let total: u64 = usages
        .iter()
        .map(|u| u64::from(u.prompt_tokens) + u64::from(u.completion_tokens))
        .sum();
    assert_eq!(
        total,
        run.budget().used(),
        "rows' usage adds up to the run's"
    );
    assert_eq!(
        summary.prompt_tokens + summary.completion_tokens,
        run.budget().used()
    );
    let json = serde_json::to_value(&reports[0]).expect("serialises");
    assert_eq!(
        json["grade"]["usage"]["prompt_tokens"],
        usages[0].prompt_tokens
    );
}

#[tokio::test]
async fn the_concurrency_limit_of_the_client_holds_across_a_run() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_latency(Duration::from_millis(100))
        .set_default(Behaviour::answer(r#"{"result":1,"steps":[]}"#));
    let registry = registry(Some(settings_for(&fake, 3))).await;
    let resolved = resolve(&registry, &score_model(json!({})));
    let rows: Vec<_> = (0..12).map(|i| row(&format!("c{i}"))).collect();
    let started = Instant::now();
    let (_, summary) = grade_all(&resolved, &registry, &LlmRun::unlimited(), &rows).await;
    assert_eq!(summary.graded, 12);
    assert!(
        fake.max_in_flight() <= 3,
        "{} in flight",
        fake.max_in_flight()
    );
    assert!(
        fake.max_in_flight() >= 2,
        "rows were not graded concurrently"
    );
    // 12 calls of 100 ms, 3 at a time, take at least 4 rounds.
    assert!(started.elapsed() >= Duration::from_millis(390));
}

#[tokio::test]
async fn cosine_similarity_embeds_input_and_reference_through_the_host() {
    let fake = FakeModel::start().expect("fake server");
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let definition = json!({
        "type": "text_similarity",
        "name": "close_enough",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}",
        "evaluation_metric": "cosine",
        "pass_threshold": 0.8
    });
    let resolved = resolve(&registry, &definition);
    let cases = [
        ("the cat sat on the mat", "the cat sat on the mat"),
        ("the cat sat on the mat", "a cat sat on a mat"),
        ("the cat sat on the mat", "quantum chromodynamics"),
    ];
    for (output, reference) in cases {
        let sample = json!({ "output_text": output }).to_string();
        let item = json!({ "reference": reference }).to_string();
        let outcome = resolved.grade(registry.runtime(), &sample, &item).await;
        let (a, b) = (embedding_for(output), embedding_for(reference));
        let dot: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let expected = dot / (norm(&a) * norm(&b));
        let grade = graded(&outcome);
        assert!(
            (grade.score - expected).abs() < 1e-5,
            "{output} / {reference}: {} vs {expected}",
            grade.score
        );
        assert_eq!(grade.passed, Some(expected >= 0.8));
    }
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.path == "/v1/embeddings"));
    assert_eq!(
        requests[0].json.as_ref().map(|j| j["input"].clone()),
        Some(json!([cases[0].0, cases[0].1]))
    );
}

#[tokio::test]
async fn without_an_endpoint_model_graders_say_not_configured() {
    let registry = registry(None).await;
    for definition in [
        score_model(json!({})),
        label_model(),
        json!({"type":"text_similarity","name":"c","input":"{{sample.output_text}}","reference":"x","evaluation_metric":"cosine"}),
    ] {
        let resolved = resolve(&registry, &definition);
        let outcome = grade_one(&resolved, &registry, "4").await;
        let message = failed_message(&outcome);
        assert!(
            message.contains("not configured"),
            "{definition}: {message}"
        );
    }
}

#[tokio::test]
async fn a_named_endpoint_in_the_definition_selects_that_endpoint() {
    let default = FakeModel::start().expect("fake server");
    let named = FakeModel::start().expect("fake server");
    named.set_default(Behaviour::answer(r#"{"result":0.75,"steps":[]}"#));
    let mut settings = settings_for(&default, 8);
    settings.endpoints.insert(
        "judges".into(),
        EndpointSettings::new(&named.base_url(), None).expect("valid URL"),
    );
    let registry = registry(Some(settings)).await;
    let resolved = resolve(&registry, &score_model(json!({"endpoint": "judges"})));
    let outcome = grade_one(&resolved, &registry, "4").await;
    assert_eq!(graded(&outcome).score, 0.75);
    assert_eq!((default.calls(), named.calls()), (0, 1));
    assert_eq!(
        named.requests()[0].authorization,
        None,
        "the default key stays home"
    );

    let unknown = resolve(&registry, &score_model(json!({"endpoint": "nowhere"})));
    let outcome = grade_one(&unknown, &registry, "4").await;
    assert!(failed_message(&outcome).contains("not configured"));
}

#[tokio::test]
async fn multi_graders_combine_model_and_pure_graders_and_sum_usage() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_usage(UsageMode::Fixed(7, 3))
        .set_default(Behaviour::answer_with(|request| {
            if request["response_format"].to_string().contains("label") {
                json!({"label": "positive"}).to_string()
            } else {
                r#"{"result":0.5,"steps":[]}"#.to_string()
            }
        }));
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let definition = json!({
        "type": "multi",
        "name": "blend",
        "graders": {
            "score": score_model(json!({})),
            "tone": label_model(),
            "exact": {"type":"string_check","name":"e","input":"{{sample.output_text}}","reference":"4","operation":"eq"}
        },
        "calculate_output": "(score + tone + exact) / 3"
    });
    let resolved = resolve(&registry, &definition);
    let outcome = grade_one(&resolved, &registry, "4").await;
    let grade = graded(&outcome);
    assert!((grade.score - 2.5 / 3.0).abs() < 1e-9, "{}", grade.score);
    let usage = grade.usage.expect("summed usage");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (14, 6));
}

#[tokio::test]
async fn model_graders_are_model_grader_world_and_the_pure_builtins_stay_pure() {
    let registry = registry(None).await;
    let listing = registry.list();
    let world = |name: &str| {
        listing
            .components
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.world)
            .unwrap_or_else(|| panic!("{name} is not loaded: {:?}", listing.components))
    };
    for pure in [
        "string-check",
        "text-similarity",
        "files-match",
        "diff-valid",
    ] {
        assert_eq!(world(pure), World::Grader, "{pure} imports llm");
    }
    for model in ["score-model", "label-model", "cosine-similarity"] {
        assert_eq!(world(model), World::ModelGrader, "{model}");
    }
    let kinds: Vec<(&str, bool)> = listing
        .definitions
        .iter()
        .map(|d| (d.kind, d.available))
        .collect();
    assert!(kinds.contains(&("score_model", true)), "{kinds:?}");
    assert!(kinds.contains(&("label_model", true)), "{kinds:?}");
}

#[tokio::test]
async fn the_seeded_model_definitions_pass_their_components_validation_and_grade() {
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::answer_with(|request| {
        if request["response_format"].to_string().contains("label") {
            json!({"label": "good"}).to_string()
        } else {
            r#"{"steps":[{"description":"coverage","conclusion":"all requirements"}],"result":4}"#
                .to_string()
        }
    }));
    let registry = registry(Some(settings_for(&fake, 8))).await;
    let item =
        json!({"task_title": "Add a health check", "task_description": "Expose GET /healthz"})
            .to_string();
    for (_, name, value) in flywheel::grading::seeds::model_seed_definitions() {
        let definition = Definition::parse(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
        definition
            .validate(&registry)
            .await
            .unwrap_or_else(|e| panic!("{name} refused by its component: {e}"));
        let resolved = definition.resolve(&registry).expect("resolves");
        let sample = json!({"output_text": "1. add route\n2. test it"}).to_string();
        let outcome = resolved.grade(registry.runtime(), &sample, &item).await;
        let grade = graded(&outcome);
        assert_eq!(grade.passed, Some(true), "{name}: {grade:?}");
    }
    let bodies: Vec<String> = fake.requests().iter().map(|r| r.body.clone()).collect();
    assert!(
        bodies.iter().all(|b| b.contains("Add a health check")),
        "templates rendered"
    );
}

#[tokio::test]
async fn definitions_with_bad_model_configs_are_refused_by_field() {
    let registry = registry(None).await;
    let cases = [
        (
            label_model_with(json!({"passing_labels": ["ecstatic"]})),
            "passing_labels[0]",
        ),
        (score_model(json!({"range": [5, 1]})), "range"),
        (score_model(json!({"input": []})), "input"),
        (
            score_model(json!({"sampling_params": {"top_p": 3}})),
            "top_p",
        ),
    ];
    for (definition, field) in cases {
        let parsed = Definition::parse(&definition).expect("the shape is valid");
        let error = parsed.validate(&registry).await.expect_err("refused");
        assert_eq!(error.field, "config", "{error}");
        assert!(error.message.contains(field), "{field}: {error}");
    }
}

fn label_model_with(extra: Value) -> Value {
    let mut definition = label_model();
    if let (Some(base), Some(extra)) = (definition.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    definition
}

#[tokio::test]
async fn the_api_key_reaches_no_result_log_line_or_listing_even_when_the_server_echoes_it() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeModel::start().expect("fake server");
    // Every way a server might hand the key back: OpenAI's 401 echo, 500s and a 403 quoting it
    // (retried, so logged), a malformed body and an answer whose content holds it.
    fake.push(Behaviour::EchoKeyInError)
        .push(Behaviour::Status {
            status: 500,
            message: format!("upstream rejected Bearer {KEY}"),
        })
        .push(Behaviour::Status {
            status: 403,
            message: format!("key {KEY} has no access"),
        })
        .push(Behaviour::Malformed(format!("{{\"echo\": \"{KEY}\"")))
        .push(Behaviour::answer(format!(
            r#"{{"result":"{KEY}","steps":[{{"description":"{KEY}","conclusion":"{KEY}"}}]}}"#
        )))
        .set_default(Behaviour::EchoKeyInError);

    // The real service, configured through its settings, with the key in OPENAI_API_KEY.
    let db = TestDb::new(flywheel_e2e::Backend::Sqlite).await;
    let mut settings = db.settings();
    let args = flywheel::config::ConfigArgs {
        database_url: Some(db.url.as_str().into()),
        bind: Some("127.0.0.1:0".to_owned()),
        data_dir: Some(db.dir.path().display().to_string()),
        tokens: Some(flywheel_e2e::TOKENS.into()),
        openai_base_url: Some(fake.base_url()),
        openai_api_key: Some(KEY.into()),
        llm_max_retries: Some("1".into()),
        ..flywheel::config::ConfigArgs::default()
    };
    settings = flywheel::config::Settings::from_args(&args).unwrap_or(settings);
    assert!(
        settings.llm.default_endpoint.is_some(),
        "the endpoint is configured"
    );
    let app = TestApp::start_with(settings).await;
    let registry = app.server.state.graders.clone();
    crate::graders_support::wait_for(Duration::from_secs(60), || {
        registry.get("score-model").is_some() && registry.get("label-model").is_some()
    })
    .await
    .expect("the built-ins load");

    let mut everything = String::new();
    for definition in [score_model(json!({})), label_model()] {
        let resolved = resolve(&registry, &definition);
        let rows: Vec<_> = (0..4).map(|i| row(&format!("k{i}"))).collect();
        let (reports, summary) =
            grade_all(&resolved, &registry, &registry.runtime().new_run(), &rows).await;
        for report in &reports {
            everything.push_str(&serde_json::to_string(report).expect("serialises"));
            everything.push_str(&format!("{:?}", report.outcome));
        }
        everything.push_str(&format!("{summary:?}"));
    }
    let listing = app.get_ok("/api/graders", ADMIN_TOKEN).await;
    everything.push_str(&listing.to_string());
    everything.push_str(&format!("{:?}", app.server.state.settings));
    everything.push_str(&logs.text());

    assert!(
        fake.calls() >= 8,
        "the rows reached the server ({})",
        fake.calls()
    );
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {KEY}"))),
        "the key was really sent to the endpoint"
    );
    assert!(
        everything.contains("***"),
        "echoed keys were redacted, not dropped"
    );
    assert!(
        !everything.contains(KEY),
        "the key leaked: {}",
        &everything[everything.find(KEY).map_or(0, |i| i.saturating_sub(200))..]
    );
}

/// An endpoint that echoes the key in every field of its answer (content, model) and in its
/// errors: the guest sees `***` in each, never the key.
#[tokio::test]
async fn no_field_of_an_answer_or_error_hands_the_key_to_a_component() {
    use flywheel::graders::cache::CompileCache;
    use flywheel::graders::component::{self, GraderSource};

    let fake = FakeModel::start().expect("fake server");
    fake.push(Behaviour::Malformed(format!(
        r#"{{"id":"x","object":"chat.completion","created":0,"model":"m-{KEY}","choices":[{{"index":0,"message":{{"role":"assistant","content":"c-{KEY}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}}}"#
    )))
    .push(Behaviour::Status {
        status: 400,
        message: format!("bad request from {KEY}"),
    })
    .push(Behaviour::EchoKeyInError)
    .set_default(Behaviour::EchoKeyInError);
    let runtime = GraderRuntime::new(RuntimeOptions {
        llm: Some(LlmClient::new(settings_for(&fake, 1)).expect("valid settings")),
        ..RuntimeOptions::default()
    })
    .expect("the grader engine builds");
    let cache = CompileCache::new(runtime.engine(), Some(cache_dir()));
    let grader = component::load(
        &runtime,
        &cache,
        "asks-model",
        Arc::new(crate::graders_support::bytes(
            crate::graders_support::components::ASKS_MODEL,
        )),
        GraderSource::Builtin,
        1,
    )
    .await
    .expect("the component loads");

    let answered = grader.grade(&runtime, "{}", "hello", "{}").await;
    let reasoning = match &answered {
        Outcome::Graded { grade } => grade.reasoning.clone().unwrap_or_default(),
        other => panic!("expected a grade, got {other:?}"),
    };
    assert_eq!(reasoning, "content=c-*** model=m-***", "{answered:?}");
    for _ in 0..2 {
        let failed = grader.grade(&runtime, "{}", "hello", "{}").await;
        let text = format!("{failed:?}");
        assert!(
            matches!(failed, Outcome::GraderError { .. }),
            "expected the error to reach the guest: {text}"
        );
        assert!(
            text.contains("***"),
            "the key was redacted, not dropped: {text}"
        );
        assert!(!text.contains(KEY), "the key reached the guest: {text}");
    }
}
