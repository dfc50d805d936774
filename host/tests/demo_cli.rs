//! `flywheel demo` as a process: on a new directory it runs the whole loop and leaves the data
//! it says it made (read back from the SQLite file, not from the printout); a directory that
//! holds anything is refused and left as it was.

mod common;

use common::{fails, flywheel, ok};
use flywheel::store::{JobKind, JobListFilter, RunFilter, RunOrigin, open_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_whole_loop_and_leaves_its_data() {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("demo-data");
    let printed = ok(flywheel(&dir).arg("demo"));
    assert!(
        printed.contains(&format!("flywheel serve --data-dir {}", dir.display())),
        "{printed}"
    );

    let url = format!("sqlite://{}", dir.join("flywheel.db").display());
    let store = open_store(&url).await.expect("the demo's database opens");

    // The A/B test concluded with ship_b, and deployed v2 as the test.
    let tests = store.list_ab_tests("planner").await.expect("tests");
    assert_eq!(tests.len(), 1, "{tests:?}");
    let test = &tests[0];
    assert_eq!((test.version_a, test.version_b), (1, 2));
    assert_eq!(test.status, "completed", "{test:?}");
    assert_eq!(test.decision.as_deref(), Some("ship_b"), "{test:?}");
    assert_eq!(
        store
            .active_version("planner")
            .await
            .expect("active")
            .version,
        2
    );
    let history = store.deploy_history("planner").await.expect("history");
    let last = history
        .iter()
        .max_by_key(|h| h.created_at)
        .expect("a deploy");
    assert_eq!(last.to_version, 2);
    assert_eq!(last.actor, format!("ab-test:{}", test.id));

    // v2 is the optimizer's: the stored optimization completed and created it, with the
    // careful rule the critiques point to, its source `optimizer`, parent v1.
    let runs = store
        .list_optimizations(Some("planner"), 10)
        .await
        .expect("optimizations");
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run.status.as_str(), "completed", "{run:?}");
    assert_eq!(run.created_version, Some(2), "{run:?}");
    assert!(run.report.is_some(), "{run:?}");
    let v2 = store.get_version("planner", 2).await.expect("v2");
    assert_eq!(v2.source.as_str(), "optimizer", "{v2:?}");
    assert_eq!(v2.parent_version, Some(1), "{v2:?}");
    assert!(
        v2.content
            .contains(flywheel::demo::model::CAREFUL_INSTRUCTION),
        "{}",
        v2.content
    );

    // The evaluation of v1 against v2 completed on the dataset's validation rows.
    let evals = store
        .list_evaluations(&planner_jobs(None), 10)
        .await
        .expect("evaluations");
    assert_eq!(evals.len(), 1);
    let eval = &evals[0];
    assert_eq!(eval.job.status.as_str(), "completed", "{eval:?}");
    assert!(
        eval.job.total > 0 && eval.job.processed == eval.job.total,
        "{eval:?}"
    );

    // The dataset was snapshotted from the first runs; the exports were written.
    let dataset = store
        .get_dataset(flywheel::demo::DATASET)
        .await
        .expect("dataset");
    let version = &dataset.versions[0];
    assert_eq!(version.row_count, 120);
    assert!(version.validation_count > 0 && version.train_count > 0);
    for file in [
        "planner-demo.jsonl",
        "planner-demo.eval.json",
        "planner-demo.promptfoo.json",
    ] {
        let path = dir.join("exports").join(file);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 0, "{} missing or empty", path.display());
    }
    let jsonl = std::fs::read_to_string(dir.join("exports/planner-demo.jsonl")).expect("jsonl");
    assert_eq!(jsonl.lines().count(), 120);

    // Runs with outcomes, a person's annotations with failure modes, a finished grading job.
    let runs = store
        .list_runs(
            &RunFilter {
                prompt_id: Some("planner".to_owned()),
                origin: Some(RunOrigin::Production),
                ..RunFilter::default()
            },
            5000,
        )
        .await
        .expect("runs");
    // 120 before the test, at least a round of 300 during it.
    assert!(runs.len() >= 420, "{} runs", runs.len());
    assert!(runs.iter().all(|r| r.outcome.is_some()));
    let coded = runs
        .iter()
        .filter_map(|r| r.annotation.as_ref())
        .filter(|a| {
            a.failure_mode.as_deref() == Some("wrong_files")
                && a.annotated_by.as_deref() == Some("reviewer")
        })
        .count();
    assert!(coded > 0, "no run coded wrong_files by the reviewer");
    let jobs = store
        .list_grading_jobs(&planner_jobs(Some(JobKind::Grading)), 10)
        .await
        .expect("jobs");
    assert!(
        jobs.iter().any(|j| j.status.as_str() == "completed"),
        "{jobs:?}"
    );
}

/// The planner's jobs of `kind` (all kinds when `None`).
fn planner_jobs(kind: Option<JobKind>) -> JobListFilter {
    JobListFilter {
        prompt_id: Some("planner".into()),
        kind,
        ..JobListFilter::default()
    }
}

#[test]
fn a_data_directory_that_holds_anything_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    let error = fails(flywheel(dir.path()).arg("demo"));
    assert!(
        error.contains("is not empty") && error.contains("fresh data directory"),
        "{error}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["notes.txt"]);

    // Another database than the directory's own file is refused too.
    let empty = tempfile::tempdir().expect("temp dir");
    let error = fails(
        flywheel(empty.path())
            .env("DATABASE_URL", "sqlite:///tmp/elsewhere.db")
            .arg("demo"),
    );
    assert!(error.contains("DATABASE_URL"), "{error}");
}
