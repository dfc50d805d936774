//! Conformance of the running aggregates (migration 0010): after every write of a mix made
//! through the store — runs recorded, outcomes before and after their runs, annotations set,
//! replaced and cleared by people and rules, automatic grading and grading jobs, exposures before
//! and after their runs, a deploy — the per-version figures and the A/B totals the writers kept
//! equal what [`Store::recompute_aggregates`] rebuilds from the rows, on both backends. Runs of
//! offline evaluations are in the mix and must never count.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use super::Backend;
use super::prompts::new_version;
use crate::experiments::Arm;
use crate::store::testing::execute_raw;
use crate::store::{
    AnnotationSource, ArmTotals, ChunkTotals, Exposure, GradedRun, GraderVerdict, NewAbTest,
    NewAnnotation, NewGradingJob, NewOutcome, NewRun, Rating, RunFilter, RunSelection, Store,
};

conformance!(
    scripted_writes_keep_the_aggregates_equal_to_a_recomputation,
    random_writes_keep_the_aggregates_equal_to_a_recomputation,
);

/// What the aggregates show: per version (tasks, success rate, average tokens), and the totals
/// of each test.
#[derive(Debug, PartialEq)]
struct Shown {
    versions: BTreeMap<i64, (i64, Option<f64>, Option<i64>)>,
    tests: Vec<[ArmTotals; 2]>,
}

async fn shown(store: &dyn Store, tests: &[Uuid]) -> Shown {
    let mut versions = BTreeMap::new();
    for v in store.list_versions("planner").await.unwrap() {
        versions.insert(v.version, (v.tasks_executed, v.success_rate, v.avg_tokens));
    }
    let mut totals = Vec::new();
    for test in tests {
        totals.push(store.ab_test_totals(*test).await.unwrap());
    }
    Shown {
        versions,
        tests: totals,
    }
}

/// The running aggregates equal a recomputation from the rows (which then replaces them, so a
/// later divergence is a later write's).
async fn assert_consistent(store: &dyn Store, tests: &[Uuid], after: &str) -> Shown {
    let running = shown(store, tests).await;
    store.recompute_aggregates().await.unwrap();
    let rebuilt = shown(store, tests).await;
    assert_eq!(running, rebuilt, "after {after}");
    rebuilt
}

fn new_run(task: &str, attempt: i64, root: Option<&str>, tokens: Option<i64>) -> NewRun {
    NewRun {
        prompt_id: "planner".into(),
        version: None,
        task_id: task.into(),
        attempt,
        root_task_id: root.map(Into::into),
        input: serde_json::Map::new(),
        output: format!("plan of {task}"),
        model: None,
        tokens_in: tokens,
        tokens_out: tokens.map(|t| t / 2),
        latency_ms: tokens.map(|t| t * 3),
    }
}

fn outcome(task: &str, passed: Option<bool>) -> NewOutcome {
    NewOutcome {
        task_id: task.into(),
        tests_passed: passed,
        pr_merged: None,
        expected_files: None,
        failure_signature: None,
    }
}

fn annotation(rating: Rating, source: AnnotationSource) -> NewAnnotation {
    NewAnnotation {
        rating,
        output_feedback: None,
        failure_mode: None,
        source,
        actor: "alice".into(),
    }
}

fn verdict(passed: bool) -> GraderVerdict {
    GraderVerdict {
        grader: "exact".into(),
        grader_id: None,
        score: Some(if passed { 1.0 } else { 0.0 }),
        passed: Some(passed),
        label: None,
        reasoning: None,
        error: None,
        error_message: None,
        prompt_tokens: None,
        completion_tokens: None,
        duration_us: Some(1),
    }
}

fn ab_test(a: i64, b: i64) -> NewAbTest {
    NewAbTest {
        prompt_id: "planner".into(),
        version_a: a,
        version_b: b,
        traffic_split: 0.5,
        min_samples: 10,
        config: json!({ "metric": "success" }),
        created_by: Some("alice".into()),
    }
}

fn exposure(test: Uuid, unit: &str, arm: Arm) -> Exposure {
    Exposure {
        ab_test_id: test,
        task_id: unit.into(),
        arm,
        version: if arm == Arm::A { 1 } else { 2 },
    }
}

fn planner_runs() -> RunFilter {
    RunFilter {
        prompt_id: Some("planner".into()),
        ..Default::default()
    }
}

/// An evaluation run of `task` (no store path writes them yet: plain SQL, as the evaluation
/// runner would store it), which every writer below must leave out of the aggregates.
async fn evaluation_run(b: &Backend, task: &str, key: usize) -> Uuid {
    let id = Uuid::now_v7();
    execute_raw(
        &b.url,
        &format!(
            "INSERT INTO prompt_optimization_data (id, prompt_id, version, task_id, run_key, \
             total_tokens, latency_ms, origin) \
             VALUES ('{id}', 'planner', 1, '{task}', 'eval-{key}', 999, 999, 'evaluation')"
        ),
    )
    .await
    .unwrap();
    id
}

/// Grades every run of the prompt with a grading job, `passed` deciding each verdict.
async fn grading_job(store: &dyn Store, passed: impl Fn(usize) -> bool) {
    let job = store
        .create_grading_job(NewGradingJob {
            prompt_id: "planner".into(),
            version: None,
            graders: vec!["exact".into()],
            selection: RunSelection::default(),
            token_budget: None,
            created_by: "ops".into(),
        })
        .await
        .unwrap();
    let claimed = store
        .claim_grading_job("me", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the job is claimed");
    assert_eq!(claimed.id, job.id);
    let rows = store.job_rows(job.id, 0, 10_000).await.unwrap();
    let graded: Vec<GradedRun> = rows
        .iter()
        .enumerate()
        .map(|(n, run)| GradedRun {
            data_id: run.id,
            prompt_id: run.prompt_id.clone(),
            outcome_at: run.outcome_at,
            row_index: run.row_index,
            verdicts: vec![verdict(passed(n))],
        })
        .collect();
    assert!(
        store
            .record_chunk(job.id, "me", 0, &graded, &ChunkTotals::default())
            .await
            .unwrap()
    );
}

/// Grades what waits for the automatic graders, `passed` deciding each verdict.
async fn auto_grade(store: &dyn Store, passed: impl Fn(usize) -> bool) -> usize {
    let runs = store.runs_to_auto_grade(10_000).await.unwrap();
    let graded: Vec<GradedRun> = runs
        .iter()
        .enumerate()
        .map(|(n, run)| GradedRun {
            data_id: run.id,
            prompt_id: run.prompt_id.clone(),
            outcome_at: run.outcome_at,
            row_index: 0,
            verdicts: vec![verdict(passed(n))],
        })
        .collect();
    store.record_auto_grades(&graded).await.unwrap();
    graded.len()
}

async fn scripted_writes_keep_the_aggregates_equal_to_a_recomputation(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_version(new_version("planner", "second {{task}}"))
        .await
        .unwrap();
    let test = store.create_ab_test(ab_test(1, 2)).await.unwrap();
    let tests = [test.id];

    // Exposures before any run; an outcome before its run.
    store
        .record_exposures(&[
            exposure(test.id, "u1", Arm::A),
            exposure(test.id, "u2", Arm::B),
            exposure(test.id, "u3", Arm::A),
        ])
        .await
        .unwrap();
    store
        .report_outcomes(&[outcome("u2", Some(true))])
        .await
        .unwrap();
    assert_consistent(store, &tests, "exposures and an early outcome").await;

    // Runs: a unit with a retry under its root, a run with no tokens, runs of an unexposed
    // task, versions given and defaulted (to the unit's arm), and a retried post.
    let batch = [
        new_run("u1", 1, None, Some(100)),
        new_run("u1-fix", 1, Some("u1"), Some(40)),
        new_run("u2", 1, None, None),
        new_run("free", 1, None, Some(7)),
        new_run("free", 2, None, Some(9)),
    ];
    store.record_runs(&batch).await.unwrap();
    store.record_runs(&batch).await.unwrap();
    let mut pinned = new_run("u3", 1, None, Some(11));
    pinned.version = Some(2);
    store.record_runs(&[pinned]).await.unwrap();
    let shown = assert_consistent(store, &tests, "runs").await;
    assert!(shown.tests[0][0].tokens.0 >= 1, "{shown:?}");
    assert_eq!(
        shown.tests[0][1].successes, 1,
        "u2's early outcome: {shown:?}"
    );

    // An exposure after its unit's runs (beside one of a unit exposed already, which changes
    // nothing), and evaluation runs, graded and annotated below.
    store
        .record_exposures(&[
            exposure(test.id, "u1", Arm::B),
            exposure(test.id, "free", Arm::B),
        ])
        .await
        .unwrap();
    let eval = evaluation_run(b, "u1", 1).await;
    assert_consistent(store, &tests, "a late exposure").await;

    // Outcomes after their runs, one reversed; one for a retry (not the unit's own task).
    store
        .report_outcomes(&[outcome("u1", Some(false)), outcome("free", Some(true))])
        .await
        .unwrap();
    assert_consistent(store, &tests, "outcomes").await;
    store
        .report_outcomes(&[outcome("free", Some(false)), outcome("u1-fix", Some(true))])
        .await
        .unwrap();
    assert_consistent(store, &tests, "a reversed outcome").await;

    // Automatic grading, then a grading job that regrades everything the other way.
    let auto = auto_grade(store, |n| n % 2 == 0).await;
    assert!(auto >= 5, "graded {auto}");
    assert_consistent(store, &tests, "automatic grading").await;
    grading_job(store, |n| n % 2 == 1).await;
    assert_consistent(store, &tests, "a grading job").await;

    // Annotations: a rule, a person over it, a rule kept off, a re-annotation, a clear; and the
    // evaluation run annotated (nothing may move).
    let runs = store.list_runs(&planner_runs(), 100).await.unwrap();
    let target = runs
        .iter()
        .find(|r| r.task_id == "u3")
        .expect("u3's run (no outcome: its rating decides)")
        .id;
    for (rating, source) in [
        (Rating::Bad, AnnotationSource::Rule),
        (Rating::Good, AnnotationSource::Person),
        (Rating::Bad, AnnotationSource::Rule),
        (Rating::Bad, AnnotationSource::Person),
    ] {
        store
            .annotate(target, annotation(rating, source))
            .await
            .unwrap();
        assert_consistent(store, &tests, "an annotation").await;
    }
    store
        .clear_annotation(target, "alice", AnnotationSource::Person)
        .await
        .unwrap();
    assert_consistent(store, &tests, "a cleared annotation").await;
    store
        .annotate(eval, annotation(Rating::Good, AnnotationSource::Person))
        .await
        .unwrap();
    assert_consistent(store, &tests, "an annotated evaluation run").await;

    // A deploy while the test runs stops nothing in the store, and runs then go to the arms;
    // after the test ends, to the active version.
    store.deploy("planner", 2, "alice").await.unwrap();
    store
        .record_runs(&[new_run("u3", 2, None, Some(5))])
        .await
        .unwrap();
    assert_consistent(store, &tests, "a deploy").await;

    // A second test of the same prompt: a unit exposed in both counts in both.
    store
        .end_ab_test(
            test.id,
            crate::store::AbTestEnd {
                status: crate::store::STATUS_STOPPED,
                decision: None,
                result: json!({}),
                deploy_b_as: None,
            },
        )
        .await
        .unwrap();
    let second = store.create_ab_test(ab_test(2, 1)).await.unwrap();
    let tests = [test.id, second.id];
    store
        .record_exposures(&[exposure(second.id, "u1", Arm::B)])
        .await
        .unwrap();
    store
        .report_outcomes(&[outcome("u1", Some(true))])
        .await
        .unwrap();
    let shown = assert_consistent(store, &tests, "a second test").await;
    assert_eq!(shown.tests[1][1].exposures, 1);
    assert_eq!(shown.tests[1][1].successes, 1);
    assert_eq!(shown.tests[0][0].exposures, 2);
}

/// A seeded random sequence of every kind of write over a few units, checked after each.
async fn random_writes_keep_the_aggregates_equal_to_a_recomputation(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_version(new_version("planner", "second {{task}}"))
        .await
        .unwrap();
    let test = store.create_ab_test(ab_test(1, 2)).await.unwrap();
    let tests = [test.id];
    let mut rng = StdRng::seed_from_u64(20_261_201);
    let tasks: Vec<String> = (0..8).map(|n| format!("task-{n}")).collect();
    for step in 0..60 {
        let task = &tasks[rng.random_range(0..tasks.len())];
        let what = match rng.random_range(0..7) {
            0 => {
                let root = if rng.random_bool(0.3) {
                    Some(tasks[rng.random_range(0..tasks.len())].as_str())
                } else {
                    None
                };
                let tokens = rng.random_bool(0.8).then(|| rng.random_range(1..500));
                let mut run = new_run(task, rng.random_range(1..4), root, tokens);
                if rng.random_bool(0.3) {
                    run.version = Some(rng.random_range(1..3));
                }
                store.record_runs(&[run]).await.unwrap();
                "record"
            }
            1 => {
                let passed = [None, Some(true), Some(false)][rng.random_range(0..3)];
                store
                    .report_outcomes(&[outcome(task, passed)])
                    .await
                    .unwrap();
                "outcome"
            }
            2 => {
                let arm = if rng.random_bool(0.5) { Arm::A } else { Arm::B };
                store
                    .record_exposures(&[exposure(test.id, task, arm)])
                    .await
                    .unwrap();
                "exposure"
            }
            3 | 4 => {
                let runs = store.list_runs(&planner_runs(), 100).await.unwrap();
                if runs.is_empty() {
                    continue;
                }
                let run = runs[rng.random_range(0..runs.len())].id;
                let source = if rng.random_bool(0.5) {
                    AnnotationSource::Person
                } else {
                    AnnotationSource::Rule
                };
                if rng.random_bool(0.25) {
                    store.clear_annotation(run, "bob", source).await.unwrap();
                    "clear"
                } else {
                    let rating = if rng.random_bool(0.5) {
                        Rating::Good
                    } else {
                        Rating::Bad
                    };
                    store
                        .annotate(run, annotation(rating, source))
                        .await
                        .unwrap();
                    "annotate"
                }
            }
            5 => {
                let seed: u64 = rng.random();
                auto_grade(store, move |n| (seed >> (n % 64)) & 1 == 1).await;
                "auto-grade"
            }
            _ => {
                evaluation_run(b, task, step).await;
                "evaluation run"
            }
        };
        assert_consistent(store, &tests, &format!("step {step}: {what}")).await;
    }
    let shown = shown(store, &tests).await;
    assert!(
        shown.tests[0].iter().map(|arm| arm.exposures).sum::<u64>() > 0,
        "the sequence exposed units: {shown:?}"
    );
}
