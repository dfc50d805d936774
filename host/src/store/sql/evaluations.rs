//! The evaluation domain's SQL, once for both backends ([`EvaluationStore`]): evaluation jobs in
//! the `grading_runs` queue (kind `evaluation`), chunk commits of output runs, verdicts and
//! cache entries, the answer cache, and the outputs results read.
//!
//! A chunk commit is guarded like a grading run's (`claimed_by = $me AND processed_rows =
//! $from`, read under the row lock): if the job was taken over or moved on, nothing is written.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use super::grading_jobs::{
    JOB_COLUMNS, JobRow, all_passed, insert_results, job_list_sql, merged_results,
};
use super::{Backend, DbId, ensure_prompt, in_list, values_list};
use crate::store::evaluations::{
    CachedAnswer, EvaluationChunk, EvaluationJob, EvaluationSpec, EvaluationStore, NewEvaluation,
    StoredOutput, StoredVerdict,
};
use crate::store::{GradingJob, JobKind, JobListFilter, Missing, Result, StoreError, now};

/// An evaluation job's row: the queue's columns plus the evaluation's own.
#[derive(FromRow)]
pub(crate) struct EvaluationRow {
    #[sqlx(flatten)]
    job: JobRow,
    spec: Option<Json<EvaluationSpec>>,
    model_calls: i64,
    cached_answers: i64,
}

impl TryFrom<EvaluationRow> for EvaluationJob {
    type Error = StoreError;

    fn try_from(row: EvaluationRow) -> Result<Self> {
        let job = GradingJob::try_from(row.job)?;
        let spec = row
            .spec
            .ok_or_else(|| StoreError::decode(format!("evaluation {} has no spec", job.id)))?
            .0;
        Ok(EvaluationJob {
            job,
            spec,
            model_calls: row.model_calls,
            cached_answers: row.cached_answers,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct CacheRow {
    key: String,
    model: String,
    answer: String,
    prompt_tokens: i64,
    completion_tokens: i64,
}

#[derive(FromRow)]
pub(crate) struct OutputRow {
    id: DbId,
    version: i64,
    evaluation_row: Option<DbId>,
    evaluation_repeat: Option<i64>,
    evaluation_error: Option<String>,
    total_tokens: Option<i64>,
    latency_ms: Option<i64>,
}

#[derive(FromRow)]
pub(crate) struct VerdictRow {
    data_id: Option<DbId>,
    grader_name: String,
    score: Option<f64>,
    passed: Option<bool>,
    error_kind: Option<String>,
}

fn evaluation_columns() -> String {
    format!("{JOB_COLUMNS}, spec, model_calls, cached_answers")
}

/// The columns of an output run, in the order [`record_outputs`] binds them.
const OUTPUT_COLUMNS: &str = "id, prompt_id, version, task_id, input_variables, output, model, \
     prompt_tokens, completion_tokens, total_tokens, latency_ms, grader_results, graders_passed, \
     origin, auto_graded_at, evaluation_id, evaluation_row, evaluation_repeat, evaluation_error, \
     evaluation_error_message, created_at, updated_at";
const OUTPUT_COLUMN_COUNT: usize = 22;
/// Output runs per multi-row `INSERT`: 22 parameters each stays far below either backend's limit.
const OUTPUT_INSERT_ROWS: usize = 500;
/// Keys per `SELECT … IN (…)` of the cache.
const CACHE_LOOKUP_KEYS: usize = 500;

#[async_trait]
impl<B> EvaluationStore for B
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
    for<'q> Option<DateTime<Utc>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DbId>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q [String]>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q BTreeMap<String, i64>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q EvaluationSpec>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q Value>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<Json<&'q Value>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (Json<BTreeMap<String, i64>>,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> EvaluationRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> CacheRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> OutputRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> VerdictRow: FromRow<'r, <B::Db as Database>::Row>,
{
    async fn create_evaluation(&self, new: NewEvaluation) -> Result<EvaluationJob> {
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, &new.prompt_id, "").await?;
        for version in &new.spec.versions {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM prompt_versions WHERE prompt_id = $1 AND version = $2",
            )
            .bind(new.prompt_id.as_str())
            .bind(*version)
            .fetch_optional(&mut *tx)
            .await?;
            if found.is_none() {
                return Err(Missing::version(&new.prompt_id, *version).into());
            }
        }
        let id = DbId(Uuid::now_v7());
        let row: EvaluationRow = sqlx::query_as(&format!(
            "INSERT INTO grading_runs (id, prompt_id, kind, spec, graders, status, total_rows, \
             token_budget, created_by, created_at) \
             VALUES ($1, $2, 'evaluation', $3, $4, 'queued', $5, $6, $7, $8) \
             RETURNING {}",
            evaluation_columns()
        ))
        .bind(id)
        .bind(new.prompt_id.as_str())
        .bind(Json(&new.spec))
        .bind(Json(new.graders.as_slice()))
        .bind(new.spec.total())
        .bind(new.token_budget)
        .bind(new.created_by.as_str())
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| B::conflict("grading_runs_counts_nonnegative", e))?;
        tx.commit().await?;
        row.try_into()
    }

    async fn get_evaluation(&self, id: Uuid) -> Result<EvaluationJob> {
        let row: Option<EvaluationRow> = sqlx::query_as(&format!(
            "SELECT {} FROM grading_runs WHERE id = $1 AND kind = 'evaluation'",
            evaluation_columns()
        ))
        .bind(DbId(id))
        .fetch_optional(self.pool())
        .await?;
        row.ok_or(Missing::Evaluation(id))?.try_into()
    }

    async fn list_evaluations(
        &self,
        filter: &JobListFilter,
        limit: u32,
    ) -> Result<Vec<EvaluationJob>> {
        let sql = job_list_sql(&evaluation_columns(), filter, Some(JobKind::Evaluation));
        let mut query = sqlx::query_as::<_, EvaluationRow>(&sql);
        if let Some(prompt_id) = &filter.prompt_id {
            query = query.bind(prompt_id.as_str());
        }
        query = query.bind(JobKind::Evaluation.as_str());
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(before) = filter.before {
            query = query.bind(DbId(before));
        }
        let rows: Vec<EvaluationRow> = query.bind(i64::from(limit)).fetch_all(self.pool()).await?;
        rows.into_iter().map(EvaluationJob::try_from).collect()
    }

    async fn cached_answers(&self, keys: &[String]) -> Result<Vec<CachedAnswer>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(CACHE_LOOKUP_KEYS) {
            let sql = format!(
                "SELECT key, model, answer, prompt_tokens, completion_tokens \
                 FROM model_answer_cache WHERE key IN ({})",
                in_list(B::NUMBERED_PARAMETERS, 1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, CacheRow>(&sql);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                found.push(CachedAnswer {
                    key: row.key,
                    model: row.model,
                    answer: row.answer,
                    prompt_tokens: row.prompt_tokens,
                    completion_tokens: row.completion_tokens,
                });
            }
        }
        Ok(found)
    }

    async fn record_evaluation_chunk(
        &self,
        id: Uuid,
        instance: &str,
        chunk: EvaluationChunk<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let current: Option<(Json<BTreeMap<String, i64>>,)> = sqlx::query_as(&format!(
            "SELECT errors FROM grading_runs WHERE id = $1 AND claimed_by = $2 \
             AND status = 'running' AND processed_rows = $3 AND kind = 'evaluation' {}",
            B::ROW_LOCK
        ))
        .bind(DbId(id))
        .bind(instance)
        .bind(chunk.from)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((Json(mut errors),)) = current else {
            return Ok(false);
        };
        for (kind, count) in &chunk.totals.errors {
            *errors.entry(kind.clone()).or_default() += count;
        }
        // Answers first: a later chunk of a resumed job finds them even if this one's runs are
        // ever removed. A key another instance cached meanwhile keeps its first answer.
        for answer in chunk.new_answers {
            sqlx::query(
                "INSERT INTO model_answer_cache (key, model, answer, prompt_tokens, \
                 completion_tokens, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(answer.key.as_str())
            .bind(answer.model.as_str())
            .bind(answer.answer.as_str())
            .bind(answer.prompt_tokens)
            .bind(answer.completion_tokens)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        let prompt =
            sqlx::query_scalar::<_, String>("SELECT prompt_id FROM grading_runs WHERE id = $1")
                .bind(DbId(id))
                .fetch_one(&mut *tx)
                .await?;
        let verdicts: HashMap<Uuid, &crate::store::GradedRun> =
            chunk.graded.iter().map(|run| (run.data_id, run)).collect();
        let at = now();
        for outputs in chunk.outputs.chunks(OUTPUT_INSERT_ROWS) {
            let sql = format!(
                "INSERT INTO prompt_optimization_data ({OUTPUT_COLUMNS}) VALUES {}",
                values_list(
                    B::NUMBERED_PARAMETERS,
                    1,
                    outputs.len(),
                    OUTPUT_COLUMN_COUNT
                )
            );
            let results: Vec<Option<Value>> = outputs
                .iter()
                .map(|output| {
                    verdicts
                        .get(&output.run_id)
                        .map(|graded| merged_results(None, &graded.verdicts))
                })
                .collect();
            let tasks: Vec<String> = outputs
                .iter()
                .map(|output| format!("eval:{id}:{}", output.position))
                .collect();
            let mut query = sqlx::query(&sql);
            for ((output, results), task) in outputs.iter().zip(&results).zip(&tasks) {
                let total = match (output.prompt_tokens, output.completion_tokens) {
                    (None, None) => None,
                    (p, c) => Some(p.unwrap_or(0) + c.unwrap_or(0)),
                };
                query = query
                    .bind(DbId(output.run_id))
                    .bind(prompt.as_str())
                    .bind(output.version)
                    .bind(task.as_str())
                    .bind(Json(&output.input))
                    .bind(output.output.as_deref())
                    .bind(output.model.as_deref())
                    .bind(output.prompt_tokens)
                    .bind(output.completion_tokens)
                    .bind(total)
                    .bind(output.latency_ms)
                    .bind(results.as_ref().map(Json))
                    .bind(results.as_ref().and_then(all_passed))
                    .bind("evaluation")
                    // Marked graded: the automatic grader only reads production runs anyway.
                    .bind(Some(at))
                    .bind(DbId(id))
                    .bind(DbId(output.dataset_row))
                    .bind(output.repeat)
                    .bind(output.error.as_deref())
                    .bind(output.error_message.as_deref())
                    .bind(at)
                    .bind(at);
            }
            query.execute(&mut *tx).await?;
        }
        insert_results::<B>(&mut tx, id, chunk.graded).await?;
        let processed = i64::try_from(chunk.outputs.len()).unwrap_or(i64::MAX);
        let totals = chunk.totals;
        sqlx::query(
            "UPDATE grading_runs SET processed_rows = processed_rows + $2, \
             passed_rows = passed_rows + $3, failed_rows = failed_rows + $4, \
             error_rows = error_rows + $5, tokens_used = tokens_used + $6, errors = $7, \
             model_calls = model_calls + $8, cached_answers = cached_answers + $9 \
             WHERE id = $1",
        )
        .bind(DbId(id))
        .bind(processed)
        .bind(totals.passed)
        .bind(totals.failed)
        .bind(totals.errored)
        .bind(totals.tokens)
        .bind(Json(&errors))
        .bind(chunk.model_calls)
        .bind(chunk.cached_answers)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn evaluation_outputs(&self, id: Uuid) -> Result<Vec<StoredOutput>> {
        let mut tx = self.begin_snapshot().await?;
        let runs: Vec<OutputRow> = sqlx::query_as(
            "SELECT id, version, evaluation_row, evaluation_repeat, evaluation_error, \
             total_tokens, latency_ms FROM prompt_optimization_data \
             WHERE evaluation_id = $1 ORDER BY id",
        )
        .bind(DbId(id))
        .fetch_all(&mut *tx)
        .await?;
        let verdicts: Vec<VerdictRow> = sqlx::query_as(
            "SELECT data_id, grader_name, score, passed, error_kind FROM grading_results \
             WHERE run_id = $1",
        )
        .bind(DbId(id))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut by_run: HashMap<Uuid, BTreeMap<String, StoredVerdict>> = HashMap::new();
        for verdict in verdicts {
            let Some(run) = verdict.data_id else { continue };
            by_run.entry(run.0).or_default().insert(
                verdict.grader_name,
                StoredVerdict {
                    score: verdict.score,
                    passed: verdict.passed,
                    error: verdict.error_kind,
                },
            );
        }
        Ok(runs
            .into_iter()
            .map(|run| StoredOutput {
                version: run.version,
                dataset_row: run.evaluation_row.map(|row| row.0).unwrap_or_default(),
                repeat: run.evaluation_repeat.unwrap_or(0),
                error: run.evaluation_error,
                tokens: run.total_tokens,
                latency_ms: run.latency_ms,
                verdicts: by_run.remove(&run.id.0).unwrap_or_default(),
            })
            .collect())
    }
}
