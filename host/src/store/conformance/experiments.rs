//! Conformance of the A/B-test domain: start, one running test per prompt, stop, list, lookup,
//! exposures recorded once per (test, task), and intent-to-treat totals from exposures joined
//! with runs and outcomes.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::prompts::new_version;
use super::{Backend, assert_not_found};
use crate::experiments::Arm;
use crate::store::testing::execute_raw;
use crate::store::{
    AbTestEnd, ArmTotals, Exposure, NewAbTest, STATUS_COMPLETED, STATUS_RUNNING, STATUS_STOPPED,
    StoreError,
};

conformance!(
    ab_test_start_stop_list_and_lookup,
    one_running_ab_test_per_prompt,
    ab_test_of_unknown_prompt_or_version_writes_nothing,
    concurrent_ab_test_starts_leave_one_running,
    concurrent_endings_with_a_deploy_deploy_b_once,
    exposures_are_recorded_once_per_task,
    totals_are_intent_to_treat_over_runs_and_outcomes,
);

fn new_test(prompt_id: &str, a: i64, b: i64) -> NewAbTest {
    NewAbTest {
        prompt_id: prompt_id.to_owned(),
        version_a: a,
        version_b: b,
        traffic_split: 0.5,
        min_samples: 100,
        config: json!({ "metric": "success" }),
        created_by: Some("alice".to_owned()),
    }
}

async fn with_version_2(b: &Backend, prompt_id: &str) {
    b.store
        .create_version(new_version(prompt_id, "second {{task}}"))
        .await
        .unwrap();
}

fn stop() -> AbTestEnd {
    AbTestEnd {
        status: STATUS_STOPPED,
        decision: None,
        result: json!({ "stoppedBy": "alice" }),
        deploy_b_as: None,
    }
}

async fn ab_test_start_stop_list_and_lookup(b: &Backend) {
    let store = b.store.as_ref();
    with_version_2(b, "planner").await;
    assert_eq!(store.running_ab_test("planner").await.unwrap(), None);
    let test = store
        .create_ab_test(new_test("planner", 1, 2))
        .await
        .unwrap();
    assert_eq!(test.status, STATUS_RUNNING);
    assert_eq!((test.version_a, test.version_b), (1, 2));
    assert_eq!(test.seed, format!("planner:{}:1", test.id));
    assert_eq!(test.config, json!({ "metric": "success" }));
    assert_eq!(test.result, None);
    assert_eq!(test.created_by.as_deref(), Some("alice"));
    assert_eq!(store.get_ab_test(test.id).await.unwrap(), test);
    assert_eq!(
        store.running_ab_test("planner").await.unwrap(),
        Some(test.clone())
    );

    store
        .save_ab_result(test.id, "keep_running", &json!({ "n": 1 }))
        .await
        .unwrap();
    let saved = store.get_ab_test(test.id).await.unwrap();
    assert_eq!(saved.decision.as_deref(), Some("keep_running"));
    assert_eq!(saved.result, Some(json!({ "n": 1 })));

    let ended = store.end_ab_test(test.id, stop()).await.unwrap();
    assert_eq!(ended.status, STATUS_STOPPED);
    assert!(ended.ended_at.is_some());
    assert_eq!(ended.decided_at, None);
    assert_eq!(ended.result, Some(json!({ "stoppedBy": "alice" })));
    assert_eq!(store.running_ab_test("planner").await.unwrap(), None);
    assert_not_found(
        store.end_ab_test(test.id, stop()).await,
        "running A/B test of prompt planner",
    );
    // An ended test keeps its result; saving no longer changes it.
    store
        .save_ab_result(test.id, "ship_b", &json!({}))
        .await
        .unwrap();
    assert_eq!(store.get_ab_test(test.id).await.unwrap(), ended);

    let second = store
        .create_ab_test(new_test("planner", 2, 1))
        .await
        .unwrap();
    let listed = store.list_ab_tests("planner").await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![second.id, test.id]
    );
    assert!(store.list_ab_tests("reviewer").await.unwrap().is_empty());
    assert_not_found(store.get_ab_test(Uuid::now_v7()).await, "A/B test");
    assert_not_found(store.list_ab_tests("nope").await, "prompt nope");
    assert_not_found(store.running_ab_test("nope").await, "prompt nope");
}

async fn one_running_ab_test_per_prompt(b: &Backend) {
    let store = b.store.as_ref();
    with_version_2(b, "planner").await;
    with_version_2(b, "coder").await;
    store
        .create_ab_test(new_test("planner", 1, 2))
        .await
        .unwrap();
    match store.create_ab_test(new_test("planner", 2, 1)).await {
        Err(StoreError::Conflict { constraint }) => {
            assert_eq!(constraint, "one_running_ab_test_per_prompt")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Another prompt is independent.
    store.create_ab_test(new_test("coder", 1, 2)).await.unwrap();
    assert_eq!(store.list_ab_tests("planner").await.unwrap().len(), 1);
}

async fn ab_test_of_unknown_prompt_or_version_writes_nothing(b: &Backend) {
    let store = b.store.as_ref();
    assert_not_found(
        store.create_ab_test(new_test("nope", 1, 2)).await,
        "prompt nope",
    );
    assert_not_found(
        store.create_ab_test(new_test("planner", 1, 9)).await,
        "version 9 of prompt planner",
    );
    assert!(store.list_ab_tests("planner").await.unwrap().is_empty());
}

async fn concurrent_ab_test_starts_leave_one_running(b: &Backend) {
    with_version_2(b, "planner").await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = Arc::clone(&b.store);
        tasks.push(tokio::spawn(async move {
            store.create_ab_test(new_test("planner", 1, 2)).await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::Conflict { constraint }) => {
                assert_eq!(constraint, "one_running_ab_test_per_prompt")
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(b.store.list_ab_tests("planner").await.unwrap().len(), 1);
}

/// Two instances carrying out one decision at once: one ending wins and deploys B in its
/// transaction; the other finds the test ended and deploys nothing.
async fn concurrent_endings_with_a_deploy_deploy_b_once(b: &Backend) {
    with_version_2(b, "planner").await;
    with_version_2(b, "coder").await;
    let test = b
        .store
        .create_ab_test(new_test("planner", 1, 2))
        .await
        .unwrap();
    let other = b
        .store
        .create_ab_test(new_test("coder", 1, 2))
        .await
        .unwrap();
    let running = b.store.running_ab_tests().await.unwrap();
    assert_eq!(
        running.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![other.id, test.id],
        "every prompt's running test, by prompt"
    );
    let before = b.store.deploy_history("planner").await.unwrap().len();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&b.store);
        tasks.push(tokio::spawn(async move {
            store
                .end_ab_test(
                    test.id,
                    AbTestEnd {
                        status: STATUS_COMPLETED,
                        decision: Some("ship_b".to_owned()),
                        result: json!({}),
                        deploy_b_as: Some(format!("ab-test:{}", test.id)),
                    },
                )
                .await
        }));
    }
    let mut ended = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(test) => {
                ended += 1;
                assert_eq!(test.status, STATUS_COMPLETED);
                assert_eq!(test.decision.as_deref(), Some("ship_b"));
            }
            Err(StoreError::NotFound(_)) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ended, 1);
    let history = b.store.deploy_history("planner").await.unwrap();
    assert_eq!(history.len(), before + 1, "{history:?}");
    let last = history.last().unwrap();
    assert_eq!(last.to_version, 2);
    assert_eq!(last.actor, format!("ab-test:{}", test.id));
    assert_eq!(b.store.active_version("planner").await.unwrap().version, 2);
    // The other prompt is untouched and its test still runs.
    assert_eq!(b.store.active_version("coder").await.unwrap().version, 1);
    assert_eq!(
        b.store
            .running_ab_tests()
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        vec![other.id]
    );
}

fn exposure(test: Uuid, task: &str, arm: Arm) -> Exposure {
    Exposure {
        ab_test_id: test,
        task_id: task.to_owned(),
        arm,
        version: if arm == Arm::A { 1 } else { 2 },
    }
}

async fn exposures_are_recorded_once_per_task(b: &Backend) {
    let store = b.store.as_ref();
    with_version_2(b, "planner").await;
    let test = store
        .create_ab_test(new_test("planner", 1, 2))
        .await
        .unwrap();
    let batch = [
        exposure(test.id, "t1", Arm::A),
        exposure(test.id, "t1", Arm::B),
        exposure(test.id, "t2", Arm::B),
    ];
    assert_eq!(store.record_exposures(&batch).await.unwrap(), 2);
    assert_eq!(store.record_exposures(&batch).await.unwrap(), 0);
    assert_eq!(store.record_exposures(&[]).await.unwrap(), 0);
    let totals = store.ab_test_totals(test.id).await.unwrap();
    // The first assignment of t1 (arm a) is the one kept.
    assert_eq!((totals[0].exposures, totals[1].exposures), (1, 1));
    // A batch of a task already exposed (in the other arm) and a new one: only the new one is
    // recorded and counted, in its own arm.
    let mixed = [
        exposure(test.id, "t2", Arm::A),
        exposure(test.id, "t4", Arm::A),
    ];
    assert_eq!(store.record_exposures(&mixed).await.unwrap(), 1);
    let totals = store.ab_test_totals(test.id).await.unwrap();
    assert_eq!((totals[0].exposures, totals[1].exposures), (2, 1));
    match store
        .record_exposures(&[exposure(Uuid::now_v7(), "t3", Arm::A)])
        .await
    {
        Err(StoreError::Conflict { constraint }) => {
            assert_eq!(constraint, "ab_exposures_ab_test_id_fkey")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_not_found(store.ab_test_totals(Uuid::now_v7()).await, "A/B test");
}

/// Inserts a run the way the runs domain stores one, with plain SQL (there is no store path for
/// evaluation runs here), then rebuilds the running aggregates as the repair does
/// (`Store::recompute_aggregates`): this case checks the totals' definition.
#[allow(clippy::too_many_arguments)] // One column each: the call sites read as table rows.
async fn run(
    b: &Backend,
    task: &str,
    root: Option<&str>,
    version: i64,
    passed: Option<bool>,
    tokens: i64,
    latency: i64,
    origin: &str,
) {
    // The run key keeps an evaluation run of a task apart from its production run.
    let run_key = if origin == "production" {
        "1"
    } else {
        "eval-1"
    };
    let passed = passed.map_or("NULL".to_owned(), |p| p.to_string().to_uppercase());
    let root = root.map_or("NULL".to_owned(), |r| format!("'{r}'"));
    execute_raw(
        &b.url,
        &format!(
            "INSERT INTO prompt_optimization_data (id, prompt_id, version, task_id, root_task_id, \
             tests_passed, total_tokens, latency_ms, origin, run_key) VALUES ('{}', 'planner', \
             {version}, '{task}', {root}, {passed}, {tokens}, {latency}, '{origin}', '{run_key}')",
            Uuid::now_v7()
        ),
    )
    .await
    .unwrap();
    b.store.recompute_aggregates().await.unwrap();
}

async fn totals_are_intent_to_treat_over_runs_and_outcomes(b: &Backend) {
    let store = b.store.as_ref();
    with_version_2(b, "planner").await;
    let test = store
        .create_ab_test(new_test("planner", 1, 2))
        .await
        .unwrap();
    store
        .record_exposures(&[
            exposure(test.id, "a1", Arm::A),
            exposure(test.id, "a2", Arm::A),
            exposure(test.id, "a3", Arm::A), // never ran: a failure with no costs
            exposure(test.id, "b1", Arm::B),
            exposure(test.id, "b2", Arm::B),
        ])
        .await
        .unwrap();
    // a1: two runs (a retry under the root), one passed: a success, costs summed.
    run(b, "a1", None, 1, Some(false), 100, 10, "production").await;
    run(
        b,
        "a1-retry",
        Some("a1"),
        1,
        Some(true),
        50,
        5,
        "production",
    )
    .await;
    // a2: failed; an evaluation run of the same id never counts.
    run(b, "a2", None, 1, Some(false), 200, 20, "production").await;
    run(b, "a2", None, 2, Some(true), 999, 999, "evaluation").await;
    // b1: its run has no outcome yet, but the task's reported outcome says passed.
    run(b, "b1", None, 2, None, 300, 30, "production").await;
    execute_raw(
        &b.url,
        "INSERT INTO task_outcomes (task_id, tests_passed) VALUES ('b1', TRUE)",
    )
    .await
    .unwrap();
    // b2: its run passed but the reported outcome says failed: the outcome wins.
    run(b, "b2", None, 2, Some(true), 400, 40, "production").await;
    execute_raw(
        &b.url,
        "INSERT INTO task_outcomes (task_id, tests_passed) VALUES ('b2', FALSE)",
    )
    .await
    .unwrap();
    b.store.recompute_aggregates().await.unwrap();

    let [a, bb] = store.ab_test_totals(test.id).await.unwrap();
    assert_eq!(
        a,
        ArmTotals {
            exposures: 3,
            successes: 1,
            tokens: (2, 150.0 + 200.0, 150.0 * 150.0 + 200.0 * 200.0),
            latency: (2, 15.0 + 20.0, 15.0 * 15.0 + 20.0 * 20.0),
        }
    );
    assert_eq!(
        bb,
        ArmTotals {
            exposures: 2,
            successes: 1,
            tokens: (2, 700.0, 300.0 * 300.0 + 400.0 * 400.0),
            latency: (2, 70.0, 30.0 * 30.0 + 40.0 * 40.0),
        }
    );
}
