//! A model check of the deploy rules: random sequences of create, deploy and rollback run against
//! a store and against a small model of the rules, which must agree after every step.

use super::postgres_backend;
use super::prompts::new_version;
use crate::prompts::seeds::default_seeds;
use crate::store::{Store, StoreError, open_store};

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
