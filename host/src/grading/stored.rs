//! Stored grader definitions: the rules for writing one, and the seeding of the built-in ones.
//!
//! Writing ([`put`]) checks everything before the store is touched, so a refused definition
//! changes nothing: the name, the prompt, the JSON shape ([`Definition::parse`], errors name the
//! field path) and then every component it names against the live registry, including the
//! component's own `validate-config`.
//!
//! Seeding ([`seed`]) is gentler on purpose: seeds are checked for shape only, never against
//! the registry. The registry loads in the background while the server starts, and a
//! model-grader component may be absent or unconfigured on a host without a model endpoint;
//! neither may stop the service from starting, and a seed stored now is validated again when a
//! grading run resolves it. A seed that does not even parse is a bug of this build: it is logged
//! and skipped rather than stopping startup.

use serde_json::Value;

use crate::graders::Definition;
use crate::graders::definition::DefinitionError;
use crate::graders::registry::Registry;
use crate::grading::seeds::SeedDefinition;
use crate::store::{
    GraderDefinition, NewGraderDefinition, PutOutcome, SEED_ACTOR, Store, StoreError,
};

/// Longest grader name (the schema's `graders_name_nonempty` allows 1 to 100 characters).
pub const MAX_NAME_CHARS: usize = 100;

/// Why a definition was not written.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    /// The grader name is empty, too long or has characters a URL path would mangle.
    #[error("grader name {0:?} must be 1 to 100 characters of letters, digits, `_`, `-` or `.`")]
    InvalidName(String),
    /// The definition was refused; the error names the field.
    #[error("invalid grader definition: {0}")]
    Definition(#[from] DefinitionError),
    /// The grader registry has not loaded its built-in components yet, so a component cannot be
    /// told apart from a missing one.
    #[error("the grader components are still loading; retry shortly")]
    Loading,
    /// The store refused or failed (`NotFound` for an unknown prompt).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request to create or replace a definition.
#[derive(Debug, Clone)]
pub struct PutDefinition {
    /// The prompt whose outputs it grades.
    pub prompt_id: String,
    /// Its name, unique per prompt.
    pub name: String,
    /// OpenAI grader JSON or `{"type":"wasm",…}`.
    pub definition: Value,
    /// Whether it runs.
    pub enabled: bool,
}

/// Checks a grader name: 1 to [`MAX_NAME_CHARS`] of `[A-Za-z0-9_.-]`, so it is safe in a path.
pub fn check_name(name: &str) -> Result<(), StoredError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoredError::InvalidName(name.to_owned()))
    }
}

/// Validates the definition completely (shape, components, their own config check), then
/// creates or replaces it. Nothing is written unless every check passed.
pub async fn put(
    store: &dyn Store,
    registry: &Registry,
    request: PutDefinition,
    actor: &str,
) -> Result<(GraderDefinition, PutOutcome), StoredError> {
    check_name(&request.name)?;
    store.get_prompt(&request.prompt_id).await?;
    let definition = Definition::parse(&request.definition)?;
    if let Err(error) = definition.validate(registry).await {
        if is_component_error(&error) && !builtins_loaded(registry) {
            return Err(StoredError::Loading);
        }
        return Err(error.into());
    }
    Ok(store
        .put_grader(NewGraderDefinition {
            prompt_id: request.prompt_id,
            name: request.name,
            definition: request.definition,
            enabled: request.enabled,
            created_by: Some(actor.to_owned()),
        })
        .await?)
}

fn is_component_error(error: &DefinitionError) -> bool {
    error.field == "component" || error.field.ends_with(".component")
}

/// Whether the registry is past its startup load of the built-ins (they are published one by
/// one, smallest first, so one being listed says nothing of the others).
pub(crate) fn builtins_loaded(registry: &Registry) -> bool {
    registry.builtins_loaded()
}

/// Stores the seeds whose `(prompt, name)` does not exist yet (see the module docs for why only
/// their shape is checked); returns how many were written.
pub async fn seed(store: &dyn Store, seeds: Vec<SeedDefinition>) -> Result<usize, StoreError> {
    let mut valid = Vec::with_capacity(seeds.len());
    for (prompt_id, name, definition) in seeds {
        if let Err(error) = check_name(&name) {
            tracing::error!(prompt = %prompt_id, %error, "seeded grader definition skipped");
            continue;
        }
        if let Err(error) = Definition::parse(&definition) {
            tracing::error!(
                prompt = %prompt_id, grader = %name, %error,
                "seeded grader definition does not parse; skipped"
            );
            continue;
        }
        valid.push(NewGraderDefinition {
            prompt_id,
            name,
            definition,
            enabled: true,
            created_by: Some(SEED_ACTOR.to_owned()),
        });
    }
    store.seed_graders(&valid).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::seeds::pure_seed_definitions;
    use crate::store::open_store;
    use serde_json::json;

    #[test]
    fn names_are_path_safe_and_bounded() {
        for good in ["files_match", "a", "v1.2-beta", &"n".repeat(100)] {
            check_name(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["", "has space", "a/b", "é", &"n".repeat(101), "x?y"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[tokio::test]
    async fn seeding_stores_each_pure_seed_once_and_skips_what_does_not_parse() {
        let store = open_store("sqlite::memory:").await.expect("store");
        store
            .seed(&crate::prompts::seeds::default_seeds())
            .await
            .expect("prompts");
        let mut seeds = pure_seed_definitions();
        seeds.push((
            "planner".into(),
            "broken".into(),
            json!({"type": "string_check", "name": "broken"}),
        ));
        seeds.push((
            "planner".into(),
            "bad name".into(),
            json!({"type": "multi"}),
        ));
        assert_eq!(seed(store.as_ref(), seeds.clone()).await.expect("seed"), 4);
        assert_eq!(seed(store.as_ref(), seeds).await.expect("again"), 0);
        let stored = store.list_graders(None).await.expect("list");
        let names: Vec<(&str, &str)> = stored
            .iter()
            .map(|g| (g.prompt_id.as_str(), g.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("coder", "diff_valid"),
                ("fixer", "same_error_repeated"),
                ("planner", "files_match"),
                ("reviewer", "verdict_agrees_with_merge"),
            ]
        );
        assert!(stored.iter().all(|g| g.enabled));
        assert!(
            stored
                .iter()
                .all(|g| g.created_by.as_deref() == Some(SEED_ACTOR))
        );
    }
}
