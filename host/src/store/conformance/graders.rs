//! Conformance of the grader-definition domain: put, list, enable, delete, named constraints and
//! seeding, alone and concurrently.

use super::{Backend, assert_not_found};
use crate::store::{NewGraderDefinition, PutOutcome, SEED_ACTOR, StoreError};

conformance!(
    grader_put_creates_then_replaces_keeping_id_and_creator,
    grader_of_unknown_prompt_is_not_found_and_writes_nothing,
    grader_list_get_enable_and_delete,
    grader_constraints_are_named,
    grader_seeding_is_idempotent_and_never_touches_existing,
    concurrent_grader_puts_leave_one_row,
    concurrent_grader_seeding_writes_each_definition_once,
);

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
