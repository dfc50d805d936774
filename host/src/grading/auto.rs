//! Automatic grading: every `flywheel serve` grades newly recorded runs in the background, soon
//! after they are recorded and never on the request's path, with each enabled stored definition
//! of the run's prompt that needs no model (string checks, text similarity, multi, python and
//! wasm components of the `grader` world). Verdicts go to the run's `graderResults` keyed by
//! definition name; the documented rules ([`crate::grading::rules`]) annotate it first, so a
//! run whose verdicts are stored has had its rules applied.
//!
//! The queue is the runs whose `auto_graded_at` is unset, oldest first: recording a run leaves
//! it unset and an outcome arriving later unsets it again, so the rules see the outcome. Model
//! graders are left to grading jobs, which carry a token budget. Several instances on one
//! PostgreSQL database may grade the same new run at once; the verdicts are the same and the
//! merge by definition name keeps one of each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::graders::llm::LlmRun;
use crate::graders::registry::Registry;
use crate::grading::apply::{NamedGrader, grade_runs};
use crate::grading::rules;
use crate::store::{GradableRun, GradedRun, Store, StoreError};

/// Runs taken from the queue at once.
pub const AUTO_CHUNK_ROWS: usize = 512;

/// The background grader of new runs.
pub struct AutoGrader {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    idle_poll: Duration,
}

impl AutoGrader {
    /// A grader of this store's new runs with this registry's components.
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>) -> Self {
        AutoGrader {
            store,
            registry,
            idle_poll: Duration::from_millis(100),
        }
    }

    /// Runs forever: grades the queue, pauses when it is empty. Store errors are logged and
    /// retried after the pause.
    pub async fn run(self) {
        loop {
            match self.grade_some().await {
                Ok(0) => tokio::time::sleep(self.idle_poll).await,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "automatic grading failed; retrying");
                    tokio::time::sleep(self.idle_poll).await;
                }
            }
        }
    }

    /// Grades one chunk of the queue; returns how many runs it took.
    pub async fn grade_some(&self) -> Result<usize, StoreError> {
        let runs = self.store.runs_to_auto_grade(AUTO_CHUNK_ROWS).await?;
        if runs.is_empty() {
            return Ok(0);
        }
        let mut by_prompt: BTreeMap<&str, Vec<GradableRun>> = BTreeMap::new();
        for run in &runs {
            by_prompt
                .entry(run.prompt_id.as_str())
                .or_default()
                .push(run.clone());
        }
        let mut graded = Vec::with_capacity(runs.len());
        for (prompt, runs) in by_prompt {
            if let Some(done) = self.grade_prompt_runs(prompt, &runs).await? {
                graded.extend(done);
            }
        }
        // The rules first, then the verdicts: a run whose verdicts are stored has had its rules
        // applied (an interruption in between applies them again, which changes nothing).
        let by_id: BTreeMap<uuid::Uuid, &GradableRun> = runs.iter().map(|r| (r.id, r)).collect();
        for done in &graded {
            if let Some(run) = by_id.get(&done.data_id) {
                self.apply_rules(run, &done.verdicts).await?;
            }
        }
        self.store.record_auto_grades(&graded).await?;
        Ok(graded.len())
    }

    /// Annotates the run as the rules say ([`crate::grading::rules`]): sets the rule's
    /// annotation unless a person's is there (the store keeps a person's in any case) or the
    /// same one is already current, and clears an earlier rule's annotation that no rule
    /// supports any more (an outcome changed the picture). A failure mode the prompt's
    /// taxonomy lacks is left out rather than refused.
    async fn apply_rules(
        &self,
        run: &GradableRun,
        verdicts: &[crate::store::GraderVerdict],
    ) -> Result<(), StoreError> {
        use crate::store::{AnnotationSource, NewAnnotation, Rating};
        let verdict = rules::evaluate(run, verdicts);
        let current = if run.annotation_source.is_some() || verdict.is_some() {
            self.store.current_annotation(run.id).await?
        } else {
            None
        };
        if current
            .as_ref()
            .is_some_and(|c| c.source == AnnotationSource::Person)
        {
            return Ok(());
        }
        let Some(verdict) = verdict else {
            if current.is_some() {
                self.store
                    .clear_annotation(run.id, "rule:outcome_changed", AnnotationSource::Rule)
                    .await?;
            }
            return Ok(());
        };
        let same = current.as_ref().is_some_and(|c| {
            c.rating == Rating::Bad
                && c.annotated_by == verdict.rule
                && c.failure_mode.as_deref() == verdict.failure_mode
        });
        if same {
            return Ok(());
        }
        let annotation = |failure_mode: Option<&str>| NewAnnotation {
            rating: Rating::Bad,
            output_feedback: Some(verdict.feedback.clone()),
            failure_mode: failure_mode.map(str::to_owned),
            source: AnnotationSource::Rule,
            actor: verdict.rule.to_owned(),
        };
        match self
            .store
            .annotate(run.id, annotation(verdict.failure_mode))
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::InvalidFailureMode { .. }) => self
                .store
                .annotate(run.id, annotation(None))
                .await
                .map(|_| ()),
            // The run is gone (nothing deletes runs today): nothing to annotate.
            Err(StoreError::NotFound(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Grades one prompt's runs; `None` (they stay queued) while one of its definitions does
    /// not resolve and the built-in components are still loading.
    async fn grade_prompt_runs(
        &self,
        prompt: &str,
        runs: &[GradableRun],
    ) -> Result<Option<Vec<GradedRun>>, StoreError> {
        let mut graders = Vec::new();
        let mut unusable = Vec::new();
        for stored in self.store.list_graders(Some(prompt)).await? {
            if !stored.enabled {
                continue;
            }
            match NamedGrader::resolve(&stored, &self.registry) {
                Ok(grader) if grader.resolved.needs_model() => {}
                Ok(grader) => graders.push(grader),
                // Kept as an `invalid_config` verdict on each run, so the problem is visible
                // where the results are read.
                Err(why) => unusable.push((stored, why)),
            }
        }
        if !unusable.is_empty() && !crate::grading::stored::builtins_loaded(&self.registry) {
            return Ok(None);
        }
        let runtime = self.registry.runtime().clone();
        let (mut graded, _) = grade_runs(&graders, &runtime, &LlmRun::unlimited(), runs).await;
        for (stored, why) in &unusable {
            for run in &mut graded {
                run.verdicts.push(unusable_verdict(stored, why));
            }
        }
        Ok(Some(graded))
    }
}

fn unusable_verdict(
    stored: &crate::store::GraderDefinition,
    why: &str,
) -> crate::store::GraderVerdict {
    crate::store::GraderVerdict {
        grader: stored.name.clone(),
        grader_id: Some(stored.id),
        score: None,
        passed: None,
        label: None,
        reasoning: None,
        error: Some("invalid_config".into()),
        error_message: Some(why.to_owned()),
        prompt_tokens: None,
        completion_tokens: None,
        duration_us: None,
    }
}
