//! [`PromptRegistry`]: the domain service the API and the CLI call. It validates input (template
//! syntax, sizes), delegates to the [`Store`], and serves `resolve` from a short-lived cache.
//!
//! Cache rule: an entry lives at most `cache_ttl` (default [`DEFAULT_RESOLVE_CACHE_TTL`]), so a
//! deploy through another instance sharing the database is served here within that time; a
//! deploy or rollback through this registry invalidates at once. A generation counter stops a
//! lookup that raced with such a deploy from re-inserting the version it read before the deploy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::PromptError;
use super::template::Template;
use crate::store::{
    DeployRecord, FailureMode, NewVersion, PromptVersion, PromptWithVersions, Store, StoreError,
    VersionSource,
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

/// The prompt registry; cheap to share behind an `Arc`.
pub struct PromptRegistry {
    store: Arc<dyn Store>,
    cache_ttl: Duration,
    cache: RwLock<HashMap<String, CacheEntry>>,
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
            store,
            cache_ttl,
            cache: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
        }
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
        Ok(result?)
    }

    /// Re-activates the version that was active before the current one.
    pub async fn rollback(
        &self,
        prompt_id: &str,
        actor: &str,
    ) -> Result<DeployRecord, PromptError> {
        let result = self.store.rollback(prompt_id, actor).await;
        self.invalidate(prompt_id);
        Ok(result?)
    }

    /// Every change of the active version, oldest first.
    pub async fn history(&self, prompt_id: &str) -> Result<Vec<DeployRecord>, PromptError> {
        Ok(self.store.deploy_history(prompt_id).await?)
    }

    /// The failure-mode taxonomy of a prompt.
    pub async fn failure_modes(&self, prompt_id: &str) -> Result<Vec<FailureMode>, PromptError> {
        Ok(self.store.failure_modes(prompt_id).await?)
    }

    /// The version `task_id` must use and its template. A/B arms come later; today every task
    /// gets the active version.
    pub async fn resolve(
        &self,
        prompt_id: &str,
        task_id: &str,
    ) -> Result<ResolvedPrompt, PromptError> {
        if task_id.trim().is_empty() {
            return Err(PromptError::Invalid("task_id must not be empty".to_owned()));
        }
        if task_id.len() > MAX_TASK_ID_BYTES {
            return Err(PromptError::Invalid(format!(
                "task_id is {} bytes; the limit is {MAX_TASK_ID_BYTES}",
                task_id.len()
            )));
        }
        let active = self.active(prompt_id).await?;
        Ok(ResolvedPrompt {
            prompt_id: prompt_id.to_owned(),
            version: active.version,
            content: active.content.clone(),
            variables: active.variables.clone(),
            task_id: task_id.to_owned(),
        })
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
        // Versions were parsed when created; a stored template that no longer parses (written
        // outside the registry) still resolves, with the variables it can tell.
        let variables = Template::parse(&version.content)
            .map(|t| t.variables().to_vec())
            .unwrap_or_default();
        let active = Arc::new(ActiveTemplate {
            version: version.version,
            content: version.content,
            variables,
        });
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

    fn invalidate(&self, prompt_id: &str) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        cache.remove(prompt_id);
    }
}

#[cfg(test)]
mod tests;
