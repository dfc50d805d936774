//! Conformance of the evaluation domain: evaluations share the grading-run queue (claimed like
//! any job) yet are told apart, chunk commits happen once and only by the claim holder with
//! their outputs, verdicts, cache entries and counters, and the outputs stay out of production
//! figures and production run listings.

use std::time::Duration;

use uuid::Uuid;

use super::{Backend, assert_not_found};
use crate::store::{
    CachedAnswer, ChunkTotals, EvaluationChunk, EvaluationOutput, EvaluationSpec, GradedRun,
    GraderVerdict, JobKind, JobListFilter, JobStatus, NewEvaluation, NewGradingJob, RunFilter,
    RunOrigin, RunSelection,
};

conformance!(
    evaluations_share_the_queue_and_are_told_apart,
    evaluation_of_unknown_prompt_or_version_is_not_found_and_writes_nothing,
    an_evaluation_chunk_is_committed_once_and_only_by_the_claim_holder,
    evaluations_are_listed_newest_first_without_grading_runs,
);

fn spec(versions: Vec<i64>) -> EvaluationSpec {
    EvaluationSpec {
        sampling: crate::evals::cache::Sampling {
            temperature: Some(0.25),
            seed: Some(9),
            ..Default::default()
        },
        versions,
        dataset: "golden".into(),
        dataset_version: 1,
        split: None,
        rows: 3,
        model: Some("m".into()),
        repeat: 1,
        call_budget: Some(10),
    }
}

fn new(versions: Vec<i64>) -> NewEvaluation {
    NewEvaluation {
        prompt_id: "planner".into(),
        spec: spec(versions),
        graders: vec!["exact".into()],
        token_budget: Some(500),
        created_by: "ops".into(),
    }
}

async fn evaluations_share_the_queue_and_are_told_apart(b: &Backend) {
    let store = &b.store;
    let created = store.create_evaluation(new(vec![1])).await.unwrap();
    assert_eq!(created.job.status, JobStatus::Queued);
    assert_eq!(created.job.total, 3);
    assert_eq!(created.spec, spec(vec![1]));
    assert_eq!((created.model_calls, created.cached_answers), (0, 0));
    assert_eq!(store.get_evaluation(created.job.id).await.unwrap(), created);

    // A grading run is no evaluation.
    let grading = store
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
    assert_not_found(store.get_evaluation(grading.id).await, "evaluation");

    // One queue, oldest first: the evaluation is claimed like any job, then the grading run.
    let claimed = store
        .claim_grading_job("a", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(claimed.id, created.job.id);
    let next = store
        .claim_grading_job("a", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(next.id, grading.id);
    let cancelled = store.cancel_grading_job(created.job.id).await.unwrap();
    assert!(cancelled.cancel_requested);
    assert!(
        store
            .get_evaluation(created.job.id)
            .await
            .unwrap()
            .job
            .cancel_requested
    );
}

async fn evaluations_are_listed_newest_first_without_grading_runs(b: &Backend) {
    let store = &b.store;
    let all = JobListFilter::default();
    let of = |prompt: &str| JobListFilter {
        prompt_id: Some(prompt.into()),
        ..JobListFilter::default()
    };
    assert!(store.list_evaluations(&all, 10).await.unwrap().is_empty());
    let first = store.create_evaluation(new(vec![1])).await.unwrap();
    store
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
    let second = store
        .create_evaluation(NewEvaluation {
            created_by: "other".into(),
            ..new(vec![1])
        })
        .await
        .unwrap();
    let ids = |jobs: Vec<crate::store::EvaluationJob>| -> Vec<Uuid> {
        jobs.into_iter().map(|e| e.job.id).collect()
    };
    assert_eq!(
        ids(store.list_evaluations(&all, 10).await.unwrap()),
        [second.job.id, first.job.id],
        "newest first, the grading run left out"
    );
    let grading_only = JobListFilter {
        kind: Some(JobKind::Grading),
        ..JobListFilter::default()
    };
    assert_eq!(
        ids(store.list_evaluations(&grading_only, 10).await.unwrap()),
        [second.job.id, first.job.id],
        "an evaluation list lists evaluations whatever kind is asked"
    );
    assert_eq!(
        store.list_evaluations(&of("planner"), 10).await.unwrap()[0],
        second,
        "listed as read one by one"
    );
    assert_eq!(
        ids(store.list_evaluations(&of("planner"), 1).await.unwrap()),
        [second.job.id]
    );
    assert!(
        store
            .list_evaluations(&of("ghost"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Keyset: the page after the newest holds the older one only.
    let after_second = JobListFilter {
        before: Some(second.job.id),
        ..JobListFilter::default()
    };
    assert_eq!(
        ids(store.list_evaluations(&after_second, 10).await.unwrap()),
        [first.job.id]
    );
    // By status: a cancelled queued evaluation is final at once.
    store.cancel_grading_job(first.job.id).await.unwrap();
    let status = |status| JobListFilter {
        status: Some(status),
        ..JobListFilter::default()
    };
    assert_eq!(
        ids(store
            .list_evaluations(&status(JobStatus::Cancelled), 10)
            .await
            .unwrap()),
        [first.job.id]
    );
    assert_eq!(
        ids(store
            .list_evaluations(&status(JobStatus::Queued), 10)
            .await
            .unwrap()),
        [second.job.id]
    );
    let none = JobListFilter {
        prompt_id: Some("planner".into()),
        status: Some(JobStatus::Running),
        before: Some(second.job.id),
        kind: None,
    };
    assert!(store.list_evaluations(&none, 10).await.unwrap().is_empty());
}

async fn evaluation_of_unknown_prompt_or_version_is_not_found_and_writes_nothing(b: &Backend) {
    let store = &b.store;
    let ghost = NewEvaluation {
        prompt_id: "ghost".into(),
        ..new(vec![1])
    };
    assert_not_found(store.create_evaluation(ghost).await, "prompt ghost");
    assert_not_found(
        store.create_evaluation(new(vec![1, 9])).await,
        "version 9 of prompt planner",
    );
    assert_eq!(
        store
            .claim_grading_job("a", Duration::from_secs(60))
            .await
            .unwrap(),
        None,
        "nothing was queued"
    );
}

fn output(position: i64, answer: Option<&str>) -> EvaluationOutput {
    EvaluationOutput {
        run_id: Uuid::now_v7(),
        position,
        version: 1,
        dataset_row: Uuid::from_u128(position as u128 + 1),
        repeat: 0,
        input: serde_json::json!({"task_title": format!("t{position}")}),
        output: answer.map(str::to_owned),
        model: answer.map(|_| "m".to_owned()),
        prompt_tokens: answer.map(|_| 3),
        completion_tokens: answer.map(|_| 2),
        latency_ms: answer.map(|_| 7),
        error: answer.is_none().then(|| "missing_variable".to_owned()),
        error_message: answer.is_none().then(|| "no value".to_owned()),
    }
}

async fn an_evaluation_chunk_is_committed_once_and_only_by_the_claim_holder(b: &Backend) {
    let store = &b.store;
    let created = store.create_evaluation(new(vec![1])).await.unwrap();
    let id = created.job.id;
    store
        .claim_grading_job("holder", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claimed");
    let outputs = vec![output(0, Some("plan")), output(1, None)];
    let graded = vec![GradedRun {
        data_id: outputs[0].run_id,
        prompt_id: "planner".into(),
        outcome_at: None,
        row_index: 0,
        verdicts: vec![GraderVerdict {
            grader: "exact".into(),
            grader_id: None,
            score: Some(1.0),
            passed: Some(true),
            label: None,
            reasoning: None,
            error: None,
            error_message: None,
            prompt_tokens: None,
            completion_tokens: None,
            duration_us: None,
        }],
    }];
    let mut totals = ChunkTotals {
        passed: 1,
        errored: 1,
        tokens: 5,
        ..ChunkTotals::default()
    };
    totals.errors.insert("missing_variable".into(), 1);
    let answers = vec![CachedAnswer {
        key: "k0".into(),
        model: "m".into(),
        answer: "plan".into(),
        prompt_tokens: 3,
        completion_tokens: 2,
    }];
    let chunk = EvaluationChunk {
        from: 0,
        outputs: &outputs,
        graded: &graded,
        totals: &totals,
        new_answers: &answers,
        model_calls: 1,
        cached_answers: 0,
    };
    assert!(
        !store
            .record_evaluation_chunk(id, "intruder", chunk)
            .await
            .unwrap(),
        "only the claim holder commits"
    );
    assert!(store.evaluation_outputs(id).await.unwrap().is_empty());
    assert!(
        store
            .record_evaluation_chunk(id, "holder", chunk)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_evaluation_chunk(id, "holder", chunk)
            .await
            .unwrap(),
        "a chunk is committed once: the job has moved on"
    );

    let after = store.get_evaluation(id).await.unwrap();
    assert_eq!(
        (
            after.job.processed,
            after.job.passed,
            after.job.errored,
            after.job.tokens_used
        ),
        (2, 1, 1, 5)
    );
    assert_eq!(after.job.errors.get("missing_variable"), Some(&1));
    assert_eq!((after.model_calls, after.cached_answers), (1, 0));

    let stored = store.evaluation_outputs(id).await.unwrap();
    assert_eq!(stored.len(), 2);
    let answered = stored
        .iter()
        .find(|o| o.dataset_row == Uuid::from_u128(1))
        .expect("position 0");
    assert_eq!(answered.verdicts["exact"].passed, Some(true));
    assert_eq!((answered.tokens, answered.latency_ms), (Some(5), Some(7)));
    let errored = stored
        .iter()
        .find(|o| o.dataset_row == Uuid::from_u128(2))
        .expect("position 1");
    assert_eq!(errored.error.as_deref(), Some("missing_variable"));
    assert!(errored.verdicts.is_empty());

    // The cache answers the keys it holds.
    let found = store
        .cached_answers(&["k0".into(), "absent".into()])
        .await
        .unwrap();
    assert_eq!(found, answers);

    // The outputs are evaluation runs: not in production listings nor the version's figures.
    let production = store
        .list_runs(
            &RunFilter {
                prompt_id: Some("planner".into()),
                origin: Some(RunOrigin::Production),
                ..RunFilter::default()
            },
            100,
        )
        .await
        .unwrap();
    assert!(production.is_empty());
    let all = store
        .list_runs(
            &RunFilter {
                prompt_id: Some("planner".into()),
                ..RunFilter::default()
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|run| run.origin == RunOrigin::Evaluation));
    assert_eq!(
        store
            .get_version("planner", 1)
            .await
            .unwrap()
            .tasks_executed,
        0
    );
}
