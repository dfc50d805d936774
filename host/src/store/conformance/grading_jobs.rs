//! Conformance of the grading-job domain: rows fixed at creation, selections, claims under a
//! lease and their take-over, exactly-once chunk commits, cancel, and the automatic-grading
//! queue. Runs are written with plain SQL here so the cases depend on the schema only; the
//! running aggregates are then rebuilt with `Store::recompute_aggregates`, the repair for rows
//! written around the store.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Backend, assert_not_found};
use crate::store::{
    ChunkTotals, GradedRun, GraderVerdict, JobKind, JobListFilter, JobStatus, NewGradingJob,
    RunSelection, Store,
};

conformance!(
    job_rows_are_fixed_at_creation_in_id_order,
    job_selection_narrows_by_version_ids_rating_and_time,
    job_of_unknown_prompt_or_version_is_not_found_and_writes_nothing,
    a_live_claim_is_never_taken_and_an_expired_one_is,
    a_chunk_is_committed_once_and_only_by_the_claim_holder,
    cancel_stops_a_queued_job_at_once_and_flags_a_running_one,
    concurrent_claimers_take_each_job_once,
    auto_grading_queue_marks_runs_unless_an_outcome_arrived,
    jobs_are_listed_newest_first_per_prompt_or_all,
);

/// Inserts a production run of `prompt` version 1 with plain SQL; returns its id.
async fn insert_run(b: &Backend, prompt: &str, task: &str, attempt: i64, output: &str) -> Uuid {
    let id = Uuid::now_v7();
    let at = crate::store::now();
    let sql = "INSERT INTO prompt_optimization_data (id, prompt_id, version, task_id, run_key, \
               attempt, input_variables, output, total_tokens, created_at, updated_at) \
               VALUES ($1, $2, 1, $3, $4, $5, '{}', $6, 10, $7, $7)";
    if b.postgres {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&b.url).await.unwrap();
        sqlx::query(&sql.replace("'{}'", "'{}'::jsonb"))
            .bind(id)
            .bind(prompt)
            .bind(task)
            .bind(attempt.to_string())
            .bind(attempt)
            .bind(output)
            .bind(at)
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&b.url).await.unwrap();
        sqlx::query(sql)
            .bind(id.hyphenated().to_string())
            .bind(prompt)
            .bind(task)
            .bind(attempt.to_string())
            .bind(attempt)
            .bind(output)
            .bind(at)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    b.store.recompute_aggregates().await.unwrap();
    id
}

/// Runs one statement with a run id as `$1`.
async fn exec_on_run(b: &Backend, sql: &str, run: Uuid) {
    use sqlx::Connection;
    if b.postgres {
        let mut conn = sqlx::PgConnection::connect(&b.url).await.unwrap();
        sqlx::query(sql).bind(run).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&b.url).await.unwrap();
        sqlx::query(sql)
            .bind(run.hyphenated().to_string())
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// Counts rows of `table`.
async fn count(b: &Backend, table: &str) -> i64 {
    use sqlx::Connection;
    let sql = format!("SELECT COUNT(*) FROM {table}");
    if b.postgres {
        let mut conn = sqlx::PgConnection::connect(&b.url).await.unwrap();
        sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&b.url).await.unwrap();
        sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
    }
}

fn job(selection: RunSelection) -> NewGradingJob {
    NewGradingJob {
        prompt_id: "planner".into(),
        version: None,
        graders: vec!["exact".into()],
        selection,
        token_budget: None,
        created_by: "ops".into(),
    }
}

fn verdict(grader: &str, passed: bool) -> GraderVerdict {
    GraderVerdict {
        grader: grader.into(),
        grader_id: None,
        score: Some(if passed { 1.0 } else { 0.0 }),
        passed: Some(passed),
        label: None,
        reasoning: Some("compared".into()),
        error: None,
        error_message: None,
        prompt_tokens: None,
        completion_tokens: None,
        duration_us: Some(12),
    }
}

fn graded(run: &crate::store::GradableRun, verdicts: Vec<GraderVerdict>) -> GradedRun {
    GradedRun {
        data_id: run.id,
        prompt_id: run.prompt_id.clone(),
        outcome_at: run.outcome_at,
        row_index: run.row_index,
        verdicts,
    }
}

async fn job_rows_are_fixed_at_creation_in_id_order(b: &Backend) {
    let store = b.store.as_ref();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(insert_run(b, "planner", &format!("t{n}"), 1, "out").await);
    }
    insert_run(b, "coder", "c1", 1, "other prompt").await;
    let created = store
        .create_grading_job(job(RunSelection::default()))
        .await
        .unwrap();
    assert_eq!(created.status, JobStatus::Queued);
    assert_eq!(created.total, 5);
    assert_eq!(created.processed, 0);
    assert_eq!(created.created_by.as_deref(), Some("ops"));
    // A run recorded later is not part of the job.
    insert_run(b, "planner", "late", 1, "out").await;
    let rows = store.job_rows(created.id, 0, 100).await.unwrap();
    let got: Vec<(i64, Uuid)> = rows.iter().map(|r| (r.row_index, r.id)).collect();
    let want: Vec<(i64, Uuid)> = ids
        .iter()
        .copied()
        .enumerate()
        .map(|(i, id)| (i as i64, id))
        .collect();
    assert_eq!(got, want);
    let tail = store.job_rows(created.id, 3, 1).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].id, ids[3]);
    assert_eq!(store.get_grading_job(created.id).await.unwrap(), created);
}

async fn job_selection_narrows_by_version_ids_rating_and_time(b: &Backend) {
    let store = b.store.as_ref();
    let before: DateTime<Utc> = crate::store::now();
    let a = insert_run(b, "planner", "a", 1, "x").await;
    let bad = insert_run(b, "planner", "b", 1, "x").await;
    let c = insert_run(b, "planner", "c", 1, "x").await;
    exec_on_run(
        b,
        "UPDATE prompt_optimization_data SET rating = 'bad' WHERE id = $1",
        bad,
    )
    .await;
    let total = |selection: RunSelection| async {
        store
            .create_grading_job(job(selection))
            .await
            .unwrap()
            .total
    };
    assert_eq!(total(RunSelection::default()).await, 3);
    assert_eq!(
        total(RunSelection {
            rating: Some("bad".into()),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        total(RunSelection {
            annotated: Some(false),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        total(RunSelection {
            ids: Some(vec![a, c, Uuid::now_v7()]),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        total(RunSelection {
            ids: Some(vec![]),
            ..Default::default()
        })
        .await,
        0
    );
    assert_eq!(
        total(RunSelection {
            from: Some(before),
            to: Some(crate::store::now()),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        total(RunSelection {
            to: Some(before),
            ..Default::default()
        })
        .await,
        0
    );
    let mut versioned = job(RunSelection::default());
    versioned.version = Some(1);
    assert_eq!(store.create_grading_job(versioned).await.unwrap().total, 3);
}

async fn job_of_unknown_prompt_or_version_is_not_found_and_writes_nothing(b: &Backend) {
    let store = b.store.as_ref();
    let mut ghost = job(RunSelection::default());
    ghost.prompt_id = "ghost".into();
    assert_not_found(store.create_grading_job(ghost).await, "prompt ghost");
    let mut missing = job(RunSelection::default());
    missing.version = Some(99);
    assert_not_found(store.create_grading_job(missing).await, "version 99");
    assert_not_found(store.get_grading_job(Uuid::now_v7()).await, "grading run");
    assert_not_found(
        store.cancel_grading_job(Uuid::now_v7()).await,
        "grading run",
    );
    assert_eq!(count(b, "grading_runs").await, 0);
}

async fn a_live_claim_is_never_taken_and_an_expired_one_is(b: &Backend) {
    let store = b.store.as_ref();
    insert_run(b, "planner", "t", 1, "x").await;
    let created = store
        .create_grading_job(job(RunSelection::default()))
        .await
        .unwrap();
    let long = Duration::from_secs(60);
    let claimed = store.claim_grading_job("one", long).await.unwrap().unwrap();
    assert_eq!(claimed.id, created.id);
    assert_eq!(claimed.status, JobStatus::Running);
    assert_eq!(claimed.claimed_by.as_deref(), Some("one"));
    assert!(claimed.started_at.is_some());
    assert!(
        store
            .claim_grading_job("two", long)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .renew_grading_lease(created.id, "one", long)
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_grading_lease(created.id, "two", long)
            .await
            .unwrap()
    );

    // Instance one stops renewing: a zero lease has expired by the next claim.
    assert!(
        store
            .renew_grading_lease(created.id, "one", Duration::ZERO)
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let taken = store.claim_grading_job("two", long).await.unwrap().unwrap();
    assert_eq!(taken.id, created.id);
    assert_eq!(taken.claimed_by.as_deref(), Some("two"));
    assert_eq!(
        taken.started_at, claimed.started_at,
        "the first start is kept"
    );
    assert!(
        !store
            .renew_grading_lease(created.id, "one", long)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_grading_job(created.id, "one", JobStatus::Completed, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_grading_job(created.id, "two", JobStatus::Completed, None)
            .await
            .unwrap()
    );
    let done = store.get_grading_job(created.id).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert!(done.finished_at.is_some());
    assert_eq!(done.claimed_by, None);
    assert!(
        store
            .claim_grading_job("three", long)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_chunk_is_committed_once_and_only_by_the_claim_holder(b: &Backend) {
    let store = b.store.as_ref();
    for n in 0..3 {
        insert_run(b, "planner", &format!("t{n}"), 1, "x").await;
    }
    let created = store
        .create_grading_job(job(RunSelection::default()))
        .await
        .unwrap();
    let lease = Duration::from_secs(60);
    store
        .claim_grading_job("one", lease)
        .await
        .unwrap()
        .unwrap();
    let rows = store.job_rows(created.id, 0, 2).await.unwrap();
    let chunk: Vec<GradedRun> = vec![
        graded(&rows[0], vec![verdict("exact", true)]),
        graded(&rows[1], vec![verdict("exact", false)]),
    ];
    let totals = ChunkTotals {
        passed: 1,
        failed: 1,
        errored: 0,
        errors: BTreeMap::from([("timeout".to_owned(), 2)]),
        tokens: 7,
    };
    assert!(
        !store
            .record_chunk(created.id, "two", 0, &chunk, &totals)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_chunk(created.id, "one", 0, &chunk, &totals)
            .await
            .unwrap()
    );
    // The same chunk again (a worker that lost track) is refused: the job is at row 2.
    assert!(
        !store
            .record_chunk(created.id, "one", 0, &chunk, &totals)
            .await
            .unwrap()
    );
    assert_eq!(count(b, "grading_results").await, 2);
    let after = store.get_grading_job(created.id).await.unwrap();
    assert_eq!(
        (
            after.processed,
            after.passed,
            after.failed,
            after.errored,
            after.tokens_used
        ),
        (2, 1, 1, 0, 7)
    );
    assert_eq!(after.errors, BTreeMap::from([("timeout".to_owned(), 2)]));

    // The verdicts are on the runs, merged by grader name, and the figures count them.
    let first = store.job_rows(created.id, 0, 1).await.unwrap();
    assert_eq!(first[0].id, rows[0].id);
    let version = store.get_version("planner", 1).await.unwrap();
    assert_eq!(
        version.success_rate,
        Some(50.0),
        "graders decide when nothing else is known"
    );
    let second_pass = vec![graded(&rows[0], vec![verdict("other", false)])];
    assert!(
        store
            .record_chunk(created.id, "one", 2, &second_pass, &ChunkTotals::default())
            .await
            .unwrap()
    );
    let version = store.get_version("planner", 1).await.unwrap();
    assert_eq!(
        version.success_rate,
        Some(0.0),
        "one grader failing fails the run"
    );
    assert_eq!(version.tasks_executed, 3);
    assert_eq!(version.avg_tokens, Some(10));
}

async fn cancel_stops_a_queued_job_at_once_and_flags_a_running_one(b: &Backend) {
    let store = b.store.as_ref();
    insert_run(b, "planner", "t", 1, "x").await;
    let queued = store
        .create_grading_job(job(RunSelection::default()))
        .await
        .unwrap();
    let cancelled = store.cancel_grading_job(queued.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(cancelled.finished_at.is_some());
    let lease = Duration::from_secs(60);
    assert!(
        store
            .claim_grading_job("one", lease)
            .await
            .unwrap()
            .is_none()
    );

    let running = store
        .create_grading_job(job(RunSelection::default()))
        .await
        .unwrap();
    store
        .claim_grading_job("one", lease)
        .await
        .unwrap()
        .unwrap();
    let flagged = store.cancel_grading_job(running.id).await.unwrap();
    assert_eq!(flagged.status, JobStatus::Running);
    assert!(flagged.cancel_requested);
    // Cancelling a final job changes nothing.
    let again = store.cancel_grading_job(queued.id).await.unwrap();
    assert_eq!(again, cancelled);
}

async fn concurrent_claimers_take_each_job_once(b: &Backend) {
    let store: std::sync::Arc<dyn Store> = b.store.clone();
    insert_run(b, "planner", "t", 1, "x").await;
    let mut jobs = Vec::new();
    for _ in 0..4 {
        jobs.push(
            store
                .create_grading_job(job(RunSelection::default()))
                .await
                .unwrap()
                .id,
        );
    }
    let mut claimers = Vec::new();
    for n in 0..6 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            store
                .claim_grading_job(&format!("instance-{n}"), Duration::from_secs(60))
                .await
                .unwrap()
                .map(|job| job.id)
        }));
    }
    let mut claimed = Vec::new();
    for claimer in claimers {
        if let Some(id) = claimer.await.unwrap() {
            claimed.push(id);
        }
    }
    claimed.sort();
    jobs.sort();
    assert_eq!(claimed, jobs, "each job claimed exactly once");
}

async fn auto_grading_queue_marks_runs_unless_an_outcome_arrived(b: &Backend) {
    let store = b.store.as_ref();
    let first = insert_run(b, "planner", "t1", 1, "x").await;
    let second = insert_run(b, "planner", "t2", 1, "y").await;
    let queue = store.runs_to_auto_grade(10).await.unwrap();
    assert_eq!(
        queue.iter().map(|r| r.id).collect::<Vec<_>>(),
        [first, second]
    );
    // An outcome arrives for the second run while it is being graded.
    exec_on_run(
        b,
        "UPDATE prompt_optimization_data SET tests_passed = TRUE, outcome_at = created_at \
         WHERE id = $1",
        second,
    )
    .await;
    let chunk: Vec<GradedRun> = queue
        .iter()
        .map(|run| graded(run, vec![verdict("exact", true)]))
        .collect();
    store.record_auto_grades(&chunk).await.unwrap();
    let left = store.runs_to_auto_grade(10).await.unwrap();
    assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), [second]);
    assert_eq!(left[0].tests_passed, Some(true));
    let chunk: Vec<GradedRun> = left
        .iter()
        .map(|run| graded(run, vec![verdict("exact", true)]))
        .collect();
    store.record_auto_grades(&chunk).await.unwrap();
    assert!(store.runs_to_auto_grade(10).await.unwrap().is_empty());
    assert_eq!(
        count(b, "grading_results").await,
        0,
        "automatic verdicts live on the runs"
    );
}

async fn jobs_are_listed_newest_first_per_prompt_or_all(b: &Backend) {
    let store = b.store.as_ref();
    let of = |prompt: &str| JobListFilter {
        prompt_id: Some(prompt.into()),
        ..JobListFilter::default()
    };
    assert!(
        store
            .list_grading_jobs(&JobListFilter::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let first = store
        .create_grading_job(job(RunSelection::default()))
        .await
        .unwrap();
    let second = store
        .create_grading_job(NewGradingJob {
            prompt_id: "coder".into(),
            ..job(RunSelection::default())
        })
        .await
        .unwrap();
    let third = store
        .create_grading_job(job(RunSelection::default()))
        .await
        .unwrap();
    let ids =
        |jobs: Vec<crate::store::GradingJob>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .list_grading_jobs(&JobListFilter::default(), 10)
            .await
            .unwrap()),
        [third.id, second.id, first.id]
    );
    assert_eq!(
        ids(store.list_grading_jobs(&of("planner"), 10).await.unwrap()),
        [third.id, first.id]
    );
    assert_eq!(
        ids(store
            .list_grading_jobs(&JobListFilter::default(), 1)
            .await
            .unwrap()),
        [third.id]
    );
    assert!(
        store
            .list_grading_jobs(&of("nobody"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let kind = |kind| JobListFilter {
        kind: Some(kind),
        ..JobListFilter::default()
    };
    assert_eq!(
        ids(store
            .list_grading_jobs(&kind(JobKind::Grading), 10)
            .await
            .unwrap()),
        [third.id, second.id, first.id]
    );
    assert!(
        store
            .list_grading_jobs(&kind(JobKind::Evaluation), 10)
            .await
            .unwrap()
            .is_empty(),
        "no evaluation was created"
    );
    let after_third = JobListFilter {
        before: Some(third.id),
        ..of("planner")
    };
    assert_eq!(
        ids(store.list_grading_jobs(&after_third, 10).await.unwrap()),
        [first.id]
    );
    store.cancel_grading_job(second.id).await.unwrap();
    let cancelled = JobListFilter {
        status: Some(JobStatus::Cancelled),
        kind: Some(JobKind::Grading),
        ..JobListFilter::default()
    };
    assert_eq!(
        ids(store.list_grading_jobs(&cancelled, 10).await.unwrap()),
        [second.id]
    );
}
