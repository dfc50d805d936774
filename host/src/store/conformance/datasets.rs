//! Conformance of the datasets domain: versions numbered per dataset and written whole, rows
//! read back in order with their ids and splits, keyset pages and the split filter, the prompt
//! a dataset belongs to, immutability by trigger, delete, and concurrent writers of one name.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::{Backend, assert_not_found};
use crate::store::testing::execute_raw;
use crate::store::{DatasetSource, NewDatasetRow, NewDatasetVersion, RowQuery, Split, StoreError};

conformance!(
    versions_are_numbered_per_dataset_and_read_back_whole,
    rows_page_by_index_and_filter_by_split,
    a_dataset_belongs_to_one_prompt,
    unknown_prompt_dataset_or_version_is_not_found_and_writes_nothing,
    versions_and_rows_cannot_be_changed,
    delete_removes_every_version_and_row,
    concurrent_versions_of_one_new_name_are_numbered_in_turn,
);

fn rows(n: usize, tag: &str) -> Vec<NewDatasetRow> {
    (0..n)
        .map(|i| NewDatasetRow {
            id: Uuid::now_v7(),
            item: json!({ "q": format!("{tag}-{i}"), "n": i })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            sample: (i % 2 == 0).then(|| {
                json!({ "output_text": format!("answer {i}") })
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            }),
            split: if i % 3 == 0 {
                Split::Validation
            } else {
                Split::Train
            },
            run_id: (i % 4 == 0).then(Uuid::now_v7),
        })
        .collect()
}

fn version(name: &str, prompt: &str, rows: Vec<NewDatasetRow>) -> NewDatasetVersion {
    NewDatasetVersion {
        name: name.to_owned(),
        prompt_id: prompt.to_owned(),
        source: DatasetSource::Rows,
        filter: None,
        validation_fraction: 0.3,
        rows,
        created_by: Some("alice".to_owned()),
    }
}

async fn versions_are_numbered_per_dataset_and_read_back_whole(b: &Backend) {
    let store = b.store.as_ref();
    let first_rows = rows(450, "a");
    let first = store
        .create_dataset_version(&version("golden", "planner", first_rows.clone()))
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(first.name, "golden");
    assert_eq!(first.prompt_id, "planner");
    assert_eq!(first.row_count, 450);
    assert_eq!(first.validation_count, 150);
    assert_eq!(first.train_count, 300);
    assert_eq!(first.source, DatasetSource::Rows);
    assert_eq!(first.created_by.as_deref(), Some("alice"));

    let mut snapshot = version("golden", "planner", rows(3, "b"));
    snapshot.source = DatasetSource::Runs;
    snapshot.filter = Some(json!({ "promptId": "planner", "rating": "bad" }));
    let second = store.create_dataset_version(&snapshot).await.unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(second.filter, snapshot.filter);
    // Another dataset starts at 1.
    let other = store
        .create_dataset_version(&version("other", "coder", rows(1, "c")))
        .await
        .unwrap();
    assert_eq!(other.version, 1);

    let dataset = store.get_dataset("golden").await.unwrap();
    assert_eq!(dataset.latest_version, 2);
    assert_eq!(dataset.versions, vec![first.clone(), second.clone()]);
    let listed = store.list_datasets(None).await.unwrap();
    assert_eq!(
        listed.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["golden", "other"]
    );
    assert_eq!(store.list_datasets(Some("coder")).await.unwrap().len(), 1);
    assert!(store.list_datasets(Some("fixer")).await.unwrap().is_empty());

    // Version 1 reads back exactly as written, in order (several insert statements' worth).
    let (read_version, read) = store
        .dataset_rows(
            "golden",
            &RowQuery {
                version: Some(1),
                ..RowQuery::default()
            },
            1000,
        )
        .await
        .unwrap();
    assert_eq!(read_version, 1);
    assert_eq!(read.len(), 450);
    for (index, (got, want)) in read.iter().zip(&first_rows).enumerate() {
        assert_eq!(got.index, index as i64);
        assert_eq!(got.id, want.id);
        assert_eq!(got.item, want.item);
        assert_eq!(got.sample, want.sample);
        assert_eq!(got.split, want.split);
        assert_eq!(got.run_id, want.run_id);
    }
    // Without a version: the latest.
    let (latest, read) = store
        .dataset_rows("golden", &RowQuery::default(), 1000)
        .await
        .unwrap();
    assert_eq!((latest, read.len()), (2, 3));
}

async fn rows_page_by_index_and_filter_by_split(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_dataset_version(&version("paged", "planner", rows(25, "p")))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut query = RowQuery {
        split: Some(Split::Validation),
        ..RowQuery::default()
    };
    loop {
        let (_, page) = store.dataset_rows("paged", &query, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.iter().all(|r| r.split == Split::Validation));
        query.after = page.last().map(|r| r.index);
        seen.extend(page.into_iter().map(|r| r.index));
    }
    assert_eq!(seen, (0..25).filter(|i| i % 3 == 0).collect::<Vec<i64>>());
    let (_, train) = store
        .dataset_rows(
            "paged",
            &RowQuery {
                split: Some(Split::Train),
                ..RowQuery::default()
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(train.len(), 25 - 9);
}

async fn a_dataset_belongs_to_one_prompt(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_dataset_version(&version("mine", "planner", rows(2, "m")))
        .await
        .unwrap();
    match store
        .create_dataset_version(&version("mine", "coder", rows(2, "m")))
        .await
    {
        Err(StoreError::InvalidState(message)) => {
            assert!(message.contains("planner"), "{message}")
        }
        other => panic!("expected InvalidState, got {other:?}"),
    }
    assert_eq!(store.get_dataset("mine").await.unwrap().versions.len(), 1);
}

async fn unknown_prompt_dataset_or_version_is_not_found_and_writes_nothing(b: &Backend) {
    let store = b.store.as_ref();
    assert_not_found(
        store
            .create_dataset_version(&version("ghostly", "ghost", rows(2, "g")))
            .await,
        "prompt ghost",
    );
    assert!(store.list_datasets(None).await.unwrap().is_empty());
    assert_not_found(store.get_dataset("ghostly").await, "dataset ghostly");
    assert_not_found(
        store
            .dataset_rows("ghostly", &RowQuery::default(), 10)
            .await,
        "dataset ghostly",
    );
    assert_not_found(store.delete_dataset("ghostly").await, "dataset ghostly");
    assert_not_found(store.list_datasets(Some("ghost")).await, "prompt ghost");
    store
        .create_dataset_version(&version("real", "planner", rows(2, "r")))
        .await
        .unwrap();
    assert_not_found(
        store
            .dataset_rows(
                "real",
                &RowQuery {
                    version: Some(7),
                    ..RowQuery::default()
                },
                10,
            )
            .await,
        "version 7 of dataset real",
    );
    // A row id given twice in one version refuses the whole version.
    let mut twice = rows(2, "t");
    twice[1].id = twice[0].id;
    assert!(matches!(
        store
            .create_dataset_version(&version("real", "planner", twice))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_dataset("real").await.unwrap().latest_version, 1);
}

async fn versions_and_rows_cannot_be_changed(b: &Backend) {
    let store = b.store.as_ref();
    store
        .create_dataset_version(&version("fixed", "planner", rows(3, "f")))
        .await
        .unwrap();
    for sql in [
        "UPDATE dataset_rows SET split = 'train'",
        "UPDATE dataset_versions SET row_count = 99",
    ] {
        assert!(execute_raw(&b.url, sql).await.is_err(), "{sql} succeeded");
    }
    let (_, read) = store
        .dataset_rows("fixed", &RowQuery::default(), 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(read[0].split, Split::Validation);
}

async fn delete_removes_every_version_and_row(b: &Backend) {
    let store = b.store.as_ref();
    for _ in 0..2 {
        store
            .create_dataset_version(&version("gone", "planner", rows(4, "d")))
            .await
            .unwrap();
    }
    store
        .create_dataset_version(&version("kept", "planner", rows(1, "k")))
        .await
        .unwrap();
    store.delete_dataset("gone").await.unwrap();
    assert_not_found(store.get_dataset("gone").await, "dataset gone");
    let left = execute_raw(&b.url, "UPDATE datasets SET created_by = created_by")
        .await
        .unwrap();
    assert_eq!(left, 1, "only the kept dataset is left");
    // The name can be used again, from version 1.
    let again = store
        .create_dataset_version(&version("gone", "coder", rows(1, "a")))
        .await
        .unwrap();
    assert_eq!(again.version, 1);
}

async fn concurrent_versions_of_one_new_name_are_numbered_in_turn(b: &Backend) {
    let store = b.store.clone();
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let store: Arc<dyn crate::store::Store> = store.clone();
            tokio::spawn(async move {
                store
                    .create_dataset_version(&version("busy", "planner", rows(20, &i.to_string())))
                    .await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for writer in writers {
        numbers.push(writer.await.unwrap().unwrap().version);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6]);
    let dataset = b.store.get_dataset("busy").await.unwrap();
    assert!(dataset.versions.iter().all(|v| v.row_count == 20));
}
