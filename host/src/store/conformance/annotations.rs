//! Conformance of the annotation domain: person over rule both ways, the append-only history,
//! the taxonomy check, the figures kept current, the queue's order and pages, and the numbers of
//! the failure-mode counts table. Runs and outcomes are recorded through the runs domain.

use uuid::Uuid;

use super::{Backend, assert_not_found};
use crate::store::testing::execute_raw;
use crate::store::{
    AnnotateOutcome, AnnotationAction, AnnotationSource, ClearOutcome, NewAnnotation, NewOutcome,
    NewRun, NewVersion, QueueCursor, Rating, StoreError, VersionSource,
};

conformance!(
    a_person_replaces_a_rule_and_a_rule_never_replaces_a_person,
    history_is_append_only_and_oldest_first,
    a_failure_mode_outside_the_taxonomy_lists_the_allowed_codes_and_writes_nothing,
    an_unknown_run_is_not_found,
    annotations_keep_the_version_figures_current,
    failure_modes_are_added_once_in_the_schema_format,
    the_queue_lists_unannotated_runs_failed_first_then_newest_in_pages,
    failure_mode_counts_give_count_and_share_of_failed_runs,
);

/// A run as the tests need it.
#[derive(Clone, Copy)]
struct RunSpec<'a> {
    prompt: &'a str,
    version: i64,
    tests_passed: Option<bool>,
    graders_passed: Option<bool>,
    origin: &'a str,
}

const PLANNER_RUN: RunSpec<'static> = RunSpec {
    prompt: "planner",
    version: 1,
    tests_passed: None,
    graders_passed: None,
    origin: "production",
};

/// Records the run (100 tokens) and its outcome through the runs domain; what only the graders
/// and evaluations write (`graders_passed`, `origin`) is set with raw SQL.
async fn insert_run(b: &Backend, spec: RunSpec<'_>) -> Uuid {
    let task_id = format!("task-{}", Uuid::now_v7());
    let recorded = b
        .store
        .record_runs(&[NewRun {
            prompt_id: spec.prompt.to_owned(),
            version: Some(spec.version),
            task_id: task_id.clone(),
            attempt: 1,
            root_task_id: None,
            input: serde_json::Map::new(),
            output: "the output".to_owned(),
            model: None,
            tokens_in: Some(60),
            tokens_out: Some(40),
            latency_ms: None,
        }])
        .await
        .expect("record a run");
    let id = recorded[0].id;
    if spec.tests_passed.is_some() {
        b.store
            .report_outcomes(&[NewOutcome {
                task_id,
                tests_passed: spec.tests_passed,
                pr_merged: None,
                expected_files: None,
                failure_signature: None,
            }])
            .await
            .expect("report the outcome");
    }
    let graders = match spec.graders_passed {
        None => "NULL",
        Some(true) => "TRUE",
        Some(false) => "FALSE",
    };
    execute_raw(
        &b.url,
        &format!(
            "UPDATE prompt_optimization_data SET graders_passed = {graders}, origin = '{}' \
             WHERE id = '{id}'",
            spec.origin
        ),
    )
    .await
    .expect("set graders_passed and origin");
    id
}

fn by(
    source: AnnotationSource,
    actor: &str,
    rating: Rating,
    failure_mode: Option<&str>,
) -> NewAnnotation {
    NewAnnotation {
        rating,
        output_feedback: Some(format!("{actor} says {}", rating.as_str())),
        failure_mode: failure_mode.map(str::to_owned),
        source,
        actor: actor.to_owned(),
    }
}

fn person(rating: Rating, failure_mode: Option<&str>) -> NewAnnotation {
    by(AnnotationSource::Person, "alice", rating, failure_mode)
}

fn rule(rating: Rating, failure_mode: Option<&str>) -> NewAnnotation {
    by(AnnotationSource::Rule, "tests_failed", rating, failure_mode)
}

async fn a_person_replaces_a_rule_and_a_rule_never_replaces_a_person(b: &Backend) {
    let store = b.store.as_ref();
    let run = insert_run(b, PLANNER_RUN).await;

    let AnnotateOutcome::Set(by_rule) = store
        .annotate(run, rule(Rating::Bad, Some("wrong_files")))
        .await
        .unwrap()
    else {
        panic!("a rule annotates a run nobody annotated");
    };
    assert_eq!(by_rule.source, AnnotationSource::Rule);
    assert_eq!(by_rule.annotated_by, "tests_failed");

    // A person's replaces the rule's.
    let AnnotateOutcome::Set(by_person) = store
        .annotate(run, person(Rating::Good, None))
        .await
        .unwrap()
    else {
        panic!("a person replaces a rule");
    };
    assert_eq!(by_person.rating, Rating::Good);
    assert_eq!(by_person.failure_mode, None);
    assert_eq!(by_person.source, AnnotationSource::Person);
    assert_eq!(
        store.current_annotation(run).await.unwrap(),
        Some(by_person.clone())
    );

    // A rule neither replaces nor clears it, and writes no history.
    assert_eq!(
        store
            .annotate(run, rule(Rating::Bad, Some("wrong_files")))
            .await
            .unwrap(),
        AnnotateOutcome::Kept(by_person.clone())
    );
    assert_eq!(
        store
            .clear_annotation(run, "tests_failed", AnnotationSource::Rule)
            .await
            .unwrap(),
        ClearOutcome::Kept(by_person.clone())
    );
    assert_eq!(
        store.current_annotation(run).await.unwrap(),
        Some(by_person.clone())
    );
    assert_eq!(store.annotation_history(run).await.unwrap().len(), 2);

    // Another person replaces a person's.
    let AnnotateOutcome::Set(by_bob) = store
        .annotate(
            run,
            by(
                AnnotationSource::Person,
                "bob",
                Rating::Bad,
                Some("wrong_complexity"),
            ),
        )
        .await
        .unwrap()
    else {
        panic!("a person replaces a person");
    };
    assert_eq!(by_bob.annotated_by, "bob");

    // Once a person clears it, a rule may annotate again.
    assert_eq!(
        store
            .clear_annotation(run, "alice", AnnotationSource::Person)
            .await
            .unwrap(),
        ClearOutcome::Cleared
    );
    assert_eq!(store.current_annotation(run).await.unwrap(), None);
    assert_eq!(
        store
            .clear_annotation(run, "alice", AnnotationSource::Person)
            .await
            .unwrap(),
        ClearOutcome::NothingToClear,
        "clearing nothing writes nothing"
    );
    assert!(matches!(
        store.annotate(run, rule(Rating::Bad, None)).await.unwrap(),
        AnnotateOutcome::Set(_)
    ));
    let actions: Vec<(AnnotationAction, AnnotationSource, String)> = store
        .annotation_history(run)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.source, r.actor))
        .collect();
    use AnnotationAction::{Clear, Set};
    use AnnotationSource::{Person, Rule};
    assert_eq!(
        actions,
        [
            (Set, Rule, "tests_failed".to_owned()),
            (Set, Person, "alice".to_owned()),
            (Set, Person, "bob".to_owned()),
            (Clear, Person, "alice".to_owned()),
            (Set, Rule, "tests_failed".to_owned()),
        ]
    );
}

async fn history_is_append_only_and_oldest_first(b: &Backend) {
    let store = b.store.as_ref();
    let run = insert_run(b, PLANNER_RUN).await;
    let other = insert_run(b, PLANNER_RUN).await;
    store
        .annotate(run, person(Rating::Bad, Some("incomplete_plan")))
        .await
        .unwrap();
    store
        .annotate(other, person(Rating::Good, None))
        .await
        .unwrap();
    store
        .clear_annotation(run, "carol", AnnotationSource::Person)
        .await
        .unwrap();
    let history = store.annotation_history(run).await.unwrap();
    assert_eq!(history.len(), 2, "only this run's entries");
    let set = &history[0];
    assert_eq!(set.run_id, run);
    assert_eq!(set.action, AnnotationAction::Set);
    assert_eq!(set.rating, Some(Rating::Bad));
    assert_eq!(set.failure_mode.as_deref(), Some("incomplete_plan"));
    assert_eq!(set.output_feedback.as_deref(), Some("alice says bad"));
    assert_eq!(set.actor, "alice");
    let clear = &history[1];
    assert_eq!(clear.action, AnnotationAction::Clear);
    assert_eq!(
        (&clear.rating, &clear.failure_mode, &clear.output_feedback),
        (&None, &None, &None)
    );
    assert_eq!(clear.actor, "carol");
    assert!(clear.created_at >= set.created_at);

    // The schema itself refuses rewriting or removing history, whoever asks.
    for statement in [
        "UPDATE annotations SET actor = 'mallory'",
        "DELETE FROM annotations",
    ] {
        let error = execute_raw(&b.url, statement)
            .await
            .expect_err("the append-only trigger refuses it");
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(store.annotation_history(run).await.unwrap(), history);
}

async fn a_failure_mode_outside_the_taxonomy_lists_the_allowed_codes_and_writes_nothing(
    b: &Backend,
) {
    let store = b.store.as_ref();
    let run = insert_run(b, PLANNER_RUN).await;
    // `syntax_error` is the coder's, not the planner's.
    match store
        .annotate(run, person(Rating::Bad, Some("syntax_error")))
        .await
    {
        Err(StoreError::InvalidFailureMode {
            prompt,
            code,
            allowed,
        }) => {
            assert_eq!(prompt, "planner");
            assert_eq!(code, "syntax_error");
            assert_eq!(
                allowed,
                [
                    "incomplete_plan",
                    "missing_acceptance_criteria",
                    "wrong_complexity",
                    "wrong_files"
                ]
            );
        }
        other => panic!("expected InvalidFailureMode, got {other:?}"),
    }
    assert_eq!(store.current_annotation(run).await.unwrap(), None);
    assert!(store.annotation_history(run).await.unwrap().is_empty());
}

async fn an_unknown_run_is_not_found(b: &Backend) {
    let store = b.store.as_ref();
    let ghost = Uuid::now_v7();
    let subject = format!("run {ghost}");
    assert_not_found(
        store.annotate(ghost, person(Rating::Bad, None)).await,
        &subject,
    );
    assert_not_found(
        store
            .clear_annotation(ghost, "alice", AnnotationSource::Person)
            .await,
        &subject,
    );
    assert_not_found(store.annotation_history(ghost).await, &subject);
    assert_not_found(store.current_annotation(ghost).await, &subject);
}

async fn annotations_keep_the_version_figures_current(b: &Backend) {
    let store = b.store.as_ref();
    let unknown_tests = insert_run(b, PLANNER_RUN).await;
    let passed_tests = insert_run(
        b,
        RunSpec {
            tests_passed: Some(true),
            ..PLANNER_RUN
        },
    )
    .await;
    let success_rate = || async { store.get_version("planner", 1).await.unwrap().success_rate };

    store
        .annotate(unknown_tests, person(Rating::Bad, None))
        .await
        .unwrap();
    let version = store.get_version("planner", 1).await.unwrap();
    assert_eq!(version.tasks_executed, 2);
    assert_eq!(version.avg_tokens, Some(100));
    assert_eq!(version.success_rate, Some(50.0), "one bad, one passed");

    // The tests decide where known: a bad rating does not fail a run whose tests passed.
    store
        .annotate(passed_tests, person(Rating::Bad, None))
        .await
        .unwrap();
    assert_eq!(success_rate().await, Some(50.0));

    store
        .annotate(unknown_tests, person(Rating::Good, None))
        .await
        .unwrap();
    assert_eq!(success_rate().await, Some(100.0));

    store
        .clear_annotation(unknown_tests, "alice", AnnotationSource::Person)
        .await
        .unwrap();
    assert_eq!(
        success_rate().await,
        Some(100.0),
        "a run whose success is unknown again is not counted"
    );
}

async fn failure_modes_are_added_once_in_the_schema_format(b: &Backend) {
    let store = b.store.as_ref();
    let added = store
        .add_failure_mode(
            "planner",
            "ignored_constraints",
            "The plan ignores a constraint",
        )
        .await
        .unwrap();
    assert_eq!(added.code, "ignored_constraints");
    let codes: Vec<String> = store
        .failure_modes("planner")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.code)
        .collect();
    assert!(
        codes.contains(&"ignored_constraints".to_owned()),
        "{codes:?}"
    );
    assert!(
        !store
            .failure_modes("coder")
            .await
            .unwrap()
            .iter()
            .any(|m| m.code == "ignored_constraints"),
        "taxonomies are per prompt"
    );

    let conflict = |result: crate::store::Result<_>, constraint: &str| match result {
        Err(StoreError::Conflict { constraint: named }) => assert_eq!(named, constraint),
        other => panic!("expected a conflict on {constraint}, got {other:?}"),
    };
    conflict(
        store
            .add_failure_mode("planner", "ignored_constraints", "again")
            .await,
        "failure_modes_pkey",
    );
    for bad in ["Upper", "1st", "has-dash", "", &"x".repeat(51)] {
        conflict(
            store.add_failure_mode("planner", bad, "bad code").await,
            "failure_modes_code_format",
        );
    }
    assert_not_found(
        store.add_failure_mode("ghost", "fine", "no prompt").await,
        "prompt ghost",
    );
    assert_eq!(
        store.failure_modes("planner").await.unwrap().len(),
        codes.len(),
        "refused codes are not stored"
    );

    // A new code is usable at once.
    let run = insert_run(b, PLANNER_RUN).await;
    let outcome = store
        .annotate(run, person(Rating::Bad, Some("ignored_constraints")))
        .await
        .unwrap();
    assert_eq!(
        outcome.current().failure_mode.as_deref(),
        Some("ignored_constraints")
    );
}

async fn the_queue_lists_unannotated_runs_failed_first_then_newest_in_pages(b: &Backend) {
    let store = b.store.as_ref();
    let with = |tests_passed, graders_passed| RunSpec {
        tests_passed,
        graders_passed,
        ..PLANNER_RUN
    };
    // In recording order; ids are UUIDv7, so later is newer.
    let passed = insert_run(b, with(Some(true), None)).await;
    let tests_failed = insert_run(b, with(Some(false), None)).await;
    let unknown = insert_run(b, with(None, None)).await;
    let graders_failed = insert_run(b, with(None, Some(false))).await;
    let evaluation = insert_run(
        b,
        RunSpec {
            origin: "evaluation",
            ..with(Some(false), None)
        },
    )
    .await;
    let person_annotated = insert_run(b, with(Some(false), None)).await;
    let rule_annotated = insert_run(b, with(Some(false), Some(true))).await;
    let _other_prompt = insert_run(
        b,
        RunSpec {
            prompt: "coder",
            ..with(Some(false), None)
        },
    )
    .await;
    store
        .annotate(person_annotated, person(Rating::Bad, None))
        .await
        .unwrap();
    store
        .annotate(rule_annotated, rule(Rating::Bad, Some("wrong_files")))
        .await
        .unwrap();
    let _ = evaluation;

    let expected = [
        rule_annotated,
        graders_failed,
        tests_failed,
        unknown,
        passed,
    ];
    let all = store.annotation_queue("planner", 100, None).await.unwrap();
    let ids: Vec<Uuid> = all.items.iter().map(|r| r.id).collect();
    assert_eq!(ids, expected);
    assert_eq!(all.next_cursor, None);
    assert_eq!(
        (all.waiting, all.ahead),
        (5, 0),
        "the queue's size and place"
    );
    let failed: Vec<bool> = all.items.iter().map(|r| r.failed).collect();
    assert_eq!(failed, [true, true, true, false, false]);
    assert_eq!(
        all.items[0].rating,
        Some(Rating::Bad),
        "a rule's rating shows"
    );
    assert_eq!(all.items[0].failure_mode.as_deref(), Some("wrong_files"));

    // Pages of two walk the same order, each cursor going on where the last page stopped.
    let mut walked = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.annotation_queue("planner", 2, cursor).await.unwrap();
        assert_eq!(
            (page.waiting, page.ahead),
            (5, 2 * pages),
            "page {pages}: every run waiting, two per page before it"
        );
        pages += 1;
        assert!(page.items.len() <= 2);
        walked.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next.parse::<QueueCursor>().unwrap()),
            None => break,
        }
    }
    assert_eq!(walked, expected);
    assert_eq!(pages, 3);

    // A run recorded after a page was read does not shift the pages already read.
    let first = store.annotation_queue("planner", 2, None).await.unwrap();
    insert_run(b, with(Some(false), None)).await;
    let next = first.next_cursor.unwrap().parse::<QueueCursor>().unwrap();
    let second = store
        .annotation_queue("planner", 2, Some(next))
        .await
        .unwrap();
    let ids: Vec<Uuid> = second.items.iter().map(|r| r.id).collect();
    assert_eq!(ids, [tests_failed, unknown]);
    // The new failed run is the newest failed one: it waits before the cursor.
    assert_eq!((second.waiting, second.ahead), (6, 3));

    assert_not_found(
        store.annotation_queue("ghost", 10, None).await,
        "prompt ghost",
    );
}

async fn failure_mode_counts_give_count_and_share_of_failed_runs(b: &Backend) {
    let store = b.store.as_ref();
    let v2 = store
        .create_version(NewVersion {
            prompt_id: "planner".to_owned(),
            content: "Plan {{task}} carefully".to_owned(),
            source: VersionSource::Manual,
            parent_version: Some(1),
            notes: None,
            created_by: Some("alice".to_owned()),
        })
        .await
        .unwrap()
        .version;
    let run = |tests_passed, version| RunSpec {
        tests_passed,
        version,
        ..PLANNER_RUN
    };
    // Version 1: failed with a code, failed without one, failed by its rating alone,
    // passed tests despite a bad rating (not failed), unknown (not failed).
    let coded = insert_run(b, run(Some(false), 1)).await;
    let _uncoded = insert_run(b, run(Some(false), 1)).await;
    let rated_bad = insert_run(b, run(None, 1)).await;
    let passed = insert_run(b, run(Some(true), 1)).await;
    let _unknown = insert_run(b, run(None, 1)).await;
    let evaluation = insert_run(
        b,
        RunSpec {
            origin: "evaluation",
            ..run(Some(false), 1)
        },
    )
    .await;
    // Version 2: one failed run with a code.
    let coded_v2 = insert_run(b, run(Some(false), v2)).await;
    for (id, code) in [
        (coded, "wrong_files"),
        (rated_bad, "incomplete_plan"),
        (passed, "wrong_files"),
        (evaluation, "wrong_files"),
        (coded_v2, "wrong_files"),
    ] {
        store
            .annotate(id, person(Rating::Bad, Some(code)))
            .await
            .unwrap();
    }

    let table = store.failure_mode_counts("planner", None).await.unwrap();
    assert_eq!(table.prompt_id, "planner");
    assert_eq!(table.version, None);
    assert_eq!(table.failed_runs, 4);
    let rows: Vec<(&str, i64, Option<f64>)> = table
        .codes
        .iter()
        .map(|c| (c.code.as_str(), c.count, c.share))
        .collect();
    assert_eq!(
        rows,
        [
            ("incomplete_plan", 1, Some(0.25)),
            ("missing_acceptance_criteria", 0, Some(0.0)),
            ("wrong_complexity", 0, Some(0.0)),
            ("wrong_files", 2, Some(0.5)),
        ]
    );
    assert!(table.codes.iter().all(|c| !c.description.is_empty()));
    assert_eq!((table.uncoded, table.uncoded_share), (1, Some(0.25)));

    let v1 = store.failure_mode_counts("planner", Some(1)).await.unwrap();
    assert_eq!(v1.version, Some(1));
    assert_eq!(v1.failed_runs, 3);
    let wrong_files = v1.codes.iter().find(|c| c.code == "wrong_files").unwrap();
    assert_eq!(wrong_files.count, 1);
    assert!((wrong_files.share.unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(v1.uncoded, 1);

    // No failed run: every code listed, counts zero, shares absent.
    let coder = store.failure_mode_counts("coder", None).await.unwrap();
    assert_eq!(coder.failed_runs, 0);
    assert_eq!(coder.codes.len(), 4);
    assert!(
        coder
            .codes
            .iter()
            .all(|c| c.count == 0 && c.share.is_none())
    );
    assert_eq!((coder.uncoded, coder.uncoded_share), (0, None));

    assert_not_found(
        store.failure_mode_counts("planner", Some(99)).await,
        "version 99 of prompt planner",
    );
    assert_not_found(
        store.failure_mode_counts("ghost", None).await,
        "prompt ghost",
    );
}
