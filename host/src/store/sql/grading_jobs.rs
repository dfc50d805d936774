//! The grading-job domain's SQL, once for both backends: jobs and their fixed rows, the claim
//! under a lease, chunk commits, and the automatic-grading queue ([`GradingJobStore`]).
//!
//! A chunk commit is guarded by an `UPDATE … WHERE claimed_by = $me AND processed_rows = $from`
//! on the job: if another instance took the job over (the lease expired) or the job moved on,
//! the update touches nothing and the whole transaction is rolled back, so verdicts are written
//! exactly once per row.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Transaction, Type};
use uuid::Uuid;

use super::ab_totals::{ExposureStateRow, UnitOutcomeRow, UnitRunsRow, refresh_units};
use super::figures::{FigureDeltas, PRODUCTION, success_of};
use super::{Backend, DbId, ensure_prompt, in_list, placeholder, values_list};
use crate::store::grading_jobs::{
    ChunkTotals, GradableRun, GradedRun, GradingJob, GradingJobStore, JobKind, JobListFilter,
    JobStatus, NewGradingJob, RunSelection,
};
use crate::store::{Missing, Result, StoreError, now};

pub(crate) const JOB_COLUMNS: &str = "id, prompt_id, version, graders, filter, status, total_rows, \
     processed_rows, passed_rows, failed_rows, error_rows, errors, token_budget, tokens_used, \
     error, cancel_requested, created_by, created_at, started_at, finished_at, claimed_by, \
     lease_until";

/// The statement of a job list: `columns` of the jobs matching `filter` (of `kind` when given),
/// newest first. Each condition present adds its placeholder, in the order prompt, kind,
/// status, before, then the limit; callers bind in that order.
pub(crate) fn job_list_sql(columns: &str, filter: &JobListFilter, kind: Option<JobKind>) -> String {
    let mut conditions = Vec::new();
    let mut next = 0;
    let mut placeholder = || {
        next += 1;
        format!("${next}")
    };
    if filter.prompt_id.is_some() {
        conditions.push(format!("prompt_id = {}", placeholder()));
    }
    if kind.is_some() {
        conditions.push(format!("kind = {}", placeholder()));
    }
    if filter.status.is_some() {
        conditions.push(format!("status = {}", placeholder()));
    }
    if filter.before.is_some() {
        conditions.push(format!("id < {}", placeholder()));
    }
    let limit = placeholder();
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    format!("SELECT {columns} FROM grading_runs {filter_sql} ORDER BY id DESC LIMIT {limit}")
}

/// The columns of a run graders need, as `d`, plus the previous attempt of the same task and
/// prompt (`previous_*`).
const GRADABLE_COLUMNS: &str = "d.id, d.prompt_id, d.version, d.task_id, d.attempt, \
     d.input_variables, d.output, d.model, d.tests_passed, d.pr_merged, d.expected_files, \
     d.failure_signature, d.annotation_source, d.outcome_at, \
     (SELECT p.output FROM prompt_optimization_data p WHERE p.prompt_id = d.prompt_id \
      AND p.task_id = d.task_id AND p.attempt < d.attempt ORDER BY p.attempt DESC LIMIT 1) \
      AS previous_output, \
     (SELECT p.failure_signature FROM prompt_optimization_data p WHERE p.prompt_id = d.prompt_id \
      AND p.task_id = d.task_id AND p.attempt < d.attempt ORDER BY p.attempt DESC LIMIT 1) \
      AS previous_failure_signature";

#[derive(FromRow)]
pub(crate) struct JobRow {
    id: DbId,
    prompt_id: Option<String>,
    version: Option<i64>,
    graders: Json<Vec<String>>,
    filter: Json<RunSelection>,
    status: String,
    total_rows: i64,
    processed_rows: i64,
    passed_rows: i64,
    failed_rows: i64,
    error_rows: i64,
    errors: Json<BTreeMap<String, i64>>,
    token_budget: Option<i64>,
    tokens_used: i64,
    error: Option<String>,
    cancel_requested: bool,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    claimed_by: Option<String>,
    lease_until: Option<DateTime<Utc>>,
}

impl TryFrom<JobRow> for GradingJob {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self> {
        let status = JobStatus::parse(&row.status)
            .ok_or_else(|| StoreError::decode(format!("grading run status {}", row.status)))?;
        Ok(GradingJob {
            id: row.id.0,
            prompt_id: row.prompt_id.unwrap_or_default(),
            version: row.version,
            graders: row.graders.0,
            filter: row.filter.0,
            status,
            total: row.total_rows,
            processed: row.processed_rows,
            passed: row.passed_rows,
            failed: row.failed_rows,
            errored: row.error_rows,
            errors: row.errors.0,
            token_budget: row.token_budget,
            tokens_used: row.tokens_used,
            error: row.error,
            cancel_requested: row.cancel_requested,
            created_by: row.created_by,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            claimed_by: row.claimed_by,
            lease_until: row.lease_until,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct GradableRow {
    id: DbId,
    prompt_id: String,
    version: i64,
    task_id: String,
    attempt: i64,
    input_variables: Json<Value>,
    output: Option<String>,
    model: Option<String>,
    tests_passed: Option<bool>,
    pr_merged: Option<bool>,
    expected_files: Option<Json<Value>>,
    failure_signature: Option<String>,
    annotation_source: Option<String>,
    outcome_at: Option<DateTime<Utc>>,
    previous_output: Option<String>,
    previous_failure_signature: Option<String>,
}

impl GradableRow {
    fn into_run(self, row_index: i64) -> GradableRun {
        GradableRun {
            id: self.id.0,
            row_index,
            prompt_id: self.prompt_id,
            version: self.version,
            task_id: self.task_id,
            attempt: self.attempt,
            input: self.input_variables.0,
            output: self.output,
            model: self.model,
            tests_passed: self.tests_passed,
            pr_merged: self.pr_merged,
            expected_files: self.expected_files.map(|json| json.0),
            failure_signature: self.failure_signature,
            previous_output: self.previous_output,
            previous_failure_signature: self.previous_failure_signature,
            annotation_source: self.annotation_source,
            outcome_at: self.outcome_at,
        }
    }
}

/// A job row with its position, as `job_rows` reads it.
#[derive(FromRow)]
pub(crate) struct JobGradableRow {
    row_index: i64,
    #[sqlx(flatten)]
    run: GradableRow,
}

fn lease_end(lease: Duration) -> DateTime<Utc> {
    now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

/// `graderResults` after `verdicts`: each verdict replaces the one of its grader, others stay.
pub(crate) fn merged_results(
    current: Option<Value>,
    verdicts: &[crate::store::GraderVerdict],
) -> Value {
    let mut results = match current {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let at = now();
    for verdict in verdicts {
        let mut entry = serde_json::to_value(verdict).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut entry {
            map.remove("grader");
            map.insert("gradedAt".into(), Value::String(at.to_rfc3339()));
        }
        results.insert(verdict.grader.clone(), entry);
    }
    Value::Object(results)
}

/// Whether every grader result that decides passing passed; `None` when none decides.
pub(crate) fn all_passed(results: &Value) -> Option<bool> {
    let decided: Vec<bool> = results
        .as_object()
        .into_iter()
        .flat_map(|map| map.values())
        .filter_map(|entry| entry.get("passed").and_then(Value::as_bool))
        .collect();
    (!decided.is_empty()).then(|| decided.iter().all(|passed| *passed))
}

#[async_trait]
impl<B> GradingJobStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<f64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<bool>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> bool: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DbId>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q [String]>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q RunSelection>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q BTreeMap<String, i64>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q Value>: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (Json<BTreeMap<String, i64>>,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (Option<Json<Value>>,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (String, i64): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> StoredVerdictsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> JobRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> GradableRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> JobGradableRow: FromRow<'r, <B::Db as Database>::Row>,
{
    async fn create_grading_job(&self, new: NewGradingJob) -> Result<GradingJob> {
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, &new.prompt_id, "").await?;
        if let Some(version) = new.version {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM prompt_versions WHERE prompt_id = $1 AND version = $2",
            )
            .bind(new.prompt_id.as_str())
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
            if found.is_none() {
                return Err(Missing::version(&new.prompt_id, version).into());
            }
        }
        let id = DbId(Uuid::now_v7());
        let at = now();
        sqlx::query(
            "INSERT INTO grading_runs (id, prompt_id, version, graders, filter, status, \
             token_budget, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8)",
        )
        .bind(id)
        .bind(new.prompt_id.as_str())
        .bind(new.version)
        .bind(Json(new.graders.as_slice()))
        .bind(Json(&new.selection))
        .bind(new.token_budget)
        .bind(new.created_by.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(|e| B::conflict("grading_runs_counts_nonnegative", e))?;

        // The rows, fixed now: the selection's conditions with their binds in order.
        let selection = &new.selection;
        let mut conditions = vec![
            "prompt_id = $2".to_owned(),
            "origin = 'production'".to_owned(),
        ];
        let mut next = 3;
        let mut placeholder = || {
            let text = format!("${next}");
            next += 1;
            text
        };
        if new.version.is_some() {
            conditions.push(format!("version = {}", placeholder()));
        }
        if selection.from.is_some() {
            conditions.push(format!("created_at >= {}", placeholder()));
        }
        if selection.to.is_some() {
            conditions.push(format!("created_at < {}", placeholder()));
        }
        if selection.rating.is_some() {
            conditions.push(format!("rating = {}", placeholder()));
        }
        match selection.annotated {
            Some(true) => conditions.push("rating IS NOT NULL".into()),
            Some(false) => conditions.push("rating IS NULL".into()),
            None => {}
        }
        if let Some(ids) = &selection.ids {
            let list: Vec<String> = ids.iter().map(|_| placeholder()).collect();
            // An empty list selects nothing (`IN ()` is not valid SQL on PostgreSQL).
            conditions.push(if list.is_empty() {
                "1 = 0".to_owned()
            } else {
                format!("id IN ({})", list.join(", "))
            });
        }
        let insert = format!(
            "INSERT INTO grading_run_rows (run_id, row_index, data_id) \
             SELECT $1, ROW_NUMBER() OVER (ORDER BY id) - 1, id FROM prompt_optimization_data \
             WHERE {}",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(&insert).bind(id).bind(new.prompt_id.as_str());
        if let Some(version) = new.version {
            query = query.bind(version);
        }
        if let Some(from) = selection.from {
            query = query.bind(from);
        }
        if let Some(to) = selection.to {
            query = query.bind(to);
        }
        if let Some(rating) = &selection.rating {
            query = query.bind(rating.as_str());
        }
        for run in selection.ids.iter().flatten() {
            query = query.bind(DbId(*run));
        }
        query.execute(&mut *tx).await?;
        let row: JobRow = sqlx::query_as(&format!(
            "UPDATE grading_runs SET total_rows = \
             (SELECT COUNT(*) FROM grading_run_rows WHERE run_id = $1) \
             WHERE id = $1 RETURNING {JOB_COLUMNS}"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    async fn get_grading_job(&self, id: Uuid) -> Result<GradingJob> {
        let row: Option<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM grading_runs WHERE id = $1"
        ))
        .bind(DbId(id))
        .fetch_optional(self.pool())
        .await?;
        row.ok_or(Missing::GradingJob(id))?.try_into()
    }

    async fn list_grading_jobs(
        &self,
        filter: &JobListFilter,
        limit: u32,
    ) -> Result<Vec<GradingJob>> {
        let sql = job_list_sql(JOB_COLUMNS, filter, filter.kind);
        let mut query = sqlx::query_as::<_, JobRow>(&sql);
        if let Some(prompt_id) = &filter.prompt_id {
            query = query.bind(prompt_id.as_str());
        }
        if let Some(kind) = filter.kind {
            query = query.bind(kind.as_str());
        }
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(before) = filter.before {
            query = query.bind(DbId(before));
        }
        let rows: Vec<JobRow> = query.bind(i64::from(limit)).fetch_all(self.pool()).await?;
        rows.into_iter().map(GradingJob::try_from).collect()
    }

    async fn cancel_grading_job(&self, id: Uuid) -> Result<GradingJob> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> = sqlx::query_scalar(&format!(
            "SELECT status FROM grading_runs WHERE id = $1 {}",
            B::ROW_LOCK
        ))
        .bind(DbId(id))
        .fetch_optional(&mut *tx)
        .await?;
        let status = status.ok_or(Missing::GradingJob(id))?;
        let at = now();
        match JobStatus::parse(&status) {
            Some(JobStatus::Queued) => {
                sqlx::query(
                    "UPDATE grading_runs SET status = 'cancelled', cancel_requested = TRUE, \
                     finished_at = $2 WHERE id = $1",
                )
                .bind(DbId(id))
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            Some(JobStatus::Running) => {
                sqlx::query("UPDATE grading_runs SET cancel_requested = TRUE WHERE id = $1")
                    .bind(DbId(id))
                    .execute(&mut *tx)
                    .await?;
            }
            _ => {}
        }
        tx.commit().await?;
        self.get_grading_job(id).await
    }

    async fn claim_grading_job(
        &self,
        instance: &str,
        lease: Duration,
    ) -> Result<Option<GradingJob>> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let candidate: Option<(DbId,)> = sqlx::query_as(&format!(
            "SELECT id FROM grading_runs WHERE status = 'queued' \
             OR (status = 'running' AND lease_until < $1) \
             ORDER BY created_at, id LIMIT 1 {}",
            B::SKIP_LOCKED
        ))
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id,)) = candidate else {
            return Ok(None);
        };
        let row: JobRow = sqlx::query_as(&format!(
            "UPDATE grading_runs SET status = 'running', claimed_by = $2, lease_until = $3, \
             started_at = COALESCE(started_at, $4) WHERE id = $1 RETURNING {JOB_COLUMNS}"
        ))
        .bind(id)
        .bind(instance)
        .bind(lease_end(lease))
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(row.try_into()?))
    }

    async fn renew_grading_lease(&self, id: Uuid, instance: &str, lease: Duration) -> Result<bool> {
        let renewed: Option<(DbId,)> = sqlx::query_as(
            "UPDATE grading_runs SET lease_until = $3 \
             WHERE id = $1 AND claimed_by = $2 AND status = 'running' RETURNING id",
        )
        .bind(DbId(id))
        .bind(instance)
        .bind(lease_end(lease))
        .fetch_optional(self.pool())
        .await?;
        Ok(renewed.is_some())
    }

    async fn job_rows(&self, id: Uuid, from: i64, limit: usize) -> Result<Vec<GradableRun>> {
        let rows: Vec<JobGradableRow> = sqlx::query_as(&format!(
            "SELECT r.row_index, {GRADABLE_COLUMNS} FROM grading_run_rows r \
             JOIN prompt_optimization_data d ON d.id = r.data_id \
             WHERE r.run_id = $1 AND r.row_index >= $2 ORDER BY r.row_index LIMIT $3"
        ))
        .bind(DbId(id))
        .bind(from)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| row.run.into_run(row.row_index))
            .collect())
    }

    async fn record_chunk(
        &self,
        id: Uuid,
        instance: &str,
        from: i64,
        graded: &[GradedRun],
        totals: &ChunkTotals,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let current: Option<(Json<BTreeMap<String, i64>>,)> = sqlx::query_as(&format!(
            "SELECT errors FROM grading_runs WHERE id = $1 AND claimed_by = $2 \
             AND status = 'running' AND processed_rows = $3 {}",
            B::ROW_LOCK
        ))
        .bind(DbId(id))
        .bind(instance)
        .bind(from)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((Json(mut errors),)) = current else {
            return Ok(false);
        };
        for (kind, count) in &totals.errors {
            *errors.entry(kind.clone()).or_default() += count;
        }
        insert_results::<B>(&mut tx, id, graded).await?;
        store_verdicts::<B>(&mut tx, graded, false).await?;
        let processed = i64::try_from(graded.len()).unwrap_or(i64::MAX);
        sqlx::query(
            "UPDATE grading_runs SET processed_rows = processed_rows + $2, \
             passed_rows = passed_rows + $3, failed_rows = failed_rows + $4, \
             error_rows = error_rows + $5, tokens_used = tokens_used + $6, errors = $7 \
             WHERE id = $1",
        )
        .bind(DbId(id))
        .bind(processed)
        .bind(totals.passed)
        .bind(totals.failed)
        .bind(totals.errored)
        .bind(totals.tokens)
        .bind(Json(&errors))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn finish_grading_job(
        &self,
        id: Uuid,
        instance: &str,
        status: JobStatus,
        error: Option<&str>,
    ) -> Result<bool> {
        let finished: Option<(DbId,)> = sqlx::query_as(
            "UPDATE grading_runs SET status = $3, error = $4, finished_at = $5, \
             claimed_by = NULL, lease_until = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'running' RETURNING id",
        )
        .bind(DbId(id))
        .bind(instance)
        .bind(status.as_str())
        .bind(error)
        .bind(now())
        .fetch_optional(self.pool())
        .await?;
        Ok(finished.is_some())
    }

    async fn runs_to_auto_grade(&self, limit: usize) -> Result<Vec<GradableRun>> {
        let rows: Vec<GradableRow> = sqlx::query_as(&format!(
            "SELECT {GRADABLE_COLUMNS} FROM prompt_optimization_data d \
             WHERE d.auto_graded_at IS NULL AND d.origin = 'production' \
             ORDER BY d.created_at, d.id LIMIT $1"
        ))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|row| row.into_run(0)).collect())
    }

    async fn record_auto_grades(&self, graded: &[GradedRun]) -> Result<()> {
        if graded.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        store_verdicts::<B>(&mut tx, graded, true).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Verdicts per multi-row `INSERT` into `grading_results`: 16 parameters each keeps a
/// statement below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const RESULT_INSERT_ROWS: usize = 1000;
/// Runs per `SELECT … IN (…)` and per multi-row `UPDATE … FROM (VALUES …)` when storing
/// verdicts: a chunk is 256 to 512 runs, so one or two statements each.
const VERDICT_STATEMENT_ROWS: usize = 500;

const RESULT_COLUMNS: &str = "id, run_id, grader_id, grader_name, row_index, data_id, score, \
     passed, label, reasoning, error_kind, error_message, prompt_tokens, completion_tokens, \
     duration_us, created_at";
const RESULT_COLUMN_COUNT: usize = 16;

/// Writes every verdict of a job's chunk to `grading_results`, a multi-row `INSERT` per
/// [`RESULT_INSERT_ROWS`] verdicts (a statement per verdict made the writes the job's
/// bottleneck: BENCHMARKS.md, "Runs").
pub(crate) async fn insert_results<B>(
    tx: &mut Transaction<'static, B::Db>,
    job: Uuid,
    graded: &[GradedRun],
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<f64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<bool>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DbId>: Encode<'q, B::Db> + Type<B::Db>,
{
    let verdicts: Vec<(&GradedRun, &crate::store::GraderVerdict)> = graded
        .iter()
        .flat_map(|run| run.verdicts.iter().map(move |verdict| (run, verdict)))
        .collect();
    let at = now();
    for chunk in verdicts.chunks(RESULT_INSERT_ROWS) {
        let sql = format!(
            "INSERT INTO grading_results ({RESULT_COLUMNS}) VALUES {}",
            values_list(B::NUMBERED_PARAMETERS, 1, chunk.len(), RESULT_COLUMN_COUNT)
        );
        let mut query = sqlx::query(&sql);
        for (run, verdict) in chunk {
            query = query
                .bind(DbId(Uuid::now_v7()))
                .bind(DbId(job))
                .bind(verdict.grader_id.map(DbId))
                .bind(verdict.grader.as_str())
                .bind(run.row_index)
                .bind(DbId(run.data_id))
                .bind(verdict.score)
                .bind(verdict.passed)
                .bind(verdict.label.as_deref())
                .bind(verdict.reasoning.as_deref())
                .bind(verdict.error.as_deref())
                .bind(verdict.error_message.as_deref())
                .bind(verdict.prompt_tokens)
                .bind(verdict.completion_tokens)
                .bind(verdict.duration_us)
                .bind(at);
        }
        query
            .execute(&mut **tx)
            .await
            .map_err(|e| B::conflict("grading_results_run_grader_row_key", e))?;
    }
    Ok(())
}

/// What storing verdicts reads of a run first.
#[derive(FromRow)]
pub(crate) struct StoredVerdictsRow {
    id: DbId,
    prompt_id: String,
    version: i64,
    grader_results: Option<Json<Value>>,
    graders_passed: Option<bool>,
    tests_passed: Option<bool>,
    rating: Option<String>,
    origin: String,
    unit: String,
}

/// Merges verdicts into each run's `graderResults`, sets `graders_passed`, marks the run
/// auto-graded when `auto` (unless an outcome arrived since it was read: see
/// [`GradingJobStore::record_auto_grades`]), and moves the running aggregates (figures, A/B
/// totals) by the runs whose `graders_passed` changed (nothing else here counts in them).
///
/// Batched: one `SELECT … IN (…)` and one `UPDATE … FROM (VALUES …)` per
/// [`VERDICT_STATEMENT_ROWS`] runs, not a statement per run.
async fn store_verdicts<B>(
    tx: &mut Transaction<'static, B::Db>,
    graded: &[GradedRun],
    auto: bool,
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<bool>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q Value>: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> StoredVerdictsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
{
    // Lock the prompts first, in order, as every writer of runs does: the figures need it.
    let mut prompts: Vec<&str> = graded.iter().map(|run| run.prompt_id.as_str()).collect();
    prompts.sort_unstable();
    prompts.dedup();
    for prompt in prompts {
        ensure_prompt(tx, prompt, B::ROW_LOCK).await?;
    }
    let mut current: HashMap<Uuid, StoredVerdictsRow> = HashMap::with_capacity(graded.len());
    for chunk in graded.chunks(VERDICT_STATEMENT_ROWS) {
        let sql = format!(
            "SELECT id, prompt_id, version, grader_results, graders_passed, tests_passed, \
             rating, origin, COALESCE(root_task_id, task_id) AS unit \
             FROM prompt_optimization_data WHERE id IN ({})",
            in_list(B::NUMBERED_PARAMETERS, 1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, StoredVerdictsRow>(&sql);
        for run in chunk {
            query = query.bind(DbId(run.data_id));
        }
        for row in query.fetch_all(&mut **tx).await? {
            current.insert(row.id.0, row);
        }
    }

    // What each run becomes; a run that no longer exists has nothing to update.
    let mut updates: Vec<(&GradedRun, Value, Option<bool>)> = Vec::with_capacity(graded.len());
    let mut figures = FigureDeltas::default();
    let mut units: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for run in graded {
        let Some(row) = current.get_mut(&run.data_id) else {
            continue;
        };
        let merged = merged_results(row.grader_results.take().map(|json| json.0), &run.verdicts);
        let passed = all_passed(&merged);
        if passed != row.graders_passed && row.origin == PRODUCTION {
            let rating = row.rating.as_deref();
            figures.success_changed(
                &row.prompt_id,
                row.version,
                success_of(row.tests_passed, rating, row.graders_passed),
                success_of(row.tests_passed, rating, passed),
            );
            units
                .entry(row.prompt_id.clone())
                .or_default()
                .insert(row.unit.clone());
        }
        // A run graded twice in one batch: the second merge starts from the first.
        row.grader_results = Some(Json(merged.clone()));
        row.graders_passed = passed;
        updates.push((run, merged, passed));
    }

    let at = now();
    let numbered = B::NUMBERED_PARAMETERS;
    // `auto_graded_at` is set only when the outcome is still the one the grader saw. The
    // timestamp is bound once per use, so the statement reads the same with `?` parameters.
    let (auto_graded, stamps) = if auto {
        (
            format!(
                "auto_graded_at = CASE WHEN outcome_at IS NOT DISTINCT FROM v.column4 \
                 THEN {} ELSE auto_graded_at END",
                placeholder(numbered, 2)
            ),
            2,
        )
    } else {
        ("auto_graded_at = auto_graded_at".to_owned(), 1)
    };
    for chunk in updates.chunks(VERDICT_STATEMENT_ROWS) {
        let sql = format!(
            "UPDATE prompt_optimization_data SET grader_results = v.column2, \
             graders_passed = v.column3, updated_at = {}, {auto_graded} \
             FROM (VALUES {}) AS v WHERE prompt_optimization_data.id = v.column1",
            placeholder(numbered, 1),
            values_list(numbered, stamps + 1, chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for _ in 0..stamps {
            query = query.bind(at);
        }
        for (run, merged, passed) in chunk {
            query = query
                .bind(DbId(run.data_id))
                .bind(Json(merged))
                .bind(*passed)
                .bind(run.outcome_at);
        }
        query.execute(&mut **tx).await?;
    }
    figures.apply(tx).await?;
    for (prompt, units) in &units {
        let units: BTreeSet<&str> = units.iter().map(String::as_str).collect();
        refresh_units::<B>(tx, prompt, &units).await?;
    }
    Ok(())
}
