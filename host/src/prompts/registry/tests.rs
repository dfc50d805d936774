//! The registry's rules on a real SQLite store: versions, deploys, rollback, resolve and its cache.

use super::*;
use crate::prompts::seeds::default_seeds;
use crate::store::testing::{TempDirGuard, postgres_fresh, sqlite_temp};
use crate::store::{Missing, open_store};

async fn sqlite_registry(ttl: Duration) -> (TempDirGuard, PromptRegistry) {
    let (dir, url) = sqlite_temp();
    let store = open_store(&url).await.unwrap();
    store.seed(&default_seeds()).await.unwrap();
    (dir, PromptRegistry::new(store, ttl))
}

fn req(content: &str) -> CreateVersion {
    CreateVersion {
        content: content.to_owned(),
        notes: None,
        parent_version: None,
    }
}

#[tokio::test]
async fn create_version_refuses_bad_input_and_writes_nothing() {
    let (_dir, registry) = sqlite_registry(DEFAULT_RESOLVE_CACHE_TTL).await;
    let huge = "x".repeat(MAX_CONTENT_BYTES + 1);
    let long_notes = CreateVersion {
        notes: Some("n".repeat(MAX_NOTES_BYTES + 1)),
        ..req("fine")
    };
    let bad_parent = CreateVersion {
        parent_version: Some(9),
        ..req("fine")
    };
    let cases: Vec<(CreateVersion, &str)> = vec![
        (req(""), "empty"),
        (req(" \n\t"), "empty"),
        (req(&huge), "limit"),
        (long_notes, "limit"),
        (bad_parent, "parentVersion 9"),
    ];
    for (request, expected) in cases {
        match registry.create_version("planner", request, "alice").await {
            Err(PromptError::Invalid(message)) => {
                assert!(message.contains(expected), "{message}")
            }
            other => panic!("expected Invalid containing {expected:?}, got {other:?}"),
        }
    }
    match registry
        .create_version("planner", req("ok\n  {{ bad-name }}"), "alice")
        .await
    {
        Err(PromptError::Template(e)) => assert_eq!((e.line, e.column, e.offset), (2, 9, 11)),
        other => panic!("expected a template error, got {other:?}"),
    }
    match registry.create_version("nope", req("x"), "alice").await {
        Err(PromptError::Store(StoreError::NotFound(what))) => {
            assert_eq!(what.to_string(), "prompt nope")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(registry.versions("planner").await.unwrap().len(), 1);
}

#[tokio::test]
async fn create_version_accepts_the_size_limit_and_records_the_actor() {
    let (_dir, registry) = sqlite_registry(DEFAULT_RESOLVE_CACHE_TTL).await;
    let content = "y".repeat(MAX_CONTENT_BYTES);
    let request = CreateVersion {
        notes: Some("why".to_owned()),
        parent_version: Some(1),
        ..req(&content)
    };
    let created = registry
        .create_version("planner", request, "alice")
        .await
        .unwrap();
    assert_eq!(created.version, 2);
    assert_eq!(created.source, VersionSource::Manual);
    assert_eq!(created.created_by.as_deref(), Some("alice"));
    assert_eq!(created.parent_version, Some(1));
    assert_eq!(created.notes.as_deref(), Some("why"));
    assert_eq!(registry.version("planner", 2).await.unwrap(), created);
}

#[tokio::test]
async fn resolve_returns_the_active_template_for_the_task() {
    let (_dir, registry) = sqlite_registry(DEFAULT_RESOLVE_CACHE_TTL).await;
    let resolved = registry.resolve("planner", "task-1").await.unwrap();
    assert_eq!(resolved.prompt_id, "planner");
    assert_eq!(resolved.version, 1);
    assert_eq!(resolved.task_id, "task-1");
    assert_eq!(
        resolved.variables,
        ["task_title", "task_description", "repository_files"]
    );
    let seed = default_seeds()
        .into_iter()
        .find(|s| s.prompt.id == "planner");
    assert_eq!(Some(resolved.content), seed.map(|s| s.content));

    for task_id in ["", "  ", &"t".repeat(MAX_TASK_ID_BYTES + 1)] {
        assert!(matches!(
            registry.resolve("planner", task_id).await,
            Err(PromptError::Invalid(_))
        ));
    }
    assert!(matches!(
        registry.resolve("nope", "task-1").await,
        Err(PromptError::Store(StoreError::NotFound(_)))
    ));
}

#[tokio::test]
async fn cache_stats_count_hits_and_misses_and_a_deploy_forces_a_miss() {
    let (_dir, registry) = sqlite_registry(Duration::from_secs(3600)).await;
    assert_eq!(registry.cache_stats(), CacheStats::default());
    registry.resolve("planner", "t1").await.unwrap();
    assert_eq!(registry.cache_stats(), CacheStats { hits: 0, misses: 1 });
    for task in ["t2", "t3", "t4"] {
        registry.resolve("planner", task).await.unwrap();
    }
    assert_eq!(registry.cache_stats(), CacheStats { hits: 3, misses: 1 });
    registry.resolve("coder", "t1").await.unwrap();
    assert_eq!(registry.cache_stats(), CacheStats { hits: 3, misses: 2 });
    // A deploy invalidates: the next resolve reads the store again.
    registry
        .create_version("planner", req("v2"), "alice")
        .await
        .unwrap();
    registry.deploy("planner", 2, "alice").await.unwrap();
    assert_eq!(registry.resolve("planner", "t5").await.unwrap().version, 2);
    assert_eq!(registry.cache_stats(), CacheStats { hits: 3, misses: 3 });
    // An unknown prompt is a miss too (it reached the store).
    assert!(registry.resolve("nope", "t").await.is_err());
    assert_eq!(registry.cache_stats().misses, 4);

    // With the cache disabled every resolve is a miss.
    let (_dir2, uncached) = sqlite_registry(Duration::ZERO).await;
    for task in ["a", "b", "c"] {
        uncached.resolve("fixer", task).await.unwrap();
    }
    assert_eq!(uncached.cache_stats(), CacheStats { hits: 0, misses: 3 });
}

#[tokio::test]
async fn deploy_and_rollback_through_the_registry_are_resolved_at_once() {
    // A TTL far longer than the test: only invalidation can make the change visible.
    let (_dir, registry) = sqlite_registry(Duration::from_secs(3600)).await;
    registry
        .create_version("coder", req("v2 {{task_title}}"), "alice")
        .await
        .unwrap();
    assert_eq!(registry.resolve("coder", "t").await.unwrap().version, 1);
    registry.deploy("coder", 2, "alice").await.unwrap();
    let resolved = registry.resolve("coder", "t").await.unwrap();
    assert_eq!(
        (resolved.version, resolved.variables),
        (2, vec!["task_title".to_owned()])
    );
    registry.rollback("coder", "bob").await.unwrap();
    assert_eq!(registry.resolve("coder", "t").await.unwrap().version, 1);
    let history = registry.history("coder").await.unwrap();
    assert_eq!(history.len(), 3);
    assert!(matches!(
        registry.rollback("coder", "bob").await,
        Err(PromptError::Store(StoreError::InvalidState(_)))
    ));
    assert!(matches!(
        registry.deploy("coder", 42, "bob").await,
        Err(PromptError::Store(StoreError::NotFound(_)))
    ));
}

#[tokio::test]
async fn a_change_made_elsewhere_is_served_after_the_ttl_and_not_before() {
    let (_dir, long) = sqlite_registry(Duration::from_secs(3600)).await;
    let store = long.store().clone();
    let short = PromptRegistry::new(store.clone(), Duration::from_millis(50));
    let uncached = PromptRegistry::new(store.clone(), Duration::ZERO);
    store
        .create_version(NewVersion {
            prompt_id: "fixer".to_owned(),
            content: "v2".to_owned(),
            source: VersionSource::Manual,
            parent_version: None,
            notes: None,
            created_by: None,
        })
        .await
        .unwrap();
    for registry in [&long, &short, &uncached] {
        assert_eq!(registry.resolve("fixer", "t").await.unwrap().version, 1);
    }
    // Another instance deploys: straight to the store, bypassing these registries.
    store.deploy("fixer", 2, "elsewhere").await.unwrap();
    let changed_at = Instant::now();

    assert_eq!(uncached.resolve("fixer", "t").await.unwrap().version, 2);
    assert_eq!(
        long.resolve("fixer", "t").await.unwrap().version,
        1,
        "the cache serves within its TTL"
    );
    let mut seen = 1;
    for _ in 0..100 {
        seen = short.resolve("fixer", "t").await.unwrap().version;
        if seen == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, 2, "a 50 ms cache must pick up the change");
    assert!(changed_at.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn postgres_deploy_through_one_registry_reaches_another_within_a_second() {
    let db = postgres_fresh().await;
    let store_a = open_store(db.url()).await.unwrap();
    store_a.seed(&default_seeds()).await.unwrap();
    let store_b = open_store(db.url()).await.unwrap();
    let a = PromptRegistry::new(store_a, DEFAULT_RESOLVE_CACHE_TTL);
    let b = PromptRegistry::new(store_b, DEFAULT_RESOLVE_CACHE_TTL);
    a.create_version("reviewer", req("v2"), "alice")
        .await
        .unwrap();
    assert_eq!(b.resolve("reviewer", "t").await.unwrap().version, 1);

    a.deploy("reviewer", 2, "alice").await.unwrap();
    let deployed_at = Instant::now();
    let mut seen = 1;
    while deployed_at.elapsed() < Duration::from_secs(2) {
        seen = b.resolve("reviewer", "t").await.unwrap().version;
        if seen == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 2);
    assert!(
        deployed_at.elapsed() < Duration::from_secs(1),
        "took {:?}",
        deployed_at.elapsed()
    );
}

#[test]
fn store_errors_keep_their_meaning() {
    assert!(matches!(
        PromptError::from(StoreError::NotFound(Missing::prompt("x"))),
        PromptError::Store(StoreError::NotFound(w)) if w.to_string() == "prompt x"
    ));
    assert!(matches!(
        PromptError::from(StoreError::Conflict { constraint: "c".into() }),
        PromptError::Store(StoreError::Conflict { constraint: c }) if c == "c"
    ));
    assert!(matches!(
        PromptError::from(StoreError::InvalidState("s".into())),
        PromptError::Store(StoreError::InvalidState(_))
    ));
    assert!(matches!(
        PromptError::from(StoreError::UnsupportedUrl("x".into())),
        PromptError::Store(_)
    ));
}

#[test]
fn create_version_body_is_strict_camel_case() {
    let ok: CreateVersion =
        serde_json::from_str(r#"{"content":"c","notes":"n","parentVersion":1}"#).unwrap();
    assert_eq!(ok.parent_version, Some(1));
    assert!(
        serde_json::from_str::<CreateVersion>(r#"{"content":"c","parent_version":1}"#).is_err()
    );
    assert!(serde_json::from_str::<CreateVersion>(r#"{"notes":"n"}"#).is_err());
}
