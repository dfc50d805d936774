//! `flywheel eval` as a process in database mode against the fake model server on 127.0.0.1:
//! the evaluation runs in the command's own process, prints the comparison table, a rerun is
//! answered from the cache (`--json`: the API's shape), and a bad request fails with its reason.

mod common;

use std::time::Duration;

use common::{fails, flywheel, ok};
use fake_model::{Behaviour, FakeModel, last_user_message};
use flywheel::prompts::{CreatePrompt, CreateVersion, PromptRegistry};
use flywheel::store::{
    DatasetSource, NewDatasetRow, NewDatasetVersion, NewGraderDefinition, Split, open_store,
};
use serde_json::{Value, json};

/// A key that would only show up in the output if something leaked it.
const KEY: &str = "sk-flywheel-eval-cli-key-9d2c4e6a1b";

/// Prompt `qa` (v1 quick, v2 careful), an exact-match grader and a 5-row dataset, written
/// through the library on the database the command will open.
fn prepare(url: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let store = open_store(url).await.expect("open the database");
        let registry = PromptRegistry::new(store.clone(), Duration::from_secs(1));
        registry
            .create_prompt(
                CreatePrompt {
                    id: "qa".into(),
                    description: String::new(),
                    variables: None,
                    failure_modes: Vec::new(),
                    content: "Quick: {{question}}".into(),
                },
                "test",
            )
            .await
            .expect("create qa");
        registry
            .create_version(
                "qa",
                CreateVersion {
                    content: "Careful: {{question}}".into(),
                    notes: None,
                    parent_version: None,
                },
                "test",
            )
            .await
            .expect("version 2");
        store
            .put_grader(NewGraderDefinition {
                prompt_id: "qa".into(),
                name: "exact".into(),
                definition: json!({"type": "string_check", "name": "exact", "operation": "eq",
                    "input": "{{sample.output_text}}", "reference": "{{item.expected}}"}),
                enabled: true,
                created_by: None,
            })
            .await
            .expect("grader");
        let rows = (0..5)
            .map(|i| NewDatasetRow {
                id: uuid::Uuid::now_v7(),
                item: json!({"question": format!("q{i}"), "expected": format!("ANSWER-q{i}")})
                    .as_object()
                    .cloned()
                    .expect("an object"),
                sample: None,
                split: Split::Train,
                run_id: None,
            })
            .collect();
        store
            .create_dataset_version(&NewDatasetVersion {
                name: "qa-set".into(),
                prompt_id: "qa".into(),
                source: DatasetSource::Rows,
                filter: None,
                validation_fraction: 0.0,
                rows,
                created_by: None,
            })
            .await
            .expect("dataset");
    });
}

#[test]
fn eval_compares_versions_in_database_mode_and_a_rerun_is_answered_from_the_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("flywheel.db").display());
    prepare(&url);
    let fake = FakeModel::start().expect("fake server");
    fake.set_default(Behaviour::answer_with(|body| {
        match last_user_message(body).and_then(|m| m.strip_prefix("Careful: ")) {
            Some(question) => format!("ANSWER-{question}"),
            None => "dunno".to_owned(),
        }
    }));
    let eval = |extra: &[&str]| {
        let mut cmd = flywheel(dir.path());
        cmd.env("DATABASE_URL", &url)
            .env("OPENAI_BASE_URL", fake.base_url())
            .env("OPENAI_API_KEY", KEY)
            .args(["eval", "qa", "--versions", "1,2", "--dataset", "qa-set"])
            .args(extra);
        cmd
    };

    let table = ok(&mut eval(&[]));
    assert!(
        table.contains("status completed · 10/10 answers · 10 model calls · 0 from the cache"),
        "{table}"
    );
    let v1 = table
        .lines()
        .find(|l| l.trim_start().starts_with("v1 "))
        .expect("a v1 row");
    assert!(v1.contains("0.0%"), "{table}");
    let v2 = table
        .lines()
        .find(|l| l.trim_start().starts_with("v2 "))
        .expect("a v2 row");
    assert!(v2.contains("100.0%"), "{table}");
    assert!(
        table.contains("v2 − v1 exact: +1.000 on 5 pairs"),
        "{table}"
    );
    assert!(table.contains("fail→pass 5 · pass→fail 0"), "{table}");
    assert_eq!(fake.calls(), 10);

    let again = ok(&mut eval(&["--json"]));
    let json: Value = serde_json::from_str(&again).expect("JSON output");
    assert_eq!(json["status"], "completed");
    assert_eq!(
        (json["modelCalls"].as_i64(), json["cachedAnswers"].as_i64()),
        (Some(0), Some(10))
    );
    assert_eq!(json["results"]["pairs"][0]["failToPass"], 5);
    assert_eq!(fake.calls(), 10, "the rerun called the model");
    assert!(!table.contains(KEY) && !again.contains(KEY));

    // --show reads it back; a bad request fails with its reason and queues nothing.
    let id = json["id"].as_str().expect("id");
    let shown = ok(flywheel(dir.path())
        .env("DATABASE_URL", &url)
        .args(["eval", "--show", id, "--json"]));
    let shown: Value = serde_json::from_str(&shown).expect("JSON output");
    assert_eq!(shown["results"], json["results"]);
    let error = fails(&mut {
        let mut cmd = flywheel(dir.path());
        cmd.env("DATABASE_URL", &url)
            .env("OPENAI_BASE_URL", fake.base_url())
            .args(["eval", "qa", "--versions", "1,9", "--dataset", "qa-set"]);
        cmd
    });
    assert!(error.contains("version 9 of prompt qa"), "{error}");
}
