//! Conformance of the runs domain: idempotent and all-or-nothing recording, the default version,
//! outcomes before and after their runs, per-version figures (also under concurrent writers),
//! keyset pagination under inserts, the list filters, and the export read (`export_runs`)
//! answering what the list answers.

use std::collections::HashSet;

use chrono::Duration;
use serde_json::json;

use super::{Backend, assert_not_found};
use crate::store::testing::execute_raw;
use crate::store::{
    ExportFields, ExportRun, NewOutcome, NewRun, NewVersion, Rating, RunFilter, StoreError,
    VersionSource, now,
};

conformance!(
    recording_is_idempotent_on_prompt_task_and_attempt,
    a_batch_with_an_unknown_prompt_or_version_stores_nothing,
    the_version_defaults_to_the_active_one,
    an_outcome_before_its_run_is_applied_when_the_run_arrives,
    an_outcome_after_its_runs_updates_them_and_merges_fields,
    figures_follow_runs_and_outcomes,
    figures_are_right_under_concurrent_writers,
    keyset_pages_are_stable_under_inserts,
    list_filters_select_runs,
    a_run_reads_back_as_recorded,
    export_reads_the_runs_and_fields_list_reads,
);

fn run(prompt: &str, task: &str, attempt: i64) -> NewRun {
    NewRun {
        prompt_id: prompt.to_owned(),
        version: None,
        task_id: task.to_owned(),
        attempt,
        root_task_id: None,
        input: json!({ "task": task })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        output: format!("output of {task}#{attempt}"),
        model: Some("gpt-test".to_owned()),
        tokens_in: Some(100),
        tokens_out: Some(20),
        latency_ms: Some(5),
    }
}

fn outcome(task: &str, tests_passed: Option<bool>) -> NewOutcome {
    NewOutcome {
        task_id: task.to_owned(),
        tests_passed,
        ..NewOutcome::default()
    }
}

async fn all_runs(b: &Backend) -> Vec<crate::store::Run> {
    b.store
        .list_runs(&RunFilter::default(), 10_000)
        .await
        .unwrap()
}

async fn figures(b: &Backend, prompt: &str, version: i64) -> (i64, Option<f64>, Option<i64>) {
    let v = b.store.get_version(prompt, version).await.unwrap();
    (v.tasks_executed, v.success_rate, v.avg_tokens)
}

/// The task ids of the runs the filter selects, newest first.
async fn list_tasks(store: &dyn crate::store::Store, filter: RunFilter) -> Vec<String> {
    let runs = store.list_runs(&filter, 100).await.unwrap();
    runs.into_iter().map(|r| r.task_id).collect()
}

async fn recording_is_idempotent_on_prompt_task_and_attempt(b: &Backend) {
    let store = b.store.as_ref();
    let batch = vec![
        run("planner", "t1", 1),
        run("planner", "t1", 2),
        run("coder", "t1", 1),
    ];
    let first = store.record_runs(&batch).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|r| r.created));
    let ids: HashSet<_> = first.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 3, "three keys, three runs");

    // A retry, even with other content, stores nothing and answers the same ids.
    let mut retry = batch.clone();
    retry[0].output = "changed".to_owned();
    let second = store.record_runs(&retry).await.unwrap();
    assert_eq!(
        second.iter().map(|r| r.id).collect::<Vec<_>>(),
        first.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert!(second.iter().all(|r| !r.created));
    assert_eq!(
        store.get_run(first[0].id).await.unwrap().output.as_deref(),
        Some("output of t1#1")
    );

    // A key repeated within a batch is one run; a new key beside old ones is created.
    let mixed = vec![
        run("planner", "t2", 1),
        run("planner", "t2", 1),
        run("planner", "t1", 1),
    ];
    let third = store.record_runs(&mixed).await.unwrap();
    assert!(third[0].created);
    assert_eq!(third[1].id, third[0].id);
    assert!(!third[1].created);
    assert_eq!(third[2].id, first[0].id);
    assert!(!third[2].created);
    assert_eq!(all_runs(b).await.len(), 4);
    assert_eq!(figures(b, "planner", 1).await.0, 2, "tasks t1 and t2");
}

async fn a_batch_with_an_unknown_prompt_or_version_stores_nothing(b: &Backend) {
    let store = b.store.as_ref();
    let before = figures(b, "planner", 1).await;
    let mut bad_version = run("planner", "t3", 1);
    bad_version.version = Some(42);
    let cases = [
        (
            vec![
                run("planner", "t1", 1),
                run("zeta", "t2", 1),
                run("aardvark", "t2", 1),
            ],
            1,
            "prompt zeta",
        ),
        (
            vec![run("planner", "t1", 1), run("coder", "t2", 1), bad_version],
            2,
            "version 42 of prompt planner",
        ),
    ];
    for (batch, bad_index, what) in cases {
        match store.record_runs(&batch).await {
            Err(StoreError::InBatch { index, error }) => {
                assert_eq!(index, bad_index, "{what}");
                assert_not_found(Err::<(), _>(*error), what);
            }
            other => panic!("expected InBatch for {what}, got {other:?}"),
        }
    }
    // A value the schema refuses is refused before any write, naming its constraint.
    let mut negative = run("planner", "t4", 1);
    negative.tokens_in = Some(-1);
    match store
        .record_runs(&[run("planner", "t5", 1), negative])
        .await
    {
        Err(StoreError::InBatch { index: 1, error }) => assert!(
            matches!(*error, StoreError::Conflict { ref constraint } if constraint == "prompt_optimization_data_tokens_nonnegative"),
            "{error:?}"
        ),
        other => panic!("expected a refusal of run 1, got {other:?}"),
    }
    assert!(
        all_runs(b).await.is_empty(),
        "nothing of a refused batch is stored"
    );
    assert_eq!(figures(b, "planner", 1).await, before);
    assert!(store.record_runs(&[]).await.unwrap().is_empty());
}

async fn the_version_defaults_to_the_active_one(b: &Backend) {
    let store = b.store.as_ref();
    let first = store.record_runs(&[run("planner", "t1", 1)]).await.unwrap();
    assert_eq!(store.get_run(first[0].id).await.unwrap().version, 1);
    let v2 = store
        .create_version(NewVersion {
            prompt_id: "planner".to_owned(),
            content: "Plan {{task}} again".to_owned(),
            source: VersionSource::Manual,
            parent_version: Some(1),
            notes: None,
            created_by: Some("alice".to_owned()),
        })
        .await
        .unwrap();
    // Not active yet: still v1 by default, v2 when named.
    let mut named = run("planner", "t3", 1);
    named.version = Some(v2.version);
    let runs = store
        .record_runs(&[run("planner", "t2", 1), named])
        .await
        .unwrap();
    assert_eq!(store.get_run(runs[0].id).await.unwrap().version, 1);
    assert_eq!(store.get_run(runs[1].id).await.unwrap().version, v2.version);
    store.deploy("planner", v2.version, "alice").await.unwrap();
    let after = store.record_runs(&[run("planner", "t4", 1)]).await.unwrap();
    assert_eq!(
        store.get_run(after[0].id).await.unwrap().version,
        v2.version
    );
    assert_eq!(figures(b, "planner", 1).await.0, 2);
    assert_eq!(figures(b, "planner", v2.version).await.0, 2);
}

async fn an_outcome_before_its_run_is_applied_when_the_run_arrives(b: &Backend) {
    let store = b.store.as_ref();
    let mut early = outcome("t1", Some(false));
    early.expected_files = Some(vec!["src/a.rs".to_owned()]);
    early.failure_signature = Some("E0308".to_owned());
    assert_eq!(store.report_outcomes(&[early]).await.unwrap(), vec![0]);
    let recorded = store
        .record_runs(&[run("fixer", "t1", 1), run("fixer", "t2", 1)])
        .await
        .unwrap();
    let with = store.get_run(recorded[0].id).await.unwrap();
    let applied = with.outcome.expect("the stored outcome is applied");
    assert_eq!(applied.tests_passed, Some(false));
    assert_eq!(applied.expected_files, Some(vec!["src/a.rs".to_owned()]));
    assert_eq!(applied.failure_signature.as_deref(), Some("E0308"));
    assert_eq!(with.success, Some(false));
    let without = store.get_run(recorded[1].id).await.unwrap();
    assert!(without.outcome.is_none());
    assert_eq!(without.success, None);
    assert_eq!(figures(b, "fixer", 1).await, (2, Some(0.0), Some(120)));
}

async fn an_outcome_after_its_runs_updates_them_and_merges_fields(b: &Backend) {
    let store = b.store.as_ref();
    let recorded = store
        .record_runs(&[
            run("planner", "t1", 1),
            run("coder", "t1", 1),
            run("coder", "t1", 2),
        ])
        .await
        .unwrap();
    let mut first = outcome("t1", Some(true));
    first.pr_merged = Some(false);
    let updated = store
        .report_outcomes(&[first, outcome("ghost", None)])
        .await
        .unwrap();
    assert_eq!(updated, vec![3, 0]);
    // A later report keeps the fields it does not give.
    let mut later = outcome("t1", None);
    later.pr_merged = Some(true);
    assert_eq!(store.report_outcomes(&[later]).await.unwrap(), vec![3]);
    for r in &recorded {
        let stored = store.get_run(r.id).await.unwrap();
        let o = stored.outcome.expect("outcome applied");
        assert_eq!((o.tests_passed, o.pr_merged), (Some(true), Some(true)));
        assert_eq!(stored.success, Some(true));
    }
    // A run recorded after both reports takes the merged outcome.
    let late = store.record_runs(&[run("coder", "t1", 3)]).await.unwrap();
    let o = store
        .get_run(late[0].id)
        .await
        .unwrap()
        .outcome
        .expect("merged outcome");
    assert_eq!((o.tests_passed, o.pr_merged), (Some(true), Some(true)));
}

async fn figures_follow_runs_and_outcomes(b: &Backend) {
    let store = b.store.as_ref();
    assert_eq!(figures(b, "coder", 1).await, (0, None, None));
    let mut heavy = run("coder", "t2", 1);
    heavy.tokens_in = Some(300);
    heavy.tokens_out = None;
    store
        .record_runs(&[run("coder", "t1", 1), run("coder", "t1", 2), heavy])
        .await
        .unwrap();
    // Two tasks; no success known yet; tokens 120, 120, 300.
    assert_eq!(figures(b, "coder", 1).await, (2, None, Some(180)));
    store
        .report_outcomes(&[outcome("t1", Some(true)), outcome("t2", Some(false))])
        .await
        .unwrap();
    let (tasks, rate, _) = figures(b, "coder", 1).await;
    assert_eq!(tasks, 2);
    let rate = rate.expect("success known");
    assert!((rate - 200.0 / 3.0).abs() < 1e-6, "{rate}");
    // A rating counts where the tests are unknown, never over them.
    execute_raw(
        &b.url,
        "UPDATE prompt_optimization_data SET rating = 'good' WHERE task_id = 't2'",
    )
    .await
    .unwrap();
    store.report_outcomes(&[outcome("t2", None)]).await.unwrap();
    let rate = figures(b, "coder", 1).await.1.expect("success known");
    assert!(
        (rate - 200.0 / 3.0).abs() < 1e-6,
        "tests passed wins over the rating: {rate}"
    );
}

async fn figures_are_right_under_concurrent_writers(b: &Backend) {
    const WRITERS: usize = 6;
    const TASKS: usize = 10;
    let mut handles = Vec::new();
    for writer in 0..WRITERS {
        let store = b.store.clone();
        handles.push(tokio::spawn(async move {
            for task in 0..TASKS {
                let task_id = format!("w{writer}-t{task}");
                // Half the outcomes arrive before their runs, half after.
                let passed = Some((writer + task) % 3 != 0);
                if task % 2 == 0 {
                    store
                        .report_outcomes(&[outcome(&task_id, passed)])
                        .await
                        .unwrap();
                }
                let prompts = ["planner", "coder"];
                let batch: Vec<NewRun> = prompts.iter().map(|p| run(p, &task_id, 1)).collect();
                store.record_runs(&batch).await.unwrap();
                if task % 2 == 1 {
                    store
                        .report_outcomes(&[outcome(&task_id, passed)])
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let total = WRITERS * TASKS;
    let passed = (0..WRITERS)
        .flat_map(|w| (0..TASKS).map(move |t| (w + t) % 3 != 0))
        .filter(|p| *p)
        .count();
    let expected_rate = 100.0 * passed as f64 / total as f64;
    for prompt in ["planner", "coder"] {
        let (tasks, rate, tokens) = figures(b, prompt, 1).await;
        assert_eq!(tasks, total as i64, "{prompt}");
        let rate = rate.expect("every outcome applied");
        assert!(
            (rate - expected_rate).abs() < 1e-6,
            "{prompt}: {rate} vs {expected_rate}"
        );
        assert_eq!(tokens, Some(120));
    }
    let runs = all_runs(b).await;
    assert_eq!(runs.len(), 2 * total);
    assert!(runs.iter().all(|r| r.outcome.is_some()), "no outcome lost");
}

async fn keyset_pages_are_stable_under_inserts(b: &Backend) {
    let store = b.store.as_ref();
    let batch: Vec<NewRun> = (0..25)
        .map(|i| run("reviewer", &format!("t{i}"), 1))
        .collect();
    let recorded = store.record_runs(&batch).await.unwrap();
    let mut expected: Vec<_> = recorded.iter().map(|r| r.id).collect();
    expected.sort_unstable_by(|a, c| c.cmp(a));

    let mut seen = Vec::new();
    let mut filter = RunFilter {
        prompt_id: Some("reviewer".to_owned()),
        ..RunFilter::default()
    };
    for page_number in 0.. {
        let page = store.list_runs(&filter, 10).await.unwrap();
        // Runs recorded between pages are newer: they never shift the pages still to come.
        store
            .record_runs(&[run("reviewer", &format!("new{page_number}"), 1)])
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        filter.before = Some(last.id);
        seen.extend(page.iter().map(|r| r.id));
    }
    assert_eq!(
        seen, expected,
        "every run once, newest first, none recorded since"
    );
}

async fn list_filters_select_runs(b: &Backend) {
    let store = b.store.as_ref();
    let recorded = store
        .record_runs(&[
            run("planner", "a", 1),
            run("planner", "b", 1),
            run("coder", "c", 1),
        ])
        .await
        .unwrap();
    execute_raw(
        &b.url,
        "UPDATE prompt_optimization_data SET rating = 'bad', failure_mode = 'wrong_files', \
         annotation_source = 'person', annotated_by = 'alice' WHERE task_id = 'a'",
    )
    .await
    .unwrap();
    let list = |filter: RunFilter| list_tasks(store, filter);
    assert_eq!(list(RunFilter::default()).await, ["c", "b", "a"]);
    let planner = RunFilter {
        prompt_id: Some("planner".to_owned()),
        ..RunFilter::default()
    };
    assert_eq!(list(planner.clone()).await, ["b", "a"]);
    assert_eq!(
        list(RunFilter {
            version: Some(1),
            ..planner.clone()
        })
        .await,
        ["b", "a"]
    );
    assert!(
        list(RunFilter {
            version: Some(2),
            ..planner.clone()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(RunFilter {
            rating: Some(Rating::Bad),
            ..RunFilter::default()
        })
        .await,
        ["a"]
    );
    assert!(
        list(RunFilter {
            rating: Some(Rating::Good),
            ..RunFilter::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(RunFilter {
            failure_mode: Some("wrong_files".to_owned()),
            ..RunFilter::default()
        })
        .await,
        ["a"]
    );
    assert_eq!(
        list(RunFilter {
            annotated: Some(true),
            ..RunFilter::default()
        })
        .await,
        ["a"]
    );
    assert_eq!(
        list(RunFilter {
            annotated: Some(false),
            ..RunFilter::default()
        })
        .await,
        ["c", "b"]
    );
    // Grader pass: b passed, c failed, a not graded (matches neither).
    execute_raw(
        &b.url,
        "UPDATE prompt_optimization_data SET graders_passed = (task_id = 'b') \
         WHERE task_id IN ('b', 'c')",
    )
    .await
    .unwrap();
    assert_eq!(
        list(RunFilter {
            graders_passed: Some(true),
            ..RunFilter::default()
        })
        .await,
        ["b"]
    );
    assert_eq!(
        list(RunFilter {
            graders_passed: Some(false),
            ..RunFilter::default()
        })
        .await,
        ["c"]
    );
    let created = store.get_run(recorded[1].id).await.unwrap().created_at;
    assert_eq!(
        list(RunFilter {
            from: Some(created),
            ..RunFilter::default()
        })
        .await,
        ["c", "b", "a"]
    );
    assert!(
        list(RunFilter {
            from: Some(now() + Duration::hours(1)),
            ..RunFilter::default()
        })
        .await
        .is_empty()
    );
    assert!(
        list(RunFilter {
            to: Some(created - Duration::hours(1)),
            ..RunFilter::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(RunFilter {
            to: Some(now() + Duration::hours(1)),
            ..RunFilter::default()
        })
        .await
        .len(),
        3
    );
    let annotated = store.get_run(recorded[0].id).await.unwrap();
    let annotation = annotated.annotation.expect("annotation read back");
    assert_eq!(annotation.rating, Some(Rating::Bad));
    assert_eq!(annotation.annotated_by.as_deref(), Some("alice"));
    assert_eq!(annotated.success, Some(false));
    assert_eq!(
        store
            .list_runs(&RunFilter::default(), 2)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn a_run_reads_back_as_recorded(b: &Backend) {
    let store = b.store.as_ref();
    let mut full = run("coder", "task-9", 4);
    full.root_task_id = Some("root-1".to_owned());
    full.input = json!({ "task_title": "x", "nested": { "n": [1, 2] } })
        .as_object()
        .cloned()
        .unwrap_or_default();
    full.output = "diff --git a/x b/x\n\u{1}\ttext".to_owned();
    full.tokens_out = None;
    let recorded = store
        .record_runs(std::slice::from_ref(&full))
        .await
        .unwrap();
    let stored = store.get_run(recorded[0].id).await.unwrap();
    assert_eq!(stored.id, recorded[0].id);
    assert_eq!(stored.prompt_id, "coder");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.task_id, "task-9");
    assert_eq!(stored.attempt, 4);
    assert_eq!(stored.root_task_id.as_deref(), Some("root-1"));
    assert_eq!(stored.input, full.input);
    assert_eq!(stored.output.as_deref(), Some(full.output.as_str()));
    assert_eq!(stored.model.as_deref(), Some("gpt-test"));
    assert_eq!(
        (stored.tokens_in, stored.tokens_out, stored.latency_ms),
        (Some(100), None, Some(5))
    );
    assert_eq!(stored.origin, crate::store::RunOrigin::Production);
    assert_eq!(stored.created_at, stored.updated_at);
    assert!(stored.outcome.is_none() && stored.annotation.is_none());
    assert!(stored.grader_results.is_none());
    assert_not_found(store.get_run(uuid::Uuid::now_v7()).await, "run ");
}

/// `export_runs` answers, page by page, the runs `list_runs` answers for the same filter and
/// cursor, each with the fields it was asked for and nothing else.
async fn export_reads_the_runs_and_fields_list_reads(b: &Backend) {
    let store = b.store.as_ref();
    let mut batch: Vec<NewRun> = (0..7)
        .map(|i| run("planner", &format!("x{i}"), 1))
        .collect();
    batch.push(run("coder", "x-coder", 1));
    batch[2].input = json!({ "task": "x2", "rating": "an input", "nested": { "n": [1, 2.5] } })
        .as_object()
        .cloned()
        .unwrap_or_default();
    store.record_runs(&batch).await.unwrap();
    store
        .report_outcomes(&[
            NewOutcome {
                task_id: "x1".to_owned(),
                tests_passed: Some(false),
                pr_merged: Some(true),
                expected_files: Some(vec!["a.rs".to_owned()]),
                failure_signature: Some("E1".to_owned()),
            },
            outcome("x3", None),
            outcome("x-coder", Some(true)),
        ])
        .await
        .unwrap();
    for sql in [
        "UPDATE prompt_optimization_data SET rating = 'bad', failure_mode = 'wrong_files', \
         output_feedback = 'no', annotation_source = 'person', annotated_by = 'alice' \
         WHERE task_id IN ('x1', 'x4')",
        "UPDATE prompt_optimization_data SET output_feedback = 'only feedback', \
         annotation_source = 'rule', annotated_by = 'r' WHERE task_id = 'x2'",
        "UPDATE prompt_optimization_data SET grader_results = '{\"exact\": {\"score\": 0.5}}', \
         graders_passed = (1 = 0) WHERE task_id IN ('x1', 'x5')",
        "UPDATE prompt_optimization_data SET origin = 'evaluation' WHERE task_id = 'x6'",
    ] {
        execute_raw(&b.url, sql).await.unwrap();
    }
    let planner = RunFilter {
        prompt_id: Some("planner".to_owned()),
        ..RunFilter::default()
    };
    let filters = [
        RunFilter::default(),
        planner.clone(),
        RunFilter {
            origin: Some(crate::store::RunOrigin::Production),
            ..planner.clone()
        },
        RunFilter {
            annotated: Some(true),
            ..planner.clone()
        },
        RunFilter {
            rating: Some(Rating::Bad),
            version: Some(1),
            ..planner.clone()
        },
        RunFilter {
            graders_passed: Some(false),
            ..RunFilter::default()
        },
    ];
    let all_fields = [false, true].into_iter().flat_map(|annotations| {
        [false, true].map(|grader_results| ExportFields {
            annotations,
            grader_results,
        })
    });
    for fields in all_fields {
        for filter in &filters {
            let mut filter = filter.clone();
            let mut pages = 0;
            let mut exported = 0;
            loop {
                let listed = store.list_runs(&filter, 2).await.unwrap();
                let read = store.export_runs(&filter, fields, 2).await.unwrap();
                let expected: Vec<ExportRun> = listed
                    .into_iter()
                    .map(|run| ExportRun::from_run(run, fields))
                    .collect();
                assert_eq!(read, expected, "{filter:?} {fields:?}, page {pages}");
                exported += read.len();
                let Some(last) = read.last() else { break };
                filter.before = Some(last.id);
                pages += 1;
            }
            assert!(pages > 0 && exported > 0, "{filter:?} selects runs");
        }
    }
    // The fields read are the stored ones, not only equal to the list's.
    let exported = store
        .export_runs(
            &RunFilter {
                rating: Some(Rating::Bad),
                graders_passed: Some(false),
                ..RunFilter::default()
            },
            ExportFields {
                annotations: true,
                grader_results: true,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(exported.len(), 1);
    let x1 = &exported[0];
    let outcome = x1.outcome.as_ref().expect("x1's outcome");
    assert_eq!(
        (outcome.tests_passed, outcome.pr_merged),
        (Some(false), Some(true))
    );
    assert_eq!(
        outcome.expected_files.as_deref(),
        Some(&["a.rs".to_owned()][..])
    );
    assert_eq!(outcome.failure_signature.as_deref(), Some("E1"));
    let annotation = x1.annotation.as_ref().expect("x1's annotation");
    assert_eq!(annotation.rating, Some(Rating::Bad));
    assert_eq!(annotation.failure_mode.as_deref(), Some("wrong_files"));
    assert_eq!(annotation.output_feedback.as_deref(), Some("no"));
    assert_eq!(x1.grader_results, Some(json!({"exact": {"score": 0.5}})));
    assert_eq!(x1.output.as_deref(), Some("output of x1#1"));
    assert_eq!(x1.input, batch[1].input);
}
