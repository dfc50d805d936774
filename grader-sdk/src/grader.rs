//! The [`Grader`] trait: the one thing a grader author implements.

use serde::de::DeserializeOwned;

use crate::{Grade, GradeError, Item, Sample};

/// A grader: a pure function of a config, a sample and an item.
///
/// Implement it on a unit struct and hand that struct to [`crate::export!`]. The SDK parses the
/// config JSON into [`Grader::Config`] (a serde error becomes [`GradeError::InvalidConfig`]
/// naming the field), calls [`Grader::validate`], parses the row, and calls [`Grader::grade`].
pub trait Grader {
    /// One line saying what the grader measures; returned by the component's `info`.
    const DESCRIPTION: &'static str;

    /// The grader's config, deserialized from the JSON the grader definition carries.
    type Config: DeserializeOwned;

    /// Checks a parsed config beyond what its type enforces (ranges, templates, combinations).
    /// The error text should name the offending field. Runs before every grade or batch too,
    /// so `grade` may rely on it. The default accepts every config that deserializes.
    fn validate(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Grades one row.
    fn grade(config: &Self::Config, sample: &Sample, item: &Item) -> Result<Grade, GradeError>;

    /// Grades several rows with one config, already parsed and validated once for the batch.
    /// Returns one result per row, in order. The default calls [`Grader::grade`] per row;
    /// override it only to share work across rows.
    fn grade_batch(
        config: &Self::Config,
        rows: &[(Sample, Item)],
    ) -> Vec<Result<Grade, GradeError>> {
        rows.iter()
            .map(|(sample, item)| Self::grade(config, sample, item))
            .collect()
    }
}
