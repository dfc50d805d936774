//! What a storage operation can fail with: [`StoreError`], and [`Missing`], the typed subject of
//! a `NotFound`, so callers can tell an unknown prompt from an unknown version without reading
//! text. Nothing here knows about HTTP; the API maps these to its codes.

use std::fmt;

/// A result whose error is a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist (`prompt planner`, `version 7 of prompt planner`).
    #[error("{0} not found")]
    NotFound(Missing),
    /// A schema constraint refused the change; the field is the constraint's name.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The violated constraint, as named in the migrations.
        constraint: String,
    },
    /// The operation makes no sense in the current state (e.g. rollback with no history).
    #[error("{0}")]
    InvalidState(String),
    /// One item of a batch failed (`index` from 0); nothing of the batch was written.
    #[error("item {index} of the batch: {error}")]
    InBatch {
        /// The item's position in the batch.
        index: usize,
        /// Why it failed.
        error: Box<StoreError>,
    },
    /// A failure mode outside the prompt's taxonomy; `allowed` lists the taxonomy's codes.
    #[error(
        "failure mode {code:?} is not in the taxonomy of prompt {prompt} (allowed: {})",
        allowed.join(", ")
    )]
    InvalidFailureMode {
        /// The prompt.
        prompt: String,
        /// The code given.
        code: String,
        /// The prompt's codes, sorted.
        allowed: Vec<String>,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names no backend this build supports.
    #[error("unsupported database url {0:?}: expected sqlite:… or postgres://…")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// A value read from the database does not fit the domain type (a corrupt or foreign row).
    pub(crate) fn decode(message: impl Into<String>) -> Self {
        let message: String = message.into();
        StoreError::Database(sqlx::Error::Decode(message.into()))
    }
}

impl From<Missing> for StoreError {
    fn from(missing: Missing) -> Self {
        StoreError::NotFound(missing)
    }
}

/// The thing a [`StoreError::NotFound`] did not find. Its `Display` is the subject of the
/// message (`version 7 of prompt planner`), so `"{missing} not found"` reads as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No prompt has this id.
    Prompt(String),
    /// The prompt exists but has no version with this number.
    Version {
        /// The prompt's id.
        prompt: String,
        /// The version number asked for.
        version: i64,
    },
    /// The prompt exists but no version of it is active.
    ActiveVersion(String),
    /// The prompt has no grader definition with this name.
    GraderDefinition {
        /// The prompt's id.
        prompt: String,
        /// The definition's name.
        name: String,
    },
    /// No grading job has this id.
    GradingJob(uuid::Uuid),
    /// No recorded run has this id.
    Run(uuid::Uuid),
    /// No evaluation has this id.
    Evaluation(uuid::Uuid),
    /// No optimization has this id.
    Optimization(uuid::Uuid),
    /// No A/B test has this id.
    AbTest(String),
    /// The prompt has no running A/B test.
    RunningAbTest(String),
    /// No dataset has this name.
    Dataset(String),
    /// The dataset exists but has no version with this number.
    DatasetVersion {
        /// The dataset's name.
        name: String,
        /// The version number asked for.
        version: i64,
    },
}

impl Missing {
    /// No prompt `prompt_id`.
    pub fn prompt(prompt_id: &str) -> Self {
        Missing::Prompt(prompt_id.to_owned())
    }

    /// No version `version` of prompt `prompt_id`.
    pub fn version(prompt_id: &str, version: i64) -> Self {
        Missing::Version {
            prompt: prompt_id.to_owned(),
            version,
        }
    }

    /// No active version of prompt `prompt_id`.
    pub fn active_version(prompt_id: &str) -> Self {
        Missing::ActiveVersion(prompt_id.to_owned())
    }

    /// No A/B test `id`.
    pub fn ab_test(id: impl std::fmt::Display) -> Self {
        Missing::AbTest(id.to_string())
    }

    /// No running A/B test of prompt `prompt_id`.
    pub fn running_ab_test(prompt_id: &str) -> Self {
        Missing::RunningAbTest(prompt_id.to_owned())
    }

    /// No grader definition `name` of prompt `prompt_id`.
    pub fn grader_definition(prompt_id: &str, name: &str) -> Self {
        Missing::GraderDefinition {
            prompt: prompt_id.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // These subjects are part of the API's messages: keep them as they were.
        match self {
            Missing::Prompt(prompt) => write!(f, "prompt {prompt}"),
            Missing::Version { prompt, version } => {
                write!(f, "version {version} of prompt {prompt}")
            }
            Missing::ActiveVersion(prompt) => write!(f, "active version of prompt {prompt}"),
            Missing::GraderDefinition { prompt, name } => {
                write!(f, "grader {name} of prompt {prompt}")
            }
            Missing::GradingJob(id) => write!(f, "grading run {id}"),
            Missing::Run(id) => write!(f, "run {id}"),
            Missing::Evaluation(id) => write!(f, "evaluation {id}"),
            Missing::Optimization(id) => write!(f, "optimization {id}"),
            Missing::AbTest(id) => write!(f, "A/B test {id}"),
            Missing::RunningAbTest(prompt) => write!(f, "running A/B test of prompt {prompt}"),
            Missing::Dataset(name) => write!(f, "dataset {name}"),
            Missing::DatasetVersion { name, version } => {
                write!(f, "version {version} of dataset {name}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_subjects_read_as_before() {
        let cases = [
            (Missing::prompt("planner"), "prompt planner"),
            (
                Missing::version("planner", 7),
                "version 7 of prompt planner",
            ),
            (
                Missing::active_version("planner"),
                "active version of prompt planner",
            ),
            (
                Missing::grader_definition("planner", "exact"),
                "grader exact of prompt planner",
            ),
        ];
        for (missing, subject) in cases {
            assert_eq!(missing.to_string(), subject);
            assert_eq!(
                StoreError::from(missing).to_string(),
                format!("{subject} not found")
            );
        }
    }
}
