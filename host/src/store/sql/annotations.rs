//! The annotation domain's SQL, once for both backends: [`AnnotationStore`] for every
//! [`Backend`].
//!
//! Annotating or clearing changes what the version figures count (the rating decides success
//! when the tests are unknown), so those writes make themselves the prompt's only writer
//! (`begin_write`, then the prompt's row with [`Backend::ROW_LOCK`]), read the run again under
//! that lock, decide (person over rule), write the run's columns and the history row, and move
//! the running aggregates (the version's figures, the A/B totals of the run's unit) by the change
//! in the same transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Transaction, Type};
use uuid::Uuid;

use std::collections::BTreeSet;

use super::ab_totals::{ExposureStateRow, UnitOutcomeRow, UnitRunsRow, refresh_units};
use super::figures::{FigureDeltas, PRODUCTION, SUCCEEDED, SUCCESS_KNOWN, success_of};
use super::{Backend, DbId, ensure_prompt};
use crate::store::annotations::valid_failure_mode_code;
use crate::store::{
    AnnotateOutcome, AnnotationAction, AnnotationRecord, AnnotationSource, AnnotationStore,
    ClearOutcome, CurrentAnnotation, FailureMode, FailureModeCount, FailureModeCounts, Missing,
    NewAnnotation, QueueCursor, QueuePage, QueuedRun, Rating, Result, StoreError, now,
};

/// A run failed for the counts: success known and not succeeded (see `store/annotations.rs`).
/// `SUCCEEDED` is NULL for some known cases (a NULL comparison inside an OR), hence COALESCE.
fn failed() -> String {
    format!("({SUCCESS_KNOWN} AND NOT COALESCE({SUCCEEDED}, FALSE))")
}

/// A run comes first in the queue when its tests or its graders failed.
const QUEUE_FAILED: &str = "COALESCE(tests_passed = FALSE OR graders_passed = FALSE, FALSE)";

const CURRENT_COLUMNS: &str = "id, prompt_id, version, rating, output_feedback, failure_mode, \
     annotated_by, annotated_at, annotation_source";
const HISTORY_COLUMNS: &str =
    "id, data_id, action, rating, output_feedback, failure_mode, source, actor, created_at";

/// A run's row as far as annotations are concerned.
#[derive(FromRow)]
pub(crate) struct RunAnnotationRow {
    id: DbId,
    prompt_id: String,
    version: i64,
    rating: Option<String>,
    output_feedback: Option<String>,
    failure_mode: Option<String>,
    annotated_by: Option<String>,
    annotated_at: Option<DateTime<Utc>>,
    annotation_source: Option<String>,
}

impl RunAnnotationRow {
    /// The current annotation, if the row holds one (a rating is what makes it one).
    fn current(&self) -> Result<Option<CurrentAnnotation>> {
        let Some(rating) = &self.rating else {
            return Ok(None);
        };
        let incomplete =
            || StoreError::decode(format!("run {} has a rating but no annotator", self.id.0));
        Ok(Some(CurrentAnnotation {
            run_id: self.id.0,
            rating: parse_rating(rating)?,
            output_feedback: self.output_feedback.clone(),
            failure_mode: self.failure_mode.clone(),
            // Rows annotated before the source column existed were people's.
            source: match &self.annotation_source {
                Some(source) => parse_source(source)?,
                None => AnnotationSource::Person,
            },
            annotated_by: self.annotated_by.clone().ok_or_else(incomplete)?,
            annotated_at: self.annotated_at.ok_or_else(incomplete)?,
        }))
    }
}

#[derive(FromRow)]
pub(crate) struct HistoryRow {
    id: DbId,
    data_id: DbId,
    action: String,
    rating: Option<String>,
    output_feedback: Option<String>,
    failure_mode: Option<String>,
    source: String,
    actor: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<HistoryRow> for AnnotationRecord {
    type Error = StoreError;

    fn try_from(row: HistoryRow) -> Result<Self> {
        Ok(AnnotationRecord {
            id: row.id.0,
            run_id: row.data_id.0,
            action: AnnotationAction::parse(&row.action).ok_or_else(|| {
                StoreError::decode(format!("unknown annotation action {:?}", row.action))
            })?,
            rating: row.rating.as_deref().map(parse_rating).transpose()?,
            output_feedback: row.output_feedback,
            failure_mode: row.failure_mode,
            source: parse_source(&row.source)?,
            actor: row.actor,
            created_at: row.created_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct QueueRow {
    id: DbId,
    prompt_id: String,
    version: i64,
    task_id: String,
    attempt: i64,
    output: Option<String>,
    tests_passed: Option<bool>,
    graders_passed: Option<bool>,
    failed: bool,
    rating: Option<String>,
    failure_mode: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<QueueRow> for QueuedRun {
    type Error = StoreError;

    fn try_from(row: QueueRow) -> Result<Self> {
        Ok(QueuedRun {
            id: row.id.0,
            prompt_id: row.prompt_id,
            version: row.version,
            task_id: row.task_id,
            attempt: row.attempt,
            output: row.output,
            tests_passed: row.tests_passed,
            graders_passed: row.graders_passed,
            failed: row.failed,
            rating: row.rating.as_deref().map(parse_rating).transpose()?,
            failure_mode: row.failure_mode,
            created_at: row.created_at,
        })
    }
}

fn parse_rating(value: &str) -> Result<Rating> {
    Rating::parse(value).ok_or_else(|| StoreError::decode(format!("unknown rating {value:?}")))
}

fn parse_source(value: &str) -> Result<AnnotationSource> {
    AnnotationSource::parse(value)
        .ok_or_else(|| StoreError::decode(format!("unknown annotation source {value:?}")))
}

#[async_trait]
impl<B> AnnotationStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> bool: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64, i64): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (String, String, i64): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> RunAnnotationRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> HistoryRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> QueueRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> RunSuccessRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
{
    async fn annotate(&self, run_id: Uuid, new: NewAnnotation) -> Result<AnnotateOutcome> {
        let mut tx = self.begin_write().await?;
        let row = lock_run::<B>(&mut tx, run_id).await?;
        if let Some(code) = &new.failure_mode {
            let allowed = taxonomy::<B::Db>(&mut tx, &row.prompt_id).await?;
            if !allowed.contains(code) {
                return Err(StoreError::InvalidFailureMode {
                    prompt: row.prompt_id,
                    code: code.clone(),
                    allowed,
                });
            }
        }
        if let Some(current) = row.current()?
            && new.source == AnnotationSource::Rule
            && current.source == AnnotationSource::Person
        {
            tx.commit().await?;
            return Ok(AnnotateOutcome::Kept(current));
        }
        let current = CurrentAnnotation {
            run_id,
            rating: new.rating,
            output_feedback: new.output_feedback,
            failure_mode: new.failure_mode,
            source: new.source,
            annotated_by: new.actor,
            annotated_at: now(),
        };
        write_current::<B>(&mut tx, run_id, Some(&current)).await?;
        append::<B>(
            &mut tx,
            run_id,
            AnnotationAction::Set,
            Some(&current),
            current.source,
            &current.annotated_by,
        )
        .await?;
        rating_changed::<B>(&mut tx, &row, Some(current.rating.as_str())).await?;
        tx.commit().await?;
        Ok(AnnotateOutcome::Set(current))
    }

    async fn clear_annotation(
        &self,
        run_id: Uuid,
        actor: &str,
        source: AnnotationSource,
    ) -> Result<ClearOutcome> {
        let mut tx = self.begin_write().await?;
        let row = lock_run::<B>(&mut tx, run_id).await?;
        let Some(current) = row.current()? else {
            tx.commit().await?;
            return Ok(ClearOutcome::NothingToClear);
        };
        if source == AnnotationSource::Rule && current.source == AnnotationSource::Person {
            tx.commit().await?;
            return Ok(ClearOutcome::Kept(current));
        }
        write_current::<B>(&mut tx, run_id, None).await?;
        append::<B>(
            &mut tx,
            run_id,
            AnnotationAction::Clear,
            None,
            source,
            actor,
        )
        .await?;
        rating_changed::<B>(&mut tx, &row, None).await?;
        tx.commit().await?;
        Ok(ClearOutcome::Cleared)
    }

    async fn current_annotation(&self, run_id: Uuid) -> Result<Option<CurrentAnnotation>> {
        let row: Option<RunAnnotationRow> = sqlx::query_as(&format!(
            "SELECT {CURRENT_COLUMNS} FROM prompt_optimization_data WHERE id = $1"
        ))
        .bind(DbId(run_id))
        .fetch_optional(self.pool())
        .await?;
        row.ok_or(Missing::Run(run_id))?.current()
    }

    async fn annotation_history(&self, run_id: Uuid) -> Result<Vec<AnnotationRecord>> {
        let mut tx = self.begin_snapshot().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT prompt_id FROM prompt_optimization_data WHERE id = $1")
                .bind(DbId(run_id))
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(Missing::Run(run_id).into());
        }
        // Ids are UUIDv7: within one instant, id order is insertion order.
        let rows: Vec<HistoryRow> = sqlx::query_as(&format!(
            "SELECT {HISTORY_COLUMNS} FROM annotations WHERE data_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(DbId(run_id))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter().map(AnnotationRecord::try_from).collect()
    }

    async fn add_failure_mode(
        &self,
        prompt_id: &str,
        code: &str,
        description: &str,
    ) -> Result<FailureMode> {
        if !valid_failure_mode_code(code) {
            return Err(StoreError::Conflict {
                constraint: "failure_modes_code_format".to_owned(),
            });
        }
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, prompt_id, "").await?;
        // DO NOTHING rather than a violation: on PostgreSQL a failed statement would poison
        // the transaction, and SQLite would not name the constraint.
        let inserted: Option<String> = sqlx::query_scalar(
            "INSERT INTO failure_modes (prompt_id, code, description, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (prompt_id, code) DO NOTHING RETURNING code",
        )
        .bind(prompt_id)
        .bind(code)
        .bind(description)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| B::conflict("failure_modes_code_format", e))?;
        if inserted.is_none() {
            return Err(StoreError::Conflict {
                constraint: "failure_modes_pkey".to_owned(),
            });
        }
        tx.commit().await?;
        Ok(FailureMode {
            prompt_id: prompt_id.to_owned(),
            code: code.to_owned(),
            description: description.to_owned(),
        })
    }

    async fn annotation_queue(
        &self,
        prompt_id: &str,
        limit: u32,
        cursor: Option<QueueCursor>,
    ) -> Result<QueuePage> {
        let mut tx = self.begin_snapshot().await?;
        ensure_prompt(&mut tx, prompt_id, "").await?;
        let after = if cursor.is_some() {
            format!("AND ({QUEUE_FAILED} < $3 OR ({QUEUE_FAILED} = $3 AND id < $4))")
        } else {
            String::new()
        };
        // One more than asked tells whether another page follows.
        let sql = format!(
            "SELECT id, prompt_id, version, task_id, attempt, output, tests_passed, \
             graders_passed, {QUEUE_FAILED} AS failed, rating, failure_mode, created_at \
             FROM prompt_optimization_data \
             WHERE prompt_id = $1 AND origin = 'production' \
             AND (annotation_source IS NULL OR annotation_source <> 'person') {after} \
             ORDER BY failed DESC, id DESC LIMIT $2"
        );
        let mut query = sqlx::query_as::<_, QueueRow>(&sql)
            .bind(prompt_id)
            .bind(i64::from(limit) + 1);
        if let Some(cursor) = cursor {
            query = query.bind(cursor.failed).bind(DbId(cursor.id));
        }
        let mut rows = query.fetch_all(&mut *tx).await?;
        // The queue's size and the page's place in it, in the same snapshot as the page
        // (the partial index of migration 0011 holds exactly the waiting runs).
        let waiting_where = "WHERE prompt_id = $1 AND origin = 'production' \
             AND (annotation_source IS NULL OR annotation_source <> 'person')";
        let (waiting, ahead): (i64, i64) = match cursor {
            None => {
                let sql = format!(
                    "SELECT COUNT(*), CAST(0 AS BIGINT) FROM prompt_optimization_data {waiting_where}"
                );
                sqlx::query_as(&sql)
                    .bind(prompt_id)
                    .fetch_one(&mut *tx)
                    .await?
            }
            Some(cursor) => {
                let sql = format!(
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN {QUEUE_FAILED} > $2 \
                     OR ({QUEUE_FAILED} = $2 AND id >= $3) THEN 1 ELSE 0 END), 0) \
                     FROM prompt_optimization_data {waiting_where}"
                );
                sqlx::query_as(&sql)
                    .bind(prompt_id)
                    .bind(cursor.failed)
                    .bind(DbId(cursor.id))
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        tx.commit().await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let items = rows
            .into_iter()
            .map(QueuedRun::try_from)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = match items.last() {
            Some(last) if more => Some(
                QueueCursor {
                    failed: last.failed,
                    id: last.id,
                }
                .to_string(),
            ),
            _ => None,
        };
        Ok(QueuePage {
            items,
            next_cursor,
            waiting: u64::try_from(waiting).unwrap_or(0),
            ahead: u64::try_from(ahead).unwrap_or(0),
        })
    }

    async fn failure_mode_counts(
        &self,
        prompt_id: &str,
        version: Option<i64>,
    ) -> Result<FailureModeCounts> {
        let mut tx = self.begin_snapshot().await?;
        ensure_prompt(&mut tx, prompt_id, "").await?;
        if let Some(version) = version {
            sqlx::query_scalar::<_, i64>(
                "SELECT version FROM prompt_versions WHERE prompt_id = $1 AND version = $2",
            )
            .bind(prompt_id)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Missing::version(prompt_id, version))?;
        }
        let failed = failed();
        let runs = "r.prompt_id = $1 AND r.origin = 'production' \
                    AND ($2 IS NULL OR r.version = $2)";
        let codes: Vec<(String, String, i64)> = sqlx::query_as(&format!(
            "SELECT fm.code, fm.description, COUNT(r.id) FROM failure_modes fm \
             LEFT JOIN prompt_optimization_data r \
             ON r.failure_mode = fm.code AND {runs} AND {failed} \
             WHERE fm.prompt_id = $1 GROUP BY fm.code, fm.description ORDER BY fm.code"
        ))
        .bind(prompt_id)
        .bind(version)
        .fetch_all(&mut *tx)
        .await?;
        let (failed_runs, uncoded): (i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN r.failure_mode IS NULL THEN 1 ELSE 0 END), 0) \
             FROM prompt_optimization_data r WHERE {runs} AND {failed}"
        ))
        .bind(prompt_id)
        .bind(version)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let share = |count: i64| (failed_runs > 0).then(|| count as f64 / failed_runs as f64);
        Ok(FailureModeCounts {
            prompt_id: prompt_id.to_owned(),
            version,
            failed_runs,
            codes: codes
                .into_iter()
                .map(|(code, description, count)| FailureModeCount {
                    code,
                    description,
                    count,
                    share: share(count),
                })
                .collect(),
            uncoded,
            uncoded_share: share(uncoded),
        })
    }
}

/// Reads the run, makes `tx` its prompt's only writer, and reads the run again under that lock
/// (what was read before it may have changed). `NotFound` if there is no such run.
async fn lock_run<B>(tx: &mut Transaction<'static, B::Db>, run_id: Uuid) -> Result<RunAnnotationRow>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> RunAnnotationRow: FromRow<'r, <B::Db as Database>::Row>,
{
    let prompt_id: String =
        sqlx::query_scalar("SELECT prompt_id FROM prompt_optimization_data WHERE id = $1")
            .bind(DbId(run_id))
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(Missing::Run(run_id))?;
    ensure_prompt(tx, &prompt_id, B::ROW_LOCK).await?;
    let row: RunAnnotationRow = sqlx::query_as(&format!(
        "SELECT {CURRENT_COLUMNS} FROM prompt_optimization_data WHERE id = $1"
    ))
    .bind(DbId(run_id))
    .fetch_one(&mut **tx)
    .await?;
    Ok(row)
}

/// What the running aggregates read of a run besides its annotation.
#[derive(FromRow)]
pub(crate) struct RunSuccessRow {
    origin: String,
    unit: String,
    tests_passed: Option<bool>,
    graders_passed: Option<bool>,
}

/// Moves the running aggregates by a change of the run's rating from `row.rating` to `rating`
/// (the run's columns already written; the prompt locked by [`lock_run`]).
async fn rating_changed<B>(
    tx: &mut Transaction<'static, B::Db>,
    row: &RunAnnotationRow,
    rating: Option<&str>,
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> RunSuccessRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
{
    let run: RunSuccessRow = sqlx::query_as(
        "SELECT origin, COALESCE(root_task_id, task_id) AS unit, tests_passed, graders_passed \
         FROM prompt_optimization_data WHERE id = $1",
    )
    .bind(row.id)
    .fetch_one(&mut **tx)
    .await?;
    if run.origin != PRODUCTION {
        return Ok(());
    }
    let mut figures = FigureDeltas::default();
    figures.success_changed(
        &row.prompt_id,
        row.version,
        success_of(run.tests_passed, row.rating.as_deref(), run.graders_passed),
        success_of(run.tests_passed, rating, run.graders_passed),
    );
    figures.apply(tx).await?;
    refresh_units::<B>(tx, &row.prompt_id, &BTreeSet::from([run.unit.as_str()])).await
}

/// The prompt's failure-mode codes, sorted.
async fn taxonomy<DB>(tx: &mut Transaction<'static, DB>, prompt_id: &str) -> Result<Vec<String>>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    Ok(
        sqlx::query_scalar("SELECT code FROM failure_modes WHERE prompt_id = $1 ORDER BY code")
            .bind(prompt_id)
            .fetch_all(&mut **tx)
            .await?,
    )
}

/// Writes the run's current-annotation columns (all NULL when `current` is `None`).
async fn write_current<B>(
    tx: &mut Transaction<'static, B::Db>,
    run_id: Uuid,
    current: Option<&CurrentAnnotation>,
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
{
    let at = current.map_or_else(now, |c| c.annotated_at);
    sqlx::query(
        "UPDATE prompt_optimization_data SET rating = $2, output_feedback = $3, \
         failure_mode = $4, annotated_by = $5, annotated_at = $6, annotation_source = $7, \
         updated_at = $8 WHERE id = $1",
    )
    .bind(DbId(run_id))
    .bind(current.map(|c| c.rating.as_str()))
    .bind(current.and_then(|c| c.output_feedback.as_deref()))
    .bind(current.and_then(|c| c.failure_mode.as_deref()))
    .bind(current.map(|c| c.annotated_by.as_str()))
    .bind(current.map(|c| c.annotated_at))
    .bind(current.map(|c| c.source.as_str()))
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(|e| B::conflict("prompt_optimization_data_failure_mode_fkey", e))?;
    Ok(())
}

/// Appends one entry to the history.
async fn append<B>(
    tx: &mut Transaction<'static, B::Db>,
    run_id: Uuid,
    action: AnnotationAction,
    set: Option<&CurrentAnnotation>,
    source: AnnotationSource,
    actor: &str,
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
{
    sqlx::query(&format!(
        "INSERT INTO annotations ({HISTORY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(DbId(Uuid::now_v7()))
    .bind(DbId(run_id))
    .bind(action.as_str())
    .bind(set.map(|c| c.rating.as_str()))
    .bind(set.and_then(|c| c.output_feedback.as_deref()))
    .bind(set.and_then(|c| c.failure_mode.as_deref()))
    .bind(source.as_str())
    .bind(actor)
    .bind(set.map_or_else(now, |c| c.annotated_at))
    .execute(&mut **tx)
    .await
    .map_err(|e| B::conflict("annotations_data_id_fkey", e))?;
    Ok(())
}
