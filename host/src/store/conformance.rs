//! The store conformance suite: every case is one async function over a [`Backend`], and the
//! `conformance!` macro runs each against a fresh SQLite file (`store::conformance::sqlite::*`)
//! and a fresh PostgreSQL database (`store::conformance::postgres::*`, needs the server named by
//! `FLYWHEEL_TEST_POSTGRES_URL`). A behaviour is only "the store's" if both backends pass it.

use std::collections::BTreeSet;
use std::sync::Arc;

use sqlx::error::ErrorKind;

use super::testing::{PgTestDb, TempDirGuard, execute_raw, postgres_fresh, sqlite_temp};
use super::{
    DeployAction, NewGraderDefinition, NewVersion, PromptVersion, PutOutcome, SEED_ACTOR, Store,
    StoreError, VersionSource, open_store,
};
use crate::prompts::seeds::default_seeds;

/// A migrated, seeded store and the URL of its database (for raw SQL).
struct Backend {
    store: Arc<dyn Store>,
    url: String,
    postgres: bool,
    _sqlite_dir: Option<TempDirGuard>,
    _postgres_db: Option<PgTestDb>,
}

async fn sqlite_backend() -> Backend {
    let (dir, url) = sqlite_temp();
    let store = open_store(&url).await.expect("open sqlite store");
    store.seed(&default_seeds()).await.expect("seed");
    Backend {
        store,
        url,
        postgres: false,
        _sqlite_dir: Some(dir),
        _postgres_db: None,
    }
}

async fn postgres_backend() -> Backend {
    let db = postgres_fresh().await;
    let url = db.url().to_owned();
    let store = open_store(&url).await.expect("open postgres store");
    store.seed(&default_seeds()).await.expect("seed");
    Backend {
        store,
        url,
        postgres: true,
        _sqlite_dir: None,
        _postgres_db: Some(db),
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = super::sqlite_backend().await;
                    super::$case(&backend).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = super::postgres_backend().await;
                    super::$case(&backend).await;
                }
            )*
        }
    };
}

conformance!(
    seed_is_idempotent_and_never_touches_existing_prompts,
    list_returns_every_seeded_prompt_with_its_active_version,
    versions_are_numbered_max_plus_one,
    versions_are_immutable_in_the_schema,
    unknown_prompt_or_version_is_not_found,
    unknown_parent_version_is_not_found_and_creates_nothing,
    deploy_makes_exactly_that_version_active,
    deploying_the_active_version_is_a_no_op,
    deploy_of_unknown_version_is_not_found_and_changes_nothing,
    rollback_walks_back_through_deploys,
    rollback_without_history_is_invalid_state_and_changes_nothing,
    history_records_from_to_actor_and_time,
    failure_modes_are_seeded,
    concurrent_deploys_leave_exactly_one_active_version,
    concurrent_create_version_numbers_are_distinct_and_consecutive,
    schema_refuses_two_active_versions,
    concurrent_seeding_writes_each_prompt_once,
    grader_put_creates_then_replaces_keeping_id_and_creator,
    grader_of_unknown_prompt_is_not_found_and_writes_nothing,
    grader_list_get_enable_and_delete,
    grader_constraints_are_named,
    grader_seeding_is_idempotent_and_never_touches_existing,
    concurrent_grader_puts_leave_one_row,
    concurrent_grader_seeding_writes_each_definition_once,
);

fn new_version(prompt_id: &str, content: &str) -> NewVersion {
    NewVersion {
        prompt_id: prompt_id.to_owned(),
        content: content.to_owned(),
        source: VersionSource::Manual,
        parent_version: None,
        notes: None,
        created_by: Some("tester".to_owned()),
    }
}

async fn active_numbers(store: &dyn Store, prompt_id: &str) -> Vec<i64> {
    store
        .list_versions(prompt_id)
        .await
        .expect("list versions")
        .iter()
        .filter(|v| v.is_active)
        .map(|v| v.version)
        .collect()
}

fn assert_not_found<T: std::fmt::Debug>(result: super::Result<T>, what: &str) {
    match result {
        Err(StoreError::NotFound(message)) => {
            assert!(
                message.contains(what),
                "NotFound({message}) should name {what}"
            )
        }
        other => panic!("expected NotFound naming {what}, got {other:?}"),
    }
}

async fn seed_is_idempotent_and_never_touches_existing_prompts(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_version(new_version("planner", "v2"))
        .await
        .unwrap();
    store.deploy("planner", 2, "alice").await.unwrap();
    store.seed(&default_seeds()).await.unwrap();
    store.seed(&default_seeds()).await.unwrap();

    let listed = store.list_prompts().await.unwrap();
    assert_eq!(listed.len(), 4);
    let planner = listed.iter().find(|p| p.prompt.id == "planner").unwrap();
    assert_eq!(
        planner.versions.len(),
        2,
        "seeding again must not add versions"
    );
    assert_eq!(
        planner.active_version,
        Some(2),
        "seeding again must not redeploy"
    );
    let coder = listed.iter().find(|p| p.prompt.id == "coder").unwrap();
    assert_eq!(coder.versions.len(), 1);
    assert_eq!(store.deploy_history("coder").await.unwrap().len(), 1);
    assert_eq!(store.failure_modes("coder").await.unwrap().len(), 4);
}

async fn list_returns_every_seeded_prompt_with_its_active_version(b: &Backend) {
    let listed = b.store.list_prompts().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|p| p.prompt.id.as_str()).collect();
    assert_eq!(ids, ["coder", "fixer", "planner", "reviewer"]);
    let seeds = default_seeds();
    for entry in &listed {
        let seed = seeds
            .iter()
            .find(|s| s.prompt.id == entry.prompt.id)
            .unwrap();
        assert_eq!(entry.active_version, Some(1));
        assert_eq!(entry.prompt.variables, seed.prompt.variables);
        assert_eq!(entry.prompt.description, seed.prompt.description);
        let [v1] = entry.versions.as_slice() else {
            panic!("{}: expected exactly one version", entry.prompt.id)
        };
        assert_eq!(v1.version, 1);
        assert!(v1.is_active);
        assert_eq!(v1.source, VersionSource::Seed);
        assert_eq!(v1.content, seed.content);
        assert_eq!(v1.created_by.as_deref(), Some(SEED_ACTOR));
        assert_eq!(*v1, b.store.active_version(&entry.prompt.id).await.unwrap());
        assert_eq!(
            entry.prompt,
            b.store.get_prompt(&entry.prompt.id).await.unwrap()
        );
    }
}

async fn versions_are_numbered_max_plus_one(b: &Backend) {
    let store = b.store.as_ref();
    let mut created: Vec<PromptVersion> = Vec::new();
    for i in 0..3 {
        let mut new = new_version("coder", &format!("content {i}"));
        new.parent_version = Some(1);
        new.notes = Some(format!("note {i}"));
        created.push(store.create_version(new).await.unwrap());
    }
    let numbers: Vec<i64> = created.iter().map(|v| v.version).collect();
    assert_eq!(numbers, [2, 3, 4]);
    for v in &created {
        assert!(!v.is_active, "a new version is inactive");
        assert_eq!(v.source, VersionSource::Manual);
        assert_eq!(v.parent_version, Some(1));
        assert_eq!(v.created_by.as_deref(), Some("tester"));
        assert_eq!(v.tasks_executed, 0);
        // What create returned is exactly what is stored.
        assert_eq!(*v, store.get_version("coder", v.version).await.unwrap());
    }
    let listed: Vec<i64> = store
        .list_versions("coder")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, [1, 2, 3, 4]);
    // Other prompts number independently.
    assert_eq!(
        store
            .create_version(new_version("fixer", "x"))
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(active_numbers(store, "coder").await, [1]);
}

async fn versions_are_immutable_in_the_schema(b: &Backend) {
    let store = b.store.as_ref();
    let v2 = store
        .create_version(new_version("planner", "original"))
        .await
        .unwrap();
    let refused = execute_raw(
        &b.url,
        "UPDATE prompt_versions SET content = 'rewritten' WHERE prompt_id = 'planner' AND version = 2",
    )
    .await;
    let error = refused.expect_err("the schema must refuse changing a version's content");
    if b.postgres {
        let db = error.as_database_error().expect("a database error");
        assert_eq!(db.constraint(), Some("prompt_versions_immutable"));
    }
    assert_eq!(store.get_version("planner", 2).await.unwrap(), v2);
    // The activation flag and the statistics stay writable.
    execute_raw(
        &b.url,
        "UPDATE prompt_versions SET tasks_executed = 3 WHERE prompt_id = 'planner' AND version = 2",
    )
    .await
    .expect("statistics are mutable");
    assert_eq!(
        store
            .get_version("planner", 2)
            .await
            .unwrap()
            .tasks_executed,
        3
    );
}

async fn unknown_prompt_or_version_is_not_found(b: &Backend) {
    let store = b.store.as_ref();
    assert_not_found(store.get_prompt("nope").await, "prompt nope");
    assert_not_found(store.list_versions("nope").await, "prompt nope");
    assert_not_found(store.get_version("nope", 1).await, "prompt nope");
    assert_not_found(
        store.get_version("planner", 99).await,
        "version 99 of prompt planner",
    );
    assert_not_found(
        store.get_version("planner", 0).await,
        "version 0 of prompt planner",
    );
    assert_not_found(store.active_version("nope").await, "prompt nope");
    assert_not_found(store.deploy_history("nope").await, "prompt nope");
    assert_not_found(store.failure_modes("nope").await, "prompt nope");
    assert_not_found(
        store.create_version(new_version("nope", "x")).await,
        "prompt nope",
    );
    assert_not_found(store.deploy("nope", 1, "alice").await, "prompt nope");
    assert_not_found(store.rollback("nope", "alice").await, "prompt nope");
    assert_eq!(
        store.list_prompts().await.unwrap().len(),
        4,
        "nothing was created"
    );
}

async fn unknown_parent_version_is_not_found_and_creates_nothing(b: &Backend) {
    let store = b.store.as_ref();
    let mut new = new_version("planner", "x");
    new.parent_version = Some(7);
    assert_not_found(
        store.create_version(new).await,
        "version 7 of prompt planner",
    );
    assert_eq!(store.list_versions("planner").await.unwrap().len(), 1);
}

async fn deploy_makes_exactly_that_version_active(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_version(new_version("planner", "v2"))
        .await
        .unwrap();
    store
        .create_version(new_version("planner", "v3"))
        .await
        .unwrap();
    let record = store.deploy("planner", 3, "alice").await.unwrap();
    assert_eq!(
        (
            record.prompt_id.as_str(),
            record.from_version,
            record.to_version
        ),
        ("planner", Some(1), 3)
    );
    assert_eq!(record.action, DeployAction::Deploy);
    assert_eq!(record.actor, "alice");
    assert_eq!(active_numbers(store, "planner").await, [3]);
    assert_eq!(store.active_version("planner").await.unwrap().content, "v3");
    let record = store.deploy("planner", 2, "bob").await.unwrap();
    assert_eq!((record.from_version, record.to_version), (Some(3), 2));
    assert_eq!(active_numbers(store, "planner").await, [2]);
    // Other prompts are untouched.
    assert_eq!(active_numbers(store, "coder").await, [1]);
}

async fn deploying_the_active_version_is_a_no_op(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_version(new_version("planner", "v2"))
        .await
        .unwrap();
    let first = store.deploy("planner", 2, "alice").await.unwrap();
    let again = store.deploy("planner", 2, "bob").await.unwrap();
    assert_eq!(again, first, "answers with the record that made it active");
    assert_eq!(store.deploy_history("planner").await.unwrap().len(), 2);
    // The seeded version is active from the start: deploying it is a no-op answered by the seed.
    let seeded = store.deploy("coder", 1, "carol").await.unwrap();
    assert_eq!((seeded.from_version, seeded.to_version), (None, 1));
    assert_eq!(seeded.actor, SEED_ACTOR);
    assert_eq!(active_numbers(store, "planner").await, [2]);
}

async fn deploy_of_unknown_version_is_not_found_and_changes_nothing(b: &Backend) {
    let store = b.store.as_ref();
    for version in [2, 99, 0, -1, i64::MAX] {
        assert_not_found(
            store.deploy("planner", version, "alice").await,
            &format!("version {version} of prompt planner"),
        );
    }
    assert_eq!(active_numbers(store, "planner").await, [1]);
    assert_eq!(store.deploy_history("planner").await.unwrap().len(), 1);
}

async fn rollback_walks_back_through_deploys(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_version(new_version("fixer", "v2"))
        .await
        .unwrap();
    store
        .create_version(new_version("fixer", "v3"))
        .await
        .unwrap();
    store.deploy("fixer", 2, "alice").await.unwrap();
    store.deploy("fixer", 3, "alice").await.unwrap();

    let back = store.rollback("fixer", "bob").await.unwrap();
    assert_eq!((back.from_version, back.to_version), (Some(3), 2));
    assert_eq!(back.action, DeployAction::Rollback);
    assert_eq!(back.actor, "bob");
    assert_eq!(active_numbers(store, "fixer").await, [2]);

    let back = store.rollback("fixer", "bob").await.unwrap();
    assert_eq!((back.from_version, back.to_version), (Some(2), 1));
    assert_eq!(active_numbers(store, "fixer").await, [1]);

    assert!(matches!(
        store.rollback("fixer", "bob").await,
        Err(StoreError::InvalidState(_))
    ));
    assert_eq!(active_numbers(store, "fixer").await, [1]);

    // A deploy after rollbacks can itself be rolled back.
    store.deploy("fixer", 3, "alice").await.unwrap();
    let back = store.rollback("fixer", "bob").await.unwrap();
    assert_eq!((back.from_version, back.to_version), (Some(3), 1));
}

async fn rollback_without_history_is_invalid_state_and_changes_nothing(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_version(new_version("reviewer", "v2"))
        .await
        .unwrap();
    match store.rollback("reviewer", "alice").await {
        Err(StoreError::InvalidState(message)) => {
            assert!(message.contains("reviewer"), "{message}")
        }
        other => panic!("expected InvalidState, got {other:?}"),
    }
    assert_eq!(active_numbers(store, "reviewer").await, [1]);
    assert_eq!(store.deploy_history("reviewer").await.unwrap().len(), 1);
}

async fn history_records_from_to_actor_and_time(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_version(new_version("coder", "v2"))
        .await
        .unwrap();
    let deployed = store.deploy("coder", 2, "token-alice").await.unwrap();
    let rolled = store.rollback("coder", "token-bob").await.unwrap();
    let history = store.deploy_history("coder").await.unwrap();
    let steps: Vec<(Option<i64>, i64, DeployAction, &str)> = history
        .iter()
        .map(|h| (h.from_version, h.to_version, h.action, h.actor.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (None, 1, DeployAction::Deploy, SEED_ACTOR),
            (Some(1), 2, DeployAction::Deploy, "token-alice"),
            (Some(2), 1, DeployAction::Rollback, "token-bob"),
        ]
    );
    assert_eq!(history[1], deployed);
    assert_eq!(history[2], rolled);
    assert!(
        history
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );
    assert!(history.iter().all(|h| h.prompt_id == "coder"));
}

async fn failure_modes_are_seeded(b: &Backend) {
    for seed in default_seeds() {
        let stored = b.store.failure_modes(&seed.prompt.id).await.unwrap();
        let stored: BTreeSet<(String, String)> = stored
            .into_iter()
            .map(|m| (m.code, m.description))
            .collect();
        let expected: BTreeSet<(String, String)> = seed
            .failure_modes
            .into_iter()
            .map(|m| (m.code, m.description))
            .collect();
        assert_eq!(stored, expected, "{}", seed.prompt.id);
    }
}

async fn concurrent_deploys_leave_exactly_one_active_version(b: &Backend) {
    const DEPLOYS: i64 = 50;
    for i in 0..DEPLOYS {
        b.store
            .create_version(new_version("planner", &format!("v{}", i + 2)))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..DEPLOYS)
        .map(|i| {
            let store = b.store.clone();
            tokio::spawn(async move { store.deploy("planner", i + 2, &format!("actor-{i}")).await })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("deploy task")
            .expect("every deploy succeeds");
    }
    let active = active_numbers(b.store.as_ref(), "planner").await;
    assert_eq!(
        active.len(),
        1,
        "exactly one active version, got {active:?}"
    );
    // The history is a serial chain: each change starts where the previous one ended, and the
    // last one ends at the active version.
    let history = b.store.deploy_history("planner").await.unwrap();
    assert_eq!(history.len() as i64, 1 + DEPLOYS);
    for pair in history.windows(2) {
        assert_eq!(
            pair[1].from_version,
            Some(pair[0].to_version),
            "{history:?}"
        );
    }
    assert_eq!(history.last().map(|h| h.to_version), Some(active[0]));
    let deployed: BTreeSet<i64> = history[1..].iter().map(|h| h.to_version).collect();
    assert_eq!(deployed, (2..DEPLOYS + 2).collect());
}

async fn concurrent_create_version_numbers_are_distinct_and_consecutive(b: &Backend) {
    const CREATES: usize = 20;
    let tasks: Vec<_> = (0..CREATES)
        .map(|i| {
            let store = b.store.clone();
            tokio::spawn(async move {
                store
                    .create_version(new_version("coder", &format!("c{i}")))
                    .await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(
            task.await
                .expect("create task")
                .expect("every create succeeds")
                .version,
        );
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (2..2 + CREATES as i64).collect::<Vec<_>>());
    assert_eq!(
        b.store.list_versions("coder").await.unwrap().len(),
        CREATES + 1
    );
}

async fn schema_refuses_two_active_versions(b: &Backend) {
    b.store
        .create_version(new_version("planner", "v2"))
        .await
        .unwrap();
    let statements = [
        "UPDATE prompt_versions SET is_active = TRUE WHERE prompt_id = 'planner' AND version = 2",
        "INSERT INTO prompt_versions (id, prompt_id, version, content, is_active, source) \
         VALUES ('00000000-0000-0000-0000-000000000001', 'planner', 3, 'x', TRUE, 'manual')",
    ];
    for sql in statements {
        let error = execute_raw(&b.url, sql)
            .await
            .expect_err("the schema must refuse a second active version");
        let db = error.as_database_error().expect("a database error");
        assert_eq!(db.kind(), ErrorKind::UniqueViolation, "{sql}: {db}");
        if b.postgres {
            assert_eq!(db.constraint(), Some("one_active_version_per_prompt"));
        }
    }
    assert_eq!(active_numbers(b.store.as_ref(), "planner").await, [1]);
}

async fn concurrent_seeding_writes_each_prompt_once(b: &Backend) {
    // Instances starting together all seed; each new prompt must be written exactly once.
    let extra: Vec<_> = default_seeds()
        .into_iter()
        .map(|mut seed| {
            seed.prompt.id = format!("extra-{}", seed.prompt.id);
            for mode in &mut seed.failure_modes {
                mode.prompt_id = seed.prompt.id.clone();
            }
            seed
        })
        .collect();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = b.store.clone();
            let seeds = extra.clone();
            tokio::spawn(async move { store.seed(&seeds).await })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("seed task")
            .expect("every seeding succeeds");
    }
    let listed = b.store.list_prompts().await.unwrap();
    assert_eq!(listed.len(), 8);
    for seed in &extra {
        let id = seed.prompt.id.as_str();
        assert_eq!(b.store.list_versions(id).await.unwrap().len(), 1, "{id}");
        assert_eq!(b.store.deploy_history(id).await.unwrap().len(), 1, "{id}");
        assert_eq!(
            b.store.failure_modes(id).await.unwrap().len(),
            seed.failure_modes.len()
        );
    }
}

fn grader(prompt_id: &str, name: &str, definition: serde_json::Value) -> NewGraderDefinition {
    NewGraderDefinition {
        prompt_id: prompt_id.to_owned(),
        name: name.to_owned(),
        definition,
        enabled: true,
        created_by: Some("alice".to_owned()),
    }
}

fn check_eq(label: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "string_check", "name": label, "operation": "eq",
        "input": "{{sample.output_text}}", "reference": "{{item.label}}",
    })
}

async fn grader_put_creates_then_replaces_keeping_id_and_creator(b: &Backend) {
    let store = b.store.as_ref();
    let (first, outcome) = store
        .put_grader(grader("planner", "exact", check_eq("a")))
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_eq!(first.definition, check_eq("a"));
    assert!(first.enabled);
    assert_eq!(first.created_by.as_deref(), Some("alice"));
    assert_eq!(first.created_at, first.updated_at);
    assert_eq!(store.get_grader("planner", "exact").await.unwrap(), first);

    let mut replacement = grader("planner", "exact", check_eq("b"));
    replacement.enabled = false;
    replacement.created_by = Some("bob".to_owned());
    let (second, outcome) = store.put_grader(replacement).await.unwrap();
    assert_eq!(outcome, PutOutcome::Replaced);
    assert_eq!(second.id, first.id, "a replacement keeps the row");
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(second.created_by.as_deref(), Some("alice"));
    assert!(second.updated_at >= first.updated_at);
    assert_eq!(second.definition, check_eq("b"));
    assert!(!second.enabled);
    assert_eq!(store.get_grader("planner", "exact").await.unwrap(), second);
    assert_eq!(store.list_graders(None).await.unwrap(), vec![second]);

    // The same name under another prompt is another definition.
    let (other, outcome) = store
        .put_grader(grader("coder", "exact", check_eq("c")))
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_ne!(other.id, first.id);
}

async fn grader_of_unknown_prompt_is_not_found_and_writes_nothing(b: &Backend) {
    let store = b.store.as_ref();
    assert_not_found(
        store.put_grader(grader("ghost", "x", check_eq("a"))).await,
        "prompt ghost",
    );
    assert_not_found(store.list_graders(Some("ghost")).await, "prompt ghost");
    assert_not_found(
        store
            .seed_graders(&[
                grader("planner", "fine", check_eq("a")),
                grader("ghost", "x", check_eq("a")),
            ])
            .await,
        "prompt ghost",
    );
    assert!(
        store.list_graders(None).await.unwrap().is_empty(),
        "a failed seeding writes none of its definitions"
    );
}

async fn grader_list_get_enable_and_delete(b: &Backend) {
    let store = b.store.as_ref();
    for (prompt, name) in [("reviewer", "b"), ("planner", "z"), ("planner", "a")] {
        store
            .put_grader(grader(prompt, name, check_eq(name)))
            .await
            .unwrap();
    }
    let all: Vec<(String, String)> = store
        .list_graders(None)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.prompt_id, g.name))
        .collect();
    assert_eq!(
        all,
        [("planner", "a"), ("planner", "z"), ("reviewer", "b")]
            .map(|(p, n)| (p.to_owned(), n.to_owned()))
    );
    let planner: Vec<String> = store
        .list_graders(Some("planner"))
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(planner, ["a", "z"]);
    assert!(store.list_graders(Some("fixer")).await.unwrap().is_empty());
    assert_not_found(
        store.get_grader("planner", "missing").await,
        "grader missing",
    );

    let disabled = store
        .set_grader_enabled("planner", "a", false)
        .await
        .unwrap();
    assert!(!disabled.enabled);
    assert!(!store.get_grader("planner", "a").await.unwrap().enabled);
    let enabled = store
        .set_grader_enabled("planner", "a", true)
        .await
        .unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.definition, check_eq("a"));
    assert_not_found(
        store.set_grader_enabled("planner", "missing", true).await,
        "grader missing",
    );

    store.delete_grader("planner", "a").await.unwrap();
    assert_not_found(store.get_grader("planner", "a").await, "grader a");
    assert_not_found(store.delete_grader("planner", "a").await, "grader a");
    assert_eq!(store.list_graders(None).await.unwrap().len(), 2);
}

async fn grader_constraints_are_named(b: &Backend) {
    let store = b.store.as_ref();
    let conflict = |result: super::Result<_>| match result {
        Err(StoreError::Conflict { constraint }) => constraint,
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert_eq!(
        conflict(store.put_grader(grader("planner", "", check_eq("a"))).await),
        "graders_name_nonempty"
    );
    assert_eq!(
        conflict(
            store
                .put_grader(grader("planner", &"n".repeat(101), check_eq("a")))
                .await
        ),
        "graders_name_nonempty"
    );
    assert_eq!(
        conflict(
            store
                .put_grader(grader("planner", "x", serde_json::json!([1])))
                .await
        ),
        "graders_definition_json"
    );
    assert!(store.list_graders(None).await.unwrap().is_empty());
}

async fn grader_seeding_is_idempotent_and_never_touches_existing(b: &Backend) {
    let store = b.store.as_ref();
    let mut seeds = vec![
        grader("planner", "one", check_eq("seed-1")),
        grader("coder", "two", check_eq("seed-2")),
    ];
    for seed in &mut seeds {
        seed.created_by = Some(SEED_ACTOR.to_owned());
    }
    assert_eq!(store.seed_graders(&seeds).await.unwrap(), 2);
    // An operator edits one seeded definition; seeding again must not undo it.
    let mut edited = grader("planner", "one", check_eq("edited"));
    edited.enabled = false;
    store.put_grader(edited).await.unwrap();
    assert_eq!(store.seed_graders(&seeds).await.unwrap(), 0);
    assert_eq!(store.seed_graders(&seeds).await.unwrap(), 0);
    let one = store.get_grader("planner", "one").await.unwrap();
    assert_eq!(one.definition, check_eq("edited"));
    assert!(!one.enabled);
    assert_eq!(one.created_by.as_deref(), Some(SEED_ACTOR));
    assert_eq!(store.list_graders(None).await.unwrap().len(), 2);
}

async fn concurrent_grader_puts_leave_one_row(b: &Backend) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = b.store.clone();
            tokio::spawn(async move {
                store
                    .put_grader(grader("fixer", "same", check_eq(&format!("v{i}"))))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let (_, outcome) = task.await.expect("task").expect("every put succeeds");
        created += usize::from(outcome == PutOutcome::Created);
    }
    assert_eq!(created, 1, "exactly one put creates the row");
    assert_eq!(b.store.list_graders(Some("fixer")).await.unwrap().len(), 1);
}

async fn concurrent_grader_seeding_writes_each_definition_once(b: &Backend) {
    // Instances starting together all seed the same definitions.
    let seeds: Vec<_> = ["planner", "coder", "fixer", "reviewer"]
        .into_iter()
        .map(|prompt| grader(prompt, "seeded", check_eq(prompt)))
        .collect();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = b.store.clone();
            let seeds = seeds.clone();
            tokio::spawn(async move { store.seed_graders(&seeds).await })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        written += task.await.expect("task").expect("every seeding succeeds");
    }
    assert_eq!(
        written, 4,
        "each definition is written by exactly one seeder"
    );
    assert_eq!(b.store.list_graders(None).await.unwrap().len(), 4);
}

/// Names of every table column, constraint, index and trigger of a migrated database, so the two
/// migration sets can be checked to describe the same schema.
#[derive(Debug, Default, PartialEq)]
struct SchemaNames {
    columns: BTreeSet<(String, String)>,
    objects: BTreeSet<String>,
}

async fn sqlite_schema(url: &str) -> SchemaNames {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let mut names = SchemaNames::default();
    let entries: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (kind, name, sql) in entries {
        if kind == "table" {
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
                .bind(&name)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            names
                .columns
                .extend(columns.into_iter().map(|c| (name.clone(), c)));
            // SQLite keeps constraint names only in the CREATE TABLE text.
            let sql = sql.unwrap_or_default();
            let mut rest = sql.as_str();
            while let Some(at) = rest.find("CONSTRAINT ") {
                rest = &rest[at + "CONSTRAINT ".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                names.objects.insert(rest[..end].to_owned());
            }
        } else {
            names.objects.insert(name);
        }
    }
    names
}

async fn postgres_schema(url: &str) -> SchemaNames {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let objects: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
           WHERE t.relnamespace = 'public'::regnamespace AND t.relname <> '_sqlx_migrations' \
         UNION SELECT indexname::text FROM pg_indexes \
           WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations' \
         UNION SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    SchemaNames {
        columns: columns.into_iter().collect(),
        objects: objects.into_iter().collect(),
    }
}

/// Both migration sets must describe the same tables, columns and named constraints, indexes and
/// triggers, or a backend would silently lack an invariant the other enforces.
#[tokio::test]
async fn sqlite_and_postgres_migrations_define_the_same_schema() {
    let sqlite = sqlite_backend().await;
    let postgres = postgres_backend().await;
    let lite = sqlite_schema(&sqlite.url).await;
    let pg = postgres_schema(&postgres.url).await;
    let tables: BTreeSet<&str> = lite.columns.iter().map(|(t, _)| t.as_str()).collect();
    for table in [
        "prompts",
        "prompt_versions",
        "deploy_history",
        "failure_modes",
        "prompt_optimization_data",
        "graders",
        "grading_runs",
        "grading_results",
        "ab_tests",
        "ab_exposures",
    ] {
        assert!(tables.contains(table), "missing table {table}");
    }
    assert_eq!(
        lite.columns
            .symmetric_difference(&pg.columns)
            .collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "columns differ"
    );
    assert!(lite.objects.contains("one_active_version_per_prompt"));
    // `*_bool` checks emulate a type SQLite lacks; PostgreSQL's BOOLEAN needs none.
    let lite_objects: BTreeSet<String> = lite
        .objects
        .into_iter()
        .filter(|name| !name.ends_with("_bool"))
        .collect();
    assert_eq!(
        lite_objects
            .symmetric_difference(&pg.objects)
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "named constraints, indexes or triggers differ"
    );
}

#[derive(Debug, Clone)]
enum Op {
    Create,
    Deploy(i64),
    Rollback,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        2 => Just(Op::Create),
        3 => (-1i64..8).prop_map(Op::Deploy),
        2 => Just(Op::Rollback),
    ]
}

/// Runs a sequence of operations against a store and a model of the deploy rules (versions
/// numbered max + 1; deploy of the active version is a no-op; rollback pops an undo stack of the
/// versions each deploy replaced) and checks they agree after every step.
async fn check_against_model(store: &dyn Store, ops: &[Op]) {
    let mut versions = 1i64;
    let mut active = 1i64;
    let mut undo: Vec<i64> = Vec::new();
    let mut history_len = 1usize;
    for (step, op) in ops.iter().enumerate() {
        let context = format!("step {step} {op:?} of {ops:?}");
        match op {
            Op::Create => {
                let created = store
                    .create_version(new_version("coder", "x"))
                    .await
                    .unwrap();
                versions += 1;
                assert_eq!(created.version, versions, "{context}");
            }
            Op::Deploy(v) => {
                let result = store.deploy("coder", *v, "model").await;
                if *v < 1 || *v > versions {
                    assert!(matches!(result, Err(StoreError::NotFound(_))), "{context}");
                } else if *v == active {
                    assert_eq!(result.unwrap().to_version, *v, "{context}");
                } else {
                    let record = result.unwrap();
                    assert_eq!((record.from_version, record.to_version), (Some(active), *v));
                    undo.push(active);
                    active = *v;
                    history_len += 1;
                }
            }
            Op::Rollback => {
                let result = store.rollback("coder", "model").await;
                match undo.pop() {
                    None => assert!(
                        matches!(result, Err(StoreError::InvalidState(_))),
                        "{context}: {result:?}"
                    ),
                    Some(target) => {
                        let record = result.unwrap();
                        assert_eq!(
                            (record.from_version, record.to_version),
                            (Some(active), target)
                        );
                        active = target;
                        history_len += 1;
                    }
                }
            }
        }
        assert_eq!(
            store.active_version("coder").await.unwrap().version,
            active,
            "{context}"
        );
        assert_eq!(
            store.deploy_history("coder").await.unwrap().len(),
            history_len,
            "{context}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    #[test]
    fn sqlite_follows_the_deploy_model_on_random_operation_sequences(
        ops in proptest::collection::vec(op(), 1..25)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = open_store("sqlite::memory:").await.unwrap();
            store.seed(&default_seeds()).await.unwrap();
            check_against_model(store.as_ref(), &ops).await;
        });
    }
}

/// The same model check on PostgreSQL, over a fixed set of sequences (a fresh database per
/// proptest case would be slow), in one database with the prompt re-created per sequence.
#[tokio::test]
async fn postgres_follows_the_deploy_model_on_a_mixed_sequence() {
    let backend = postgres_backend().await;
    use Op::*;
    let ops = [
        Rollback,
        Create,
        Create,
        Deploy(3),
        Deploy(3),
        Deploy(2),
        Rollback,
        Create,
        Deploy(4),
        Deploy(9),
        Deploy(0),
        Rollback,
        Rollback,
        Rollback,
        Deploy(1),
        Deploy(2),
        Deploy(4),
        Rollback,
        Deploy(3),
        Rollback,
        Rollback,
        Rollback,
    ];
    check_against_model(backend.store.as_ref(), &ops).await;
}
