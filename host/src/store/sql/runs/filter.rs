//! The `WHERE` clause of a [`RunFilter`], written once for every read of runs by filter
//! (`list_runs`, `export_runs`) so they select the same runs: [`filter_clause`] writes it with
//! numbered placeholders and [`bind_filter`] binds its values in the same order.

use chrono::{DateTime, Utc};
use sqlx::query::QueryAs;
use sqlx::{Database, Encode, Type};

use crate::store::RunFilter;
use crate::store::sql::DbId;

/// A run has a current annotation (the same test as `Run::annotation`).
const ANNOTATED: &str =
    "(rating IS NOT NULL OR failure_mode IS NOT NULL OR output_feedback IS NOT NULL)";

/// The `WHERE …` clause of `filter` (empty when it has no condition), its placeholders numbered
/// from `$1` in the order [`bind_filter`] binds them; answers it and the number of the next
/// free placeholder (for the `LIMIT`).
pub(super) fn filter_clause(filter: &RunFilter) -> (String, usize) {
    // Each condition present adds its placeholder; `bind_filter` follows the same order.
    let mut conditions = Vec::new();
    let mut next = 0;
    let mut placeholder = || {
        next += 1;
        format!("${next}")
    };
    if filter.prompt_id.is_some() {
        conditions.push(format!("prompt_id = {}", placeholder()));
    }
    if filter.version.is_some() {
        conditions.push(format!("version = {}", placeholder()));
    }
    if filter.rating.is_some() {
        conditions.push(format!("rating = {}", placeholder()));
    }
    if filter.failure_mode.is_some() {
        conditions.push(format!("failure_mode = {}", placeholder()));
    }
    match filter.annotated {
        Some(true) => conditions.push(ANNOTATED.to_owned()),
        Some(false) => conditions.push(format!("NOT {ANNOTATED}")),
        None => {}
    }
    if filter.graders_passed.is_some() {
        conditions.push(format!("graders_passed = {}", placeholder()));
    }
    if filter.from.is_some() {
        conditions.push(format!("created_at >= {}", placeholder()));
    }
    if filter.to.is_some() {
        conditions.push(format!("created_at < {}", placeholder()));
    }
    if filter.before.is_some() {
        conditions.push(format!("id < {}", placeholder()));
    }
    if filter.origin.is_some() {
        conditions.push(format!("origin = {}", placeholder()));
    }
    let clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    (clause, next + 1)
}

/// Binds the values of the clause [`filter_clause`] wrote for `filter`, in its order.
pub(super) fn bind_filter<'q, DB, O>(
    mut query: QueryAs<'q, DB, O, <DB as Database>::Arguments<'q>>,
    filter: &'q RunFilter,
) -> QueryAs<'q, DB, O, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    DbId: Encode<'q, DB> + Type<DB>,
{
    if let Some(prompt_id) = &filter.prompt_id {
        query = query.bind(prompt_id.as_str());
    }
    if let Some(version) = filter.version {
        query = query.bind(version);
    }
    if let Some(rating) = filter.rating {
        query = query.bind(rating.as_str());
    }
    if let Some(failure_mode) = &filter.failure_mode {
        query = query.bind(failure_mode.as_str());
    }
    if let Some(passed) = filter.graders_passed {
        query = query.bind(passed);
    }
    if let Some(from) = filter.from {
        query = query.bind(from);
    }
    if let Some(to) = filter.to {
        query = query.bind(to);
    }
    if let Some(before) = filter.before {
        query = query.bind(DbId(before));
    }
    if let Some(origin) = filter.origin {
        query = query.bind(origin.as_str());
    }
    query
}
