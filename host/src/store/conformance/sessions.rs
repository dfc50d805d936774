//! Conformance of the web-session domain: a session is found by the hash of its id until it
//! expires, ends when deleted, expired ones are purged, and the named constraints hold.

use super::Backend;
use crate::store::{StoreError, WebSession};

conformance!(
    session_is_found_until_it_expires,
    deleted_session_is_gone_and_deleting_again_says_so,
    purge_removes_only_expired_sessions,
    session_constraints_are_named,
);

fn hash(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

async fn session_is_found_until_it_expires(b: &Backend) {
    let store = b.store.as_ref();
    store.create_session(&hash(1), "ops", 1_000).await.unwrap();
    assert_eq!(
        store.find_session(&hash(1), 999).await.unwrap(),
        Some(WebSession {
            token_name: "ops".to_owned(),
            expires_at: 1_000
        })
    );
    assert_eq!(store.find_session(&hash(1), 1_000).await.unwrap(), None);
    assert_eq!(store.find_session(&hash(2), 0).await.unwrap(), None);
}

async fn deleted_session_is_gone_and_deleting_again_says_so(b: &Backend) {
    let store = b.store.as_ref();
    store.create_session(&hash(3), "ops", 5_000).await.unwrap();
    assert!(store.delete_session(&hash(3)).await.unwrap());
    assert_eq!(store.find_session(&hash(3), 0).await.unwrap(), None);
    assert!(!store.delete_session(&hash(3)).await.unwrap());
}

async fn purge_removes_only_expired_sessions(b: &Backend) {
    let store = b.store.as_ref();
    store.create_session(&hash(4), "a", 100).await.unwrap();
    store.create_session(&hash(5), "b", 200).await.unwrap();
    store.create_session(&hash(6), "c", 300).await.unwrap();
    assert_eq!(store.purge_expired_sessions(200).await.unwrap(), 2);
    assert!(store.find_session(&hash(6), 250).await.unwrap().is_some());
    assert_eq!(store.purge_expired_sessions(200).await.unwrap(), 0);
}

async fn session_constraints_are_named(b: &Backend) {
    let store = b.store.as_ref();
    store.create_session(&hash(7), "ops", 100).await.unwrap();
    match store.create_session(&hash(7), "other", 100).await {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, "web_sessions_pkey"),
        other => panic!("expected the primary key conflict, got {other:?}"),
    }
    for bad in ["", "ABC", &"g".repeat(64), &"A".repeat(64)] {
        match store.create_session(bad, "ops", 100).await {
            Err(StoreError::Conflict { constraint }) => {
                assert_eq!(constraint, "web_sessions_id_hash_format", "{bad}")
            }
            other => panic!("{bad:?}: expected the format conflict, got {other:?}"),
        }
    }
    assert_eq!(
        store
            .find_session(&hash(7), 0)
            .await
            .unwrap()
            .map(|s| s.token_name),
        Some("ops".to_owned()),
        "the refused writes changed nothing"
    );
}
