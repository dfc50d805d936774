//! Importing a prompt written elsewhere (`POST /api/prompts/{id}/import`, `flywheel import`):
//! the text becomes a new inactive version with source `import`, its notes, and the active
//! version as parent, after its template parses and its variables are checked against the
//! active version's. The answer carries a line diff against the active version, so a reviewer
//! sees what changed before deploying it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::PromptError;
use super::registry::{CreateVersion, PromptRegistry};
use super::template::Template;
use crate::store::{PromptVersion, StoreError, VersionSource};

/// Above this many line pairs (old lines × new lines) the diff is not searched for common lines
/// and shows every old line removed and every new one added: the table of a longest common
/// subsequence grows with the product, and prompts this large are rare.
pub const MAX_DIFF_CELLS: usize = 4_000_000;

/// The body of an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportPrompt {
    /// The template text, with `{{variables}}`.
    pub content: String,
    /// Notes stored with the version: where it comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Accept a template whose variables differ from the active version's.
    #[serde(default)]
    pub allow_variable_changes: bool,
}

/// What an import answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportedVersion {
    /// The new, inactive version.
    pub version: PromptVersion,
    /// The active version it was compared with (its parent), if the prompt had one.
    pub compared_with: Option<i64>,
    /// Variables the imported template uses that the active one does not.
    pub variables_added: Vec<String>,
    /// Variables the active template uses that the imported one does not.
    pub variables_removed: Vec<String>,
    /// A line diff against the active version: every line prefixed with `  ` (kept), `- `
    /// (only in the active version) or `+ ` (only in the import).
    pub diff: String,
    /// Lines only in the import.
    pub lines_added: usize,
    /// Lines only in the active version.
    pub lines_removed: usize,
}

impl PromptRegistry {
    /// Imports `request` as a new inactive version of `prompt_id` written by `actor`.
    pub async fn import(
        &self,
        prompt_id: &str,
        request: ImportPrompt,
        actor: &str,
    ) -> Result<ImportedVersion, PromptError> {
        let template = Template::parse(&request.content)?;
        self.store().get_prompt(prompt_id).await?;
        let active = match self.store().active_version(prompt_id).await {
            Ok(active) => Some(active),
            Err(StoreError::NotFound(_)) => None,
            Err(other) => return Err(other.into()),
        };
        let old_content = active.as_ref().map_or("", |a| a.content.as_str());
        let old_variables: BTreeSet<String> = Template::parse(old_content)
            .map(|t| t.variables().iter().cloned().collect())
            .unwrap_or_default();
        let new_variables: BTreeSet<String> = template.variables().iter().cloned().collect();
        let added: Vec<String> = new_variables.difference(&old_variables).cloned().collect();
        let removed: Vec<String> = old_variables.difference(&new_variables).cloned().collect();
        if active.is_some()
            && !request.allow_variable_changes
            && (!added.is_empty() || !removed.is_empty())
        {
            return Err(PromptError::VariablesChanged {
                missing: removed,
                added,
            });
        }
        let version = self
            .create_version_from(
                prompt_id,
                CreateVersion {
                    content: request.content,
                    notes: request.notes,
                    parent_version: active.as_ref().map(|a| a.version),
                },
                VersionSource::Import,
                actor,
            )
            .await?;
        let (diff, lines_added, lines_removed) = line_diff(old_content, &version.content);
        Ok(ImportedVersion {
            compared_with: active.map(|a| a.version),
            version,
            variables_added: added,
            variables_removed: removed,
            diff,
            lines_added,
            lines_removed,
        })
    }
}

/// A line diff of `old` → `new` by a longest common subsequence of lines; answers the text and
/// the numbers of added and removed lines.
pub fn line_diff(old: &str, new: &str) -> (String, usize, usize) {
    let a: Vec<&str> = if old.is_empty() {
        Vec::new()
    } else {
        old.lines().collect()
    };
    let b: Vec<&str> = new.lines().collect();
    let mut out = String::new();
    let (mut added, mut removed) = (0, 0);
    let mut push = |prefix: &str, line: &str| {
        out.push_str(prefix);
        out.push_str(line);
        out.push('\n');
    };
    if a.len().saturating_mul(b.len()) > MAX_DIFF_CELLS {
        for line in &a {
            push("- ", line);
        }
        for line in &b {
            push("+ ", line);
        }
        return (out, b.len(), a.len());
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let width = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            push("  ", a[i]);
            i += 1;
            j += 1;
        } else if i < a.len()
            && (j == b.len() || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])
        {
            // On a tie the removed line comes first, as diff tools print a replacement.
            push("- ", a[i]);
            removed += 1;
            i += 1;
        } else {
            push("+ ", b[j]);
            added += 1;
            j += 1;
        }
    }
    (out, added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_keeps_common_lines_and_marks_the_rest() {
        let (diff, added, removed) = line_diff("a\nb\nc\n", "a\nx\nc\nd\n");
        assert_eq!(diff, "  a\n- b\n+ x\n  c\n+ d\n");
        assert_eq!((added, removed), (2, 1));
        let (same, added, removed) = line_diff("one\ntwo", "one\ntwo");
        assert_eq!(same, "  one\n  two\n");
        assert_eq!((added, removed), (0, 0));
        let (fresh, added, removed) = line_diff("", "new");
        assert_eq!(fresh, "+ new\n");
        assert_eq!((added, removed), (1, 0));
    }
}
