//! `POST /api/prompts/{id}/export` end to end on both backends: JSONL lines that match the
//! stored runs, annotations in or out, CSV that a CSV reader parses back (quotes, commas and
//! newlines in the values), the `minRows` floor, a dataset version as the source, and the
//! attachment headers; secrets redacted in every format and source, look-alikes kept.

use flywheel_e2e::{AGENT_TOKEN, ANNOTATOR_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

async fn export(app: &TestApp, prompt: &str, body: Value) -> flywheel_e2e::Answer {
    app.send(
        &Req::post(
            format!("/api/prompts/{prompt}/export"),
            Some(ANNOTATOR_TOKEN),
        )
        .json(body.to_string()),
    )
    .await
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// A CSV reader (RFC 4180: quoted fields with `""` for a quote, CRLF or LF records), written
/// apart from the server's writer so the test does not read the output with the code that made
/// it.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            other => field.push(other),
        }
    }
    assert!(!quoted, "unterminated quoted field");
    assert!(
        field.is_empty() && record.is_empty(),
        "last record lacks its line end"
    );
    records
}

async fn exports_stream_runs_and_datasets(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    // No grader runs in the background, so the rows are exactly what this test stored.
    app.disable_graders("planner").await;
    let tricky = "fix \"parser\", then\nship";
    let runs = json!({"runs": [
        {"promptId": "planner", "taskId": "e-1", "input": {"task_title": tricky, "repo": "r1"}, "output": "plan, with comma"},
        {"promptId": "planner", "taskId": "e-2", "input": {"task_title": "two", "files": 3}, "output": "plan 2"},
        {"promptId": "planner", "taskId": "e-3", "input": {"task_title": "three"}, "output": " padded "},
        {"promptId": "coder", "taskId": "e-4", "input": {"task_title": "other prompt"}, "output": "code"},
    ]});
    let recorded = app
        .send(&Req::post("/api/runs", Some(AGENT_TOKEN)).json(runs.to_string()))
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
    let ids: Vec<String> = recorded.json["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    for (id, body) in [
        (
            &ids[0],
            json!({"rating": "bad", "failureMode": "wrong_files", "outputFeedback": "missed \"b.rs\", again"}),
        ),
        (&ids[1], json!({"rating": "good"})),
    ] {
        let answer = app
            .send(
                &Req::new(
                    Method::PUT,
                    format!("/api/runs/{id}/annotation"),
                    Some(ANNOTATOR_TOKEN),
                )
                .json(body.to_string()),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }

    // minRows counts annotated rows: 2 exist.
    let short = export(
        &app,
        "planner",
        json!({"format": "openai-jsonl", "minRows": 3}),
    )
    .await;
    assert_eq!(short.status, StatusCode::CONFLICT, "{}", short.text);
    assert_eq!(short.error_code(), Some("not_enough_rows"));
    assert_eq!(
        short.json["error"]["details"],
        json!({"found": 2, "required": 3})
    );
    let default_floor = app.server.state.settings.min_samples_for_optimization;
    let by_default = export(&app, "planner", json!({"format": "csv"})).await;
    if default_floor > 2 {
        assert_eq!(
            by_default.status,
            StatusCode::CONFLICT,
            "{}",
            by_default.text
        );
        assert_eq!(
            by_default.json["error"]["details"]["required"],
            default_floor
        );
    }

    // JSONL: a line per planner production run, newest first, as the runs API shows them.
    let answer = export(
        &app,
        "planner",
        json!({"format": "openai-jsonl", "minRows": 2}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.content_type, "application/x-ndjson");
    let lines = jsonl(&answer.text);
    let listed = app.get_ok("/api/runs?promptId=planner", READ_TOKEN).await;
    let listed = listed["items"].as_array().expect("items").clone();
    assert_eq!(lines.len(), 3);
    assert_eq!(listed.len(), 3);
    for (line, run) in lines.iter().zip(&listed) {
        let mut item: Map<String, Value> = run["input"].as_object().expect("input").clone();
        let annotation = &run["annotation"];
        for (key, field) in [
            ("rating", "rating"),
            ("output_feedback", "outputFeedback"),
            ("failure_mode", "failureMode"),
        ] {
            if !annotation[field].is_null() {
                item.insert(key.to_owned(), annotation[field].clone());
            }
        }
        assert_eq!(
            line,
            &json!({"item": item, "sample": {"output_text": run["output"]}})
        );
    }
    assert_eq!(
        lines[2]["item"],
        json!({"task_title": tricky, "repo": "r1", "rating": "bad", "failure_mode": "wrong_files", "output_feedback": "missed \"b.rs\", again"})
    );

    // Without annotations, items hold only the inputs; the floor still counts annotated runs.
    let bare = export(
        &app,
        "planner",
        json!({"format": "openai-jsonl", "minRows": 2, "includeAnnotations": false, "rating": "bad"}),
    )
    .await;
    assert_eq!(
        bare.status,
        StatusCode::CONFLICT,
        "one bad run: {}",
        bare.text
    );
    let bare = export(
        &app,
        "planner",
        json!({"format": "openai-jsonl", "minRows": 0, "includeAnnotations": false}),
    )
    .await;
    let items: Vec<Value> = jsonl(&bare.text)
        .into_iter()
        .map(|l| l["item"].clone())
        .collect();
    let inputs: Vec<Value> = listed.iter().map(|r| r["input"].clone()).collect();
    assert_eq!(items, inputs);

    // CSV: the header, then a record per run that a CSV reader gives back intact.
    let csv = app
        .http
        .post(format!("{}/api/prompts/planner/export", app.base))
        .bearer_auth(ANNOTATOR_TOKEN)
        .json(&json!({"format": "csv", "minRows": 1}))
        .send()
        .await
        .expect("export");
    assert_eq!(csv.status(), StatusCode::OK);
    let header = |name: &str| {
        csv.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        header("content-disposition"),
        "attachment; filename=\"planner.csv\""
    );
    let text = csv.text().await.expect("body");
    let records = parse_csv(&text);
    assert_eq!(
        records[0],
        [
            "files",
            "repo",
            "task_title",
            "output",
            "rating",
            "feedback",
            "failure_mode"
        ]
    );
    // Same order as the JSONL (newest first); compared as sets so a tie of ids cannot matter.
    let mut rows = records[1..].to_vec();
    rows.sort();
    let mut expected = vec![
        vec!["", "", "three", " padded ", "", "", ""],
        vec!["3", "", "two", "plan 2", "good", "", ""],
        vec![
            "",
            "r1",
            tricky,
            "plan, with comma",
            "bad",
            "missed \"b.rs\", again",
            "wrong_files",
        ],
    ];
    expected.sort();
    assert_eq!(rows, expected);

    // A dataset version as the source: its rows as stored.
    let upload = "{\"item\": {\"q\": \"2+2\", \"rating\": \"good\"}, \"sample\": {\"output_text\": \"4\"}}\n\
                  {\"item\": {\"q\": \"capital, of France\"}}\n";
    for _ in 0..2 {
        let created = app
            .send(&Req::post("/api/datasets", Some(ANNOTATOR_TOKEN)).json(
                json!({"promptId": "planner", "name": "golden", "jsonl": upload}).to_string(),
            ))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }
    let from_dataset = export(
        &app,
        "planner",
        json!({"format": "openai-jsonl", "dataset": "golden", "version": 1, "minRows": 1}),
    )
    .await;
    assert_eq!(from_dataset.status, StatusCode::OK, "{}", from_dataset.text);
    assert_eq!(
        jsonl(&from_dataset.text),
        [
            json!({"item": {"q": "2+2", "rating": "good"}, "sample": {"output_text": "4"}}),
            json!({"item": {"q": "capital, of France"}, "sample": null}),
        ]
    );
    let dataset_csv = export(
        &app,
        "planner",
        json!({"format": "csv", "dataset": "golden", "minRows": 0}),
    )
    .await;
    assert_eq!(
        parse_csv(&dataset_csv.text),
        [
            vec!["q", "output", "rating", "feedback", "failure_mode"],
            vec!["2+2", "4", "good", "", ""],
            vec!["capital, of France", "", "", "", ""],
        ]
    );
    let short = export(
        &app,
        "planner",
        json!({"format": "csv", "dataset": "golden", "minRows": 2}),
    )
    .await;
    assert_eq!(
        short.json["error"]["details"],
        json!({"found": 1, "required": 2})
    );
    let missing = export(
        &app,
        "planner",
        json!({"format": "csv", "dataset": "golden", "version": 9, "minRows": 0}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), Some("dataset_version_not_found"));
    let unknown = export(
        &app,
        "planner",
        json!({"format": "csv", "dataset": "nope", "minRows": 0}),
    )
    .await;
    assert_eq!(unknown.error_code(), Some("dataset_not_found"));
    let foreign = export(
        &app,
        "coder",
        json!({"format": "csv", "dataset": "golden", "minRows": 0}),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::CONFLICT);
    assert_eq!(foreign.error_code(), Some("invalid_state"));

    // More rows than a page (500): every run once across the page boundaries;
    // every dataset row once, in order.
    let bulk: Vec<Value> = (0..1000)
        .map(|i| json!({"promptId": "planner", "taskId": format!("bulk-{i:04}"), "input": {"n": i}, "output": "o"}))
        .collect();
    let recorded = app
        .send(&Req::post("/api/runs", Some(AGENT_TOKEN)).json(json!({"runs": bulk}).to_string()))
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
    let all = export(
        &app,
        "planner",
        json!({"format": "openai-jsonl", "minRows": 0}),
    )
    .await;
    let lines = jsonl(&all.text);
    assert_eq!(lines.len(), 1003);
    let mut seen: Vec<i64> = lines
        .iter()
        .filter_map(|l| l["item"]["n"].as_i64())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..1000).collect::<Vec<i64>>());
    let csv = parse_csv(
        &export(&app, "planner", json!({"format": "csv", "minRows": 0}))
            .await
            .text,
    );
    assert_eq!(csv.len(), 1004, "a header and a record per run");
    let many: String = (0..1201)
        .map(|i| format!("{{\"item\": {{\"i\": {i}}}}}\n"))
        .collect();
    let created = app
        .send(
            &Req::post("/api/datasets", Some(ANNOTATOR_TOKEN))
                .json(json!({"promptId": "planner", "name": "many", "jsonl": many}).to_string()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let rows = export(
        &app,
        "planner",
        json!({"format": "openai-jsonl", "dataset": "many", "minRows": 0}),
    )
    .await;
    let order: Vec<i64> = jsonl(&rows.text)
        .iter()
        .filter_map(|l| l["item"]["i"].as_i64())
        .collect();
    assert_eq!(order, (0..1201).collect::<Vec<i64>>());

    exports_redact_secrets(&app).await;
}

/// Secrets in inputs, outputs, feedback and dataset rows: gone from JSONL and CSV, replaced by
/// `[REDACTED:<kind>]`; look-alikes written as they are. Uses `coder`, which holds one run.
async fn exports_redact_secrets(app: &TestApp) {
    // No grader annotates these runs behind the test's back (rows are found by content too).
    app.disable_graders("coder").await;
    let github = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    let openai = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7CD0ef";
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWhlcmU";
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----";
    let secrets = [
        github,
        openai,
        jwt,
        "s3cr3t-P4ss",
        "MC4CAQAwBQYDK2VwBCIEIA==",
        "AKIAIOSFODNN7EXAMPLE",
    ];
    let look_alikes = [
        "a risk-based plan",
        "ghp_x",
        "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "https://example.com/user@host",
        "ssh://git@github.com/o/r.git",
        "send a password reset",
    ];
    let runs = json!({"runs": [
        {"promptId": "coder", "taskId": "s-1",
         "input": {"plan": format!("push with {github}, {}", look_alikes[0]), "env": format!("DATABASE_URL=postgres://app:s3cr3t-P4ss@db:5432/x {}", look_alikes[1])},
         "output": format!("export OPENAI_API_KEY={openai}\n{pem}\n{}", look_alikes[2])},
        {"promptId": "coder", "taskId": "s-2",
         "input": {"plan": format!("{} and {}", look_alikes[3], look_alikes[4]), "env": "AKIAIOSFODNN7EXAMPLE"},
         "output": format!("curl -H 'Authorization: Bearer {jwt}'; {}", look_alikes[5])},
    ]});
    let recorded = app
        .send(&Req::post("/api/runs", Some(AGENT_TOKEN)).json(runs.to_string()))
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
    let first = recorded.json["runs"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let annotated = app
        .send(
            &Req::new(
                Method::PUT,
                format!("/api/runs/{first}/annotation"),
                Some(ANNOTATOR_TOKEN),
            )
            .json(
                json!({"rating": "bad", "outputFeedback": format!("leaked {openai}")}).to_string(),
            ),
        )
        .await;
    assert_eq!(annotated.status, StatusCode::OK, "{}", annotated.text);

    let assert_clean = |text: &str, what: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
        }
        for kept in look_alikes {
            assert!(text.contains(kept), "{what} lost {kept:?}: {text}");
        }
    };
    for format in ["openai-jsonl", "csv"] {
        let answer = app
            .http
            .post(format!("{}/api/prompts/coder/export", app.base))
            .bearer_auth(ANNOTATOR_TOKEN)
            .json(&json!({"format": format, "minRows": 0}))
            .send()
            .await
            .expect("export");
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(
            answer
                .headers()
                .get("x-flywheel-redaction")
                .and_then(|v| v.to_str().ok()),
            Some("on; patterns=1")
        );
        let text = answer.text().await.expect("body");
        assert_clean(&text, format);
        if format == "csv" {
            let records = parse_csv(&text);
            // coder's graders may have scored its runs by now: their columns come after these.
            assert_eq!(
                records[0][..7],
                [
                    "env",
                    "plan",
                    "task_title",
                    "output",
                    "rating",
                    "feedback",
                    "failure_mode"
                ]
            );
            let leaked = records
                .iter()
                .find(|r| r[1].starts_with("push with"))
                .expect("the annotated run");
            assert_eq!(leaked[5], "leaked [REDACTED:openai_key]");
            assert_eq!(
                leaked[0],
                "DATABASE_URL=postgres://app:[REDACTED:url_password]@db:5432/x ghp_x"
            );
        } else {
            let lines = jsonl(&text);
            let line = lines
                .iter()
                .find(|l| {
                    l["item"]["plan"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("push with"))
                })
                .expect("the annotated run");
            assert_eq!(
                line["item"]["plan"],
                format!("push with [REDACTED:github_token], {}", look_alikes[0])
            );
            assert_eq!(
                line["sample"]["output_text"],
                format!(
                    "export OPENAI_API_KEY=[REDACTED:openai_key]\n[REDACTED:private_key]\n{}",
                    look_alikes[2]
                )
            );
            assert_eq!(
                line["item"]["output_feedback"],
                "leaked [REDACTED:openai_key]"
            );
            assert!(text.contains("Bearer [REDACTED:jwt]"), "{text}");
            assert!(
                text.contains("\"env\":\"[REDACTED:aws_access_key_id]\""),
                "{text}"
            );
        }
    }

    // Dataset rows are redacted the same way; their stored copy is not changed.
    let upload = format!(
        "{}\n",
        json!({"item": {"q": format!("token {github}"), "note": look_alikes[5]}, "sample": {"output_text": jwt}})
    );
    let created = app
        .send(
            &Req::post("/api/datasets", Some(ANNOTATOR_TOKEN))
                .json(json!({"promptId": "coder", "name": "leaky", "jsonl": upload}).to_string()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let rows = export(
        app,
        "coder",
        json!({"format": "openai-jsonl", "dataset": "leaky", "minRows": 0}),
    )
    .await;
    assert_eq!(
        jsonl(&rows.text),
        [
            json!({"item": {"q": "token [REDACTED:github_token]", "note": look_alikes[5]}, "sample": {"output_text": "[REDACTED:jwt]"}})
        ]
    );
    let stored = app.get_ok("/api/datasets/leaky/rows", READ_TOKEN).await;
    assert_eq!(
        stored["items"][0]["item"]["q"],
        format!("token {github}"),
        "{stored}"
    );
}

#[tokio::test]
async fn export_on_sqlite() {
    exports_stream_runs_and_datasets(Backend::Sqlite).await;
}

#[tokio::test]
async fn export_on_postgres() {
    exports_stream_runs_and_datasets(Backend::Postgres).await;
}
