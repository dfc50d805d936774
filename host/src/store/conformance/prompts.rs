//! Conformance of the prompt domain: versions, deploys, rollbacks, history, failure modes and
//! seeding, plus a model check of the deploy rules on random operation sequences.

use std::collections::BTreeSet;

use sqlx::error::ErrorKind;

use super::{Backend, assert_not_found};
use crate::prompts::seeds::default_seeds;
use crate::store::testing::execute_raw;
use crate::store::{
    DeployAction, NewVersion, PromptVersion, SEED_ACTOR, Store, StoreError, VersionSource,
};

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
    create_prompt_writes_an_active_first_version_and_refuses_an_existing_id,
);

pub(super) fn new_version(prompt_id: &str, content: &str) -> NewVersion {
    NewVersion {
        prompt_id: prompt_id.to_owned(),
        content: content.to_owned(),
        source: VersionSource::Manual,
        parent_version: None,
        notes: None,
        created_by: Some("tester".to_owned()),
    }
}

pub(super) async fn active_numbers(store: &dyn Store, prompt_id: &str) -> Vec<i64> {
    store
        .list_versions(prompt_id)
        .await
        .expect("list versions")
        .iter()
        .filter(|v| v.is_active)
        .map(|v| v.version)
        .collect()
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

async fn create_prompt_writes_an_active_first_version_and_refuses_an_existing_id(b: &Backend) {
    use crate::store::{FailureMode, Prompt, PromptSeed};
    let store = b.store.as_ref();
    let seed = |id: &str, content: &str| PromptSeed {
        prompt: Prompt {
            id: id.to_owned(),
            description: "triage tickets".to_owned(),
            variables: vec!["ticket".to_owned()],
            created_at: crate::store::now(),
        },
        content: content.to_owned(),
        failure_modes: vec![FailureMode {
            prompt_id: id.to_owned(),
            code: "wrong_label".to_owned(),
            description: "the label is wrong".to_owned(),
        }],
    };
    store
        .create_prompt(&seed("triage", "Label {{ticket}}"), "alice")
        .await
        .unwrap();
    let prompt = store.get_prompt("triage").await.unwrap();
    assert_eq!(prompt.variables, vec!["ticket".to_owned()]);
    let active = store.active_version("triage").await.unwrap();
    assert_eq!(active.version, 1);
    assert_eq!(active.source, VersionSource::Manual);
    assert_eq!(active.created_by.as_deref(), Some("alice"));
    let history = store.deploy_history("triage").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].actor, "alice");
    assert_eq!(store.failure_modes("triage").await.unwrap().len(), 1);

    // An existing id (seeded or created) is a conflict on prompts_pkey; nothing changes.
    for id in ["triage", "planner"] {
        match store
            .create_prompt(&seed(id, "Other {{ticket}}"), "bob")
            .await
        {
            Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, "prompts_pkey"),
            other => panic!("expected a conflict for {id}, got {other:?}"),
        }
    }
    assert_eq!(store.list_versions("triage").await.unwrap().len(), 1);
    assert_eq!(store.list_prompts().await.unwrap().len(), 5);
}
