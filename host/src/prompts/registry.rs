//! [`PromptRegistry`]: the domain service the API and the CLI call. It validates input (template
//! syntax, sizes), delegates to the [`Store`], and serves `resolve` from a short-lived cache.
//!
//! Cache rule: an entry lives at most `cache_ttl` (default [`DEFAULT_RESOLVE_CACHE_TTL`]), so a
//! deploy through another instance sharing the database is served here within that time; a
//! deploy or rollback through this registry invalidates at once. A generation counter stops a
//! lookup that raced with such a deploy from re-inserting the version it read before the deploy.
//!
//! A/B tests: the running test of a prompt (or its absence) is cached by the same rule, with
//! both arms' templates. While one runs, resolve answers the arm of the task's unit (root task
//! id, else task id; a pure hash, so every instance and restart agrees) and that arm's version,
//! and queues the exposure without waiting ([`ExposureSink`]). Starting or ending a test through
//! this registry invalidates at once; through another instance, within the TTL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::PromptError;
use super::exposures::ExposureSink;
use super::template::Template;
use crate::experiments::{Arm, assign, unit_of};
use crate::store::{
    DeployRecord, Exposure, FailureMode, NewVersion, PromptVersion, PromptWithVersions, Store,
    StoreError, VersionSource,
};

/// How long `resolve` may serve a cached active version. Short enough that a deploy elsewhere is
/// visible well within the 1 s the service promises; long enough to absorb bursts of resolves.
pub const DEFAULT_RESOLVE_CACHE_TTL: Duration = Duration::from_millis(250);
/// Largest template accepted for a version (bytes). Prompts are sent to a model with the task on
/// top; anything larger is a mistake (a pasted log) rather than a prompt.
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;
/// Largest notes accepted for a version (bytes).
pub const MAX_NOTES_BYTES: usize = 16 * 1024;
/// Largest task id accepted by `resolve` (bytes).
pub const MAX_TASK_ID_BYTES: usize = 256;

/// A request to create a version (source `manual`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVersion {
    /// The template text, with `{{variables}}`.
    pub content: String,
    /// Free-text notes: why this version exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The version this one was derived from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_version: Option<i64>,
}

/// The version an agent must use for a task, with its template.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPrompt {
    /// The prompt.
    pub prompt_id: String,
    /// The version to use.
    pub version: i64,
    /// The template to render.
    pub content: String,
    /// The variables the template needs.
    pub variables: Vec<String>,
    /// The task this answer is for.
    pub task_id: String,
    /// The arm of the running A/B test this task is in (absent without a test).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<Arm>,
    /// The running A/B test that chose the version (absent without a test).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ab_test_id: Option<uuid::Uuid>,
}

/// What resolve needs of the active version, parsed once per cache fill.
#[derive(Debug)]
struct ActiveTemplate {
    version: i64,
    content: String,
    variables: Vec<String>,
}

#[derive(Debug, Clone)]
struct CacheEntry {
    fetched_at: Instant,
    active: Arc<ActiveTemplate>,
}

/// What resolve needs of a running A/B test, read once per cache fill.
#[derive(Debug)]
struct RunningTest {
    id: uuid::Uuid,
    seed: String,
    traffic_split: f64,
    a: ActiveTemplate,
    b: ActiveTemplate,
}

#[derive(Debug, Clone)]
struct RunningEntry {
    fetched_at: Instant,
    /// `None`: the prompt has no running test (cached too: that is the common case).
    test: Option<Arc<RunningTest>>,
}

/// The prompt registry; cheap to share behind an `Arc`.
pub struct PromptRegistry {
    store: Arc<dyn Store>,
    cache_ttl: Duration,
    cache: RwLock<HashMap<String, CacheEntry>>,
    running: RwLock<HashMap<String, RunningEntry>>,
    exposures: ExposureSink,
    /// Whether running A/B tests choose the version (`ENABLE_PROMPT_OPTIMIZATION`): when off,
    /// resolve serves the active version and records no exposure.
    ab_tests_enabled: bool,
    /// Bumped on every change of an active version made through this registry.
    generation: AtomicU64,
    /// Resolves answered from the cache.
    cache_hits: AtomicU64,
    /// Resolves that read the store (cache empty, stale or disabled).
    cache_misses: AtomicU64,
}

/// How the resolve cache has done since the registry was built (exported by `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Resolves answered from memory.
    pub hits: u64,
    /// Resolves that read the active version from the store.
    pub misses: u64,
}

impl std::fmt::Debug for PromptRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptRegistry")
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl PromptRegistry {
    /// A registry over `store` whose resolve cache keeps entries for `cache_ttl` (zero disables
    /// the cache).
    pub fn new(store: Arc<dyn Store>, cache_ttl: Duration) -> Self {
        PromptRegistry {
            exposures: ExposureSink::new(store.clone()),
            ab_tests_enabled: true,
            store,
            cache_ttl,
            cache: RwLock::new(HashMap::new()),
            running: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
        }
    }

    /// This registry with A/B tests served by resolve (`true`, the default) or ignored, as
    /// `ENABLE_PROMPT_OPTIMIZATION` says: with the feature off a running test (started while it
    /// was on) neither chooses versions nor gains exposures.
    pub fn with_ab_tests(mut self, enabled: bool) -> Self {
        self.ab_tests_enabled = enabled;
        self
    }

    /// Hits and misses of the resolve cache so far.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.cache_hits.load(Ordering::Relaxed),
            misses: self.cache_misses.load(Ordering::Relaxed),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Every prompt with its versions.
    pub async fn list(&self) -> Result<Vec<PromptWithVersions>, PromptError> {
        Ok(self.store.list_prompts().await?)
    }

    /// The versions of a prompt, oldest first.
    pub async fn versions(&self, prompt_id: &str) -> Result<Vec<PromptVersion>, PromptError> {
        Ok(self.store.list_versions(prompt_id).await?)
    }

    /// One version of a prompt.
    pub async fn version(
        &self,
        prompt_id: &str,
        version: i64,
    ) -> Result<PromptVersion, PromptError> {
        Ok(self.store.get_version(prompt_id, version).await?)
    }

    /// Creates a new inactive version written by `actor` (source `manual`).
    pub async fn create_version(
        &self,
        prompt_id: &str,
        req: CreateVersion,
        actor: &str,
    ) -> Result<PromptVersion, PromptError> {
        self.create_version_from(prompt_id, req, VersionSource::Manual, actor)
            .await
    }

    /// Creates a new inactive version from any source (import and the optimizer use this).
    /// Checks, in order: sizes, template syntax, the prompt, the parent version.
    pub async fn create_version_from(
        &self,
        prompt_id: &str,
        req: CreateVersion,
        source: VersionSource,
        actor: &str,
    ) -> Result<PromptVersion, PromptError> {
        if req.content.trim().is_empty() {
            return Err(PromptError::Invalid("content must not be empty".to_owned()));
        }
        if req.content.len() > MAX_CONTENT_BYTES {
            return Err(PromptError::Invalid(format!(
                "content is {} bytes; the limit is {MAX_CONTENT_BYTES}",
                req.content.len()
            )));
        }
        if let Some(notes) = &req.notes
            && notes.len() > MAX_NOTES_BYTES
        {
            return Err(PromptError::Invalid(format!(
                "notes are {} bytes; the limit is {MAX_NOTES_BYTES}",
                notes.len()
            )));
        }
        Template::parse(&req.content)?;
        self.store.get_prompt(prompt_id).await?;
        if let Some(parent) = req.parent_version {
            // Versions are never deleted, so checking before the insert is race-free.
            match self.store.get_version(prompt_id, parent).await {
                Ok(_) => {}
                Err(StoreError::NotFound(_)) => {
                    return Err(PromptError::Invalid(format!(
                        "parentVersion {parent} does not exist for prompt {prompt_id}"
                    )));
                }
                Err(other) => return Err(other.into()),
            }
        }
        let created = self
            .store
            .create_version(NewVersion {
                prompt_id: prompt_id.to_owned(),
                content: req.content,
                source,
                parent_version: req.parent_version,
                notes: req.notes,
                created_by: Some(actor.to_owned()),
            })
            .await?;
        Ok(created)
    }

    /// Makes `version` the active one (a no-op returning the existing record if it already is).
    pub async fn deploy(
        &self,
        prompt_id: &str,
        version: i64,
        actor: &str,
    ) -> Result<DeployRecord, PromptError> {
        let result = self.store.deploy(prompt_id, version, actor).await;
        // Invalidate even on error: a failure after commit (a lost connection) may hide a change.
        self.invalidate(prompt_id);
        let record = result?;
        self.stop_ab_test_after_change(
            prompt_id,
            &format!("a deploy of version {version} by {actor}"),
        )
        .await;
        Ok(record)
    }

    /// Re-activates the version that was active before the current one.
    pub async fn rollback(
        &self,
        prompt_id: &str,
        actor: &str,
    ) -> Result<DeployRecord, PromptError> {
        let result = self.store.rollback(prompt_id, actor).await;
        self.invalidate(prompt_id);
        let record = result?;
        self.stop_ab_test_after_change(prompt_id, &format!("a rollback by {actor}"))
            .await;
        Ok(record)
    }

    /// Every change of the active version, oldest first.
    pub async fn history(&self, prompt_id: &str) -> Result<Vec<DeployRecord>, PromptError> {
        Ok(self.store.deploy_history(prompt_id).await?)
    }

    /// The failure-mode taxonomy of a prompt.
    pub async fn failure_modes(&self, prompt_id: &str) -> Result<Vec<FailureMode>, PromptError> {
        Ok(self.store.failure_modes(prompt_id).await?)
    }

    /// The version `task_id` must use and its template: the active version, or while an A/B
    /// test runs, the version of the task's arm.
    pub async fn resolve(
        &self,
        prompt_id: &str,
        task_id: &str,
    ) -> Result<ResolvedPrompt, PromptError> {
        self.resolve_for(prompt_id, task_id, None).await
    }

    /// [`PromptRegistry::resolve`] for a task that belongs to `root_task_id`: A/B assignment
    /// hashes the root, so retries and sub-tasks of one logical task see one version.
    pub async fn resolve_for(
        &self,
        prompt_id: &str,
        task_id: &str,
        root_task_id: Option<&str>,
    ) -> Result<ResolvedPrompt, PromptError> {
        check_task_id("task_id", task_id)?;
        if let Some(root) = root_task_id {
            check_task_id("root_task_id", root)?;
        }
        let running = if !self.ab_tests_enabled {
            None
        } else {
            match self.running_test(prompt_id).await {
                Ok(running) => running,
                Err(error) => {
                    // It read the store (an unknown prompt): a miss, as the active lookup counts it.
                    self.cache_misses.fetch_add(1, Ordering::Relaxed);
                    return Err(error);
                }
            }
        };
        if let Some(test) = running {
            let unit = unit_of(task_id, root_task_id);
            let arm = assign(&test.seed, unit, test.traffic_split).arm;
            let chosen = match arm {
                Arm::A => &test.a,
                Arm::B => &test.b,
            };
            self.exposures
                .record(Exposure {
                    ab_test_id: test.id,
                    task_id: unit.to_owned(),
                    arm,
                    version: chosen.version,
                })
                .await;
            return Ok(ResolvedPrompt {
                prompt_id: prompt_id.to_owned(),
                version: chosen.version,
                content: chosen.content.clone(),
                variables: chosen.variables.clone(),
                task_id: task_id.to_owned(),
                arm: Some(arm),
                ab_test_id: Some(test.id),
            });
        }
        let active = self.active(prompt_id).await?;
        Ok(ResolvedPrompt {
            prompt_id: prompt_id.to_owned(),
            version: active.version,
            content: active.content.clone(),
            variables: active.variables.clone(),
            task_id: task_id.to_owned(),
            arm: None,
            ab_test_id: None,
        })
    }

    /// Exposures dropped because their queue was full (see [`ExposureSink`]).
    pub fn exposures_dropped(&self) -> u64 {
        self.exposures.dropped()
    }

    /// The running A/B test of a prompt, from the cache when fresh.
    async fn running_test(&self, prompt_id: &str) -> Result<Option<Arc<RunningTest>>, PromptError> {
        {
            let cache = self.running.read().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = cache.get(prompt_id)
                && entry.fetched_at.elapsed() < self.cache_ttl
            {
                return Ok(entry.test.clone());
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let test = match self.store.running_ab_test(prompt_id).await? {
            None => None,
            Some(test) => {
                let a = self.store.get_version(prompt_id, test.version_a).await?;
                let b = self.store.get_version(prompt_id, test.version_b).await?;
                Some(Arc::new(RunningTest {
                    id: test.id,
                    seed: test.seed,
                    traffic_split: test.traffic_split,
                    a: template_of(a.version, a.content),
                    b: template_of(b.version, b.content),
                }))
            }
        };
        if !self.cache_ttl.is_zero() {
            let mut cache = self.running.write().unwrap_or_else(|p| p.into_inner());
            if self.generation.load(Ordering::Acquire) == generation {
                cache.insert(
                    prompt_id.to_owned(),
                    RunningEntry {
                        fetched_at: Instant::now(),
                        test: test.clone(),
                    },
                );
            }
        }
        Ok(test)
    }

    /// The active template, from the cache when fresh.
    async fn active(&self, prompt_id: &str) -> Result<Arc<ActiveTemplate>, PromptError> {
        if let Some(entry) = self.cached(prompt_id) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(entry);
        }
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::Acquire);
        let version = self.store.active_version(prompt_id).await?;
        let active = Arc::new(template_of(version.version, version.content));
        if !self.cache_ttl.is_zero() {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            // Insert only if no deploy went through this registry since the read began.
            if self.generation.load(Ordering::Acquire) == generation {
                cache.insert(
                    prompt_id.to_owned(),
                    CacheEntry {
                        fetched_at: Instant::now(),
                        active: active.clone(),
                    },
                );
            }
        }
        Ok(active)
    }

    fn cached(&self, prompt_id: &str) -> Option<Arc<ActiveTemplate>> {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let entry = cache.get(prompt_id)?;
        (entry.fetched_at.elapsed() < self.cache_ttl).then(|| entry.active.clone())
    }

    pub(super) fn invalidate(&self, prompt_id: &str) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        let mut running = self.running.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        cache.remove(prompt_id);
        running.remove(prompt_id);
    }
}

/// Versions were parsed when created; a stored template that no longer parses (written outside
/// the registry) still resolves, with the variables it can tell.
fn template_of(version: i64, content: String) -> ActiveTemplate {
    let variables = Template::parse(&content)
        .map(|t| t.variables().to_vec())
        .unwrap_or_default();
    ActiveTemplate {
        version,
        content,
        variables,
    }
}

/// Refuses an empty or over-long task id (`field` names it in the message).
fn check_task_id(field: &str, id: &str) -> Result<(), PromptError> {
    if id.trim().is_empty() {
        return Err(PromptError::Invalid(format!("{field} must not be empty")));
    }
    if id.len() > MAX_TASK_ID_BYTES {
        return Err(PromptError::Invalid(format!(
            "{field} is {} bytes; the limit is {MAX_TASK_ID_BYTES}",
            id.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
