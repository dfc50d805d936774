//! Conformance of the optimization domain: queued runs are claimed once (and again only when
//! their lease has expired), only the claim holder checkpoints or ends one, a checkpoint caches
//! its answers with the state, a cancel of a queued run ends it at once, and the end writes the
//! report and the winner's version (source `optimizer`, parent the starting version) together.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::{Backend, assert_not_found};
use crate::store::{
    CachedAnswer, NewOptimization, OptimizationEnd, OptimizationStatus, VersionSource,
};

conformance!(
    an_optimization_is_claimed_once_and_again_only_after_its_lease,
    only_the_claim_holder_checkpoints_and_ends_and_the_version_comes_with_the_report,
    cancel_ends_a_queued_optimization_and_flags_a_running_one,
    optimization_of_unknown_prompt_or_version_is_not_found,
);

fn new(version: i64) -> NewOptimization {
    NewOptimization {
        prompt_id: "planner".into(),
        start_version: version,
        spec: json!({"dataset": "golden", "budget": {"taskCalls": 400}}),
        graders: vec!["exact".into()],
        created_by: "ops".into(),
    }
}

async fn an_optimization_is_claimed_once_and_again_only_after_its_lease(b: &Backend) {
    let store = &b.store;
    let created = store.create_optimization(new(1)).await.unwrap();
    assert_eq!(created.status, OptimizationStatus::Queued);
    assert_eq!(created.spec["dataset"], "golden");
    assert_eq!(created.graders, vec!["exact".to_owned()]);
    assert_eq!(store.get_optimization(created.id).await.unwrap(), created);

    let claimed = store
        .claim_optimization("a", Duration::from_millis(300))
        .await
        .unwrap()
        .expect("the queued run is claimed");
    assert_eq!(claimed.id, created.id);
    assert_eq!(claimed.status, OptimizationStatus::Running);
    assert_eq!(claimed.claimed_by.as_deref(), Some("a"));
    assert!(claimed.started_at.is_some());
    assert!(
        store
            .claim_optimization("b", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "a held claim is not taken"
    );
    assert!(
        store
            .renew_optimization_lease(created.id, "a", Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_optimization_lease(created.id, "b", Duration::from_secs(30))
            .await
            .unwrap()
    );
    // Instance a dies: once its lease has expired, b takes the run over.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = store
        .claim_optimization("b", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("an abandoned run is claimed again");
    assert_eq!(taken.id, created.id);
    assert_eq!(taken.claimed_by.as_deref(), Some("b"));
    assert_eq!(taken.started_at, claimed.started_at, "first start kept");

    let listed = store.list_optimizations(Some("planner"), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        store
            .list_optimizations(Some("coder"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let second = store.create_optimization(new(1)).await.unwrap();
    let all = store.list_optimizations(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![second.id, created.id],
        "newest first"
    );
}

async fn only_the_claim_holder_checkpoints_and_ends_and_the_version_comes_with_the_report(
    b: &Backend,
) {
    let store = &b.store;
    let created = store.create_optimization(new(1)).await.unwrap();
    store
        .claim_optimization("a", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("claimed");
    let answer = CachedAnswer {
        key: "k".repeat(64),
        model: "m".into(),
        answer: "hello".into(),
        prompt_tokens: 3,
        completion_tokens: 2,
    };
    assert!(
        !store
            .checkpoint_optimization(
                created.id,
                "b",
                &json!({"round": 1}),
                std::slice::from_ref(&answer)
            )
            .await
            .unwrap(),
        "not b's to write"
    );
    assert!(
        store
            .cached_answers(std::slice::from_ref(&answer.key))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .checkpoint_optimization(
                created.id,
                "a",
                &json!({"round": 2}),
                std::slice::from_ref(&answer)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_optimization(created.id).await.unwrap().state,
        Some(json!({"round": 2}))
    );
    assert_eq!(
        store
            .cached_answers(std::slice::from_ref(&answer.key))
            .await
            .unwrap(),
        vec![answer]
    );

    let end = OptimizationEnd {
        status: OptimizationStatus::Completed,
        state: Some(json!({"round": 3})),
        report: Some(json!({"stopReason": "target_reached"})),
        error: None,
        winner: Some(("Better: {{task}}".into(), "optimization".into())),
    };
    assert!(
        store
            .finish_optimization(created.id, "b", end.clone())
            .await
            .unwrap()
            .is_none(),
        "not b's to end"
    );
    assert_eq!(store.list_versions("planner").await.unwrap().len(), 1);
    let (done, version) = store
        .finish_optimization(created.id, "a", end.clone())
        .await
        .unwrap()
        .expect("a ends it");
    let version = version.expect("the winner's version");
    assert_eq!(done.status, OptimizationStatus::Completed);
    assert_eq!(done.report, Some(json!({"stopReason": "target_reached"})));
    assert_eq!(done.state, Some(json!({"round": 3})));
    assert_eq!(done.created_version, Some(version.version));
    assert!(done.finished_at.is_some() && done.claimed_by.is_none());
    assert_eq!(version.version, 2);
    assert_eq!(version.source, VersionSource::Optimizer);
    assert_eq!(version.parent_version, Some(1));
    assert!(!version.is_active);
    let stored = store.get_version("planner", 2).await.unwrap();
    assert_eq!(stored.content, "Better: {{task}}");
    assert_eq!(stored.source, VersionSource::Optimizer);
    // Ended: no second end, no second version.
    assert!(
        store
            .finish_optimization(created.id, "a", end)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_versions("planner").await.unwrap().len(), 2);

    // An end without a winner writes no version.
    let other = store.create_optimization(new(1)).await.unwrap();
    store
        .claim_optimization("a", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("claimed");
    let (done, version) = store
        .finish_optimization(
            other.id,
            "a",
            OptimizationEnd {
                status: OptimizationStatus::Failed,
                state: None,
                report: None,
                error: Some("dataset golden no longer exists".into()),
                winner: None,
            },
        )
        .await
        .unwrap()
        .expect("ended");
    assert!(version.is_none());
    assert_eq!(done.status, OptimizationStatus::Failed);
    assert_eq!(done.created_version, None);
    assert_eq!(
        done.error.as_deref(),
        Some("dataset golden no longer exists")
    );
    assert_eq!(store.list_versions("planner").await.unwrap().len(), 2);
}

async fn cancel_ends_a_queued_optimization_and_flags_a_running_one(b: &Backend) {
    let store = &b.store;
    let running = store.create_optimization(new(1)).await.unwrap();
    store
        .claim_optimization("a", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("claimed");
    let queued = store.create_optimization(new(1)).await.unwrap();
    let cancelled = store.cancel_optimization(queued.id).await.unwrap();
    assert_eq!(cancelled.status, OptimizationStatus::Cancelled);
    assert!(cancelled.finished_at.is_some());
    let flagged = store.cancel_optimization(running.id).await.unwrap();
    assert_eq!(flagged.status, OptimizationStatus::Running);
    assert!(flagged.cancel_requested);
    // A cancelled one is not claimed.
    assert!(
        store
            .claim_optimization("b", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none()
    );
    assert_not_found(
        store.cancel_optimization(Uuid::now_v7()).await,
        "optimization",
    );
}

async fn optimization_of_unknown_prompt_or_version_is_not_found(b: &Backend) {
    let store = &b.store;
    assert_not_found(
        store
            .create_optimization(NewOptimization {
                prompt_id: "ghost".into(),
                ..new(1)
            })
            .await,
        "prompt ghost",
    );
    assert_not_found(
        store.create_optimization(new(9)).await,
        "version 9 of prompt planner",
    );
    assert_not_found(store.get_optimization(Uuid::now_v7()).await, "optimization");
    assert!(store.list_optimizations(None, 10).await.unwrap().is_empty());
}
