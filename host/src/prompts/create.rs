//! Creating a prompt beyond the four seeded agents (`POST /api/prompts`, `flywheel prompts
//! create`): its id, description, declared variables, failure-mode taxonomy and first version,
//! checked here, then written in one transaction with version 1 active.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::PromptError;
use super::registry::{MAX_CONTENT_BYTES, PromptRegistry};
use super::template::Template;
use crate::store::{FailureMode, Prompt, PromptSeed, PromptWithVersions, valid_failure_mode_code};

/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4 * 1024;
/// Most declared variables and failure modes of a new prompt.
pub const MAX_DECLARED: usize = 100;

/// A failure-mode code of a new prompt's taxonomy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewFailureMode {
    /// Code such as `wrong_format`: 1 to 50 of `a-z 0-9 _`, starting with a letter.
    pub code: String,
    /// What it means.
    pub description: String,
}

/// The body of `POST /api/prompts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePrompt {
    /// The id: 1 to 50 of `a-z 0-9 _ -`, starting with a letter.
    pub id: String,
    /// What the prompt is for.
    #[serde(default)]
    pub description: String,
    /// The template variables the prompt declares [default: those its template uses]; the
    /// template may use no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<String>>,
    /// Its failure-mode taxonomy.
    #[serde(default)]
    pub failure_modes: Vec<NewFailureMode>,
    /// The first version's template, active at once.
    pub content: String,
}

/// Refuses an id outside `prompts_id_format` with a message.
fn check_id(id: &str) -> Result<(), PromptError> {
    let mut chars = id.chars();
    let ok = (1..=50).contains(&id.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(PromptError::Invalid(format!(
            "id {id:?} must be 1 to 50 of a-z, 0-9, `_` and `-`, starting with a letter"
        )))
    }
}

/// Every check `POST /api/prompts` makes before it writes; the variables the prompt declares
/// (those its template uses when none are given).
pub fn check(request: &CreatePrompt) -> Result<Vec<String>, PromptError> {
    check_id(&request.id)?;
    let invalid = |m: String| Err(PromptError::Invalid(m));
    if request.description.len() > MAX_DESCRIPTION_BYTES {
        return invalid(format!(
            "description is {} bytes; the limit is {MAX_DESCRIPTION_BYTES}",
            request.description.len()
        ));
    }
    if request.content.trim().is_empty() {
        return invalid("content must not be empty".to_owned());
    }
    if request.content.len() > MAX_CONTENT_BYTES {
        return invalid(format!(
            "content is {} bytes; the limit is {MAX_CONTENT_BYTES}",
            request.content.len()
        ));
    }
    let template = Template::parse(&request.content)?;
    let used: Vec<String> = template.variables().to_vec();
    let variables = match &request.variables {
        None => used,
        Some(declared) => {
            let set: BTreeSet<&String> = declared.iter().collect();
            if set.len() != declared.len() {
                return invalid("variables lists a name twice".to_owned());
            }
            let undeclared: Vec<&String> = used.iter().filter(|v| !set.contains(v)).collect();
            if !undeclared.is_empty() {
                return invalid(format!(
                    "the template uses undeclared variables: {}",
                    undeclared
                        .iter()
                        .map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some(bad) = declared
                .iter()
                .find(|v| v.is_empty() || v.len() > 100 || v.contains(char::is_whitespace))
            {
                return invalid(format!(
                    "variable {bad:?} must be 1 to 100 characters without spaces"
                ));
            }
            declared.clone()
        }
    };
    if variables.len() > MAX_DECLARED || request.failure_modes.len() > MAX_DECLARED {
        return invalid(format!(
            "at most {MAX_DECLARED} variables and {MAX_DECLARED} failure modes"
        ));
    }
    let mut codes = BTreeSet::new();
    for mode in &request.failure_modes {
        if !valid_failure_mode_code(&mode.code) {
            return invalid(format!(
                "failure mode {:?} must be 1 to 50 of a-z, 0-9 and `_`, starting with a letter",
                mode.code
            ));
        }
        if !codes.insert(mode.code.as_str()) {
            return invalid(format!("failure mode {:?} is listed twice", mode.code));
        }
        if mode.description.trim().is_empty() || mode.description.len() > 1024 {
            return invalid(format!(
                "the description of failure mode {:?} must be 1 to 1024 bytes",
                mode.code
            ));
        }
    }
    Ok(variables)
}

impl PromptRegistry {
    /// Creates the prompt `request` describes, its version 1 active, written by `actor`.
    pub async fn create_prompt(
        &self,
        request: CreatePrompt,
        actor: &str,
    ) -> Result<PromptWithVersions, PromptError> {
        let variables = check(&request)?;
        let seed = PromptSeed {
            prompt: Prompt {
                id: request.id.clone(),
                description: request.description,
                variables,
                created_at: crate::store::now(),
            },
            content: request.content,
            failure_modes: request
                .failure_modes
                .into_iter()
                .map(|m| FailureMode {
                    prompt_id: request.id.clone(),
                    code: m.code,
                    description: m.description,
                })
                .collect(),
        };
        self.store().create_prompt(&seed, actor).await?;
        let created = self
            .store()
            .list_prompts()
            .await?
            .into_iter()
            .find(|p| p.prompt.id == request.id)
            .ok_or_else(|| {
                crate::store::StoreError::from(crate::store::Missing::prompt(&request.id))
            })?;
        Ok(created)
    }
}
