//! Schema parity: both migration sets must define the same tables, columns and named
//! constraints, indexes and triggers.

use std::collections::BTreeSet;

use super::{postgres_backend, sqlite_backend};

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
        "datasets",
        "dataset_versions",
        "dataset_rows",
        "optimizations",
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
