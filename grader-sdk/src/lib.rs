//! Write Flywheel graders in Rust: implement [`Grader`], call [`export!`], build for
//! `wasm32-wasip2`.
//!
//! ```
//! use grader_sdk::{Grade, GradeError, Grader, Item, Sample};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Config { field: String }
//!
//! struct Exact;
//! impl Grader for Exact {
//!     const DESCRIPTION: &'static str = "1 when output_text equals the item's field";
//!     type Config = Config;
//!     fn grade(config: &Config, sample: &Sample, item: &Item) -> Result<Grade, GradeError> {
//!         let expected = item.get_str(&config.field).ok_or_else(|| GradeError::input("no field"))?;
//!         Ok(Grade::pass_fail(sample.require_output_text()? == expected))
//!     }
//! }
//! grader_sdk::export!(Exact);
//! ```
//!
//! # Layout
//!
//! - [`Grader`], [`Grade`], [`GradeError`], [`Sample`], [`Item`]: what an author touches.
//! - [`run`]: the component's exports as plain functions, for native tests.
//! - [`template`]: OpenAI `{{item.x}}` / `{{sample.output_text}}` rendering.
//! - [`json_path`]: `a.b[0].c` lookups behind [`Sample::get`] and [`Item::get`].
//! - [`diff`]: a unified-diff parser that reports the line of the first defect.
//! - [`similarity`]: text-similarity metrics matching rapidfuzz, nltk and rouge-score.
//! - `llm` (feature `model`): the host's model access, mockable in native tests.
//! - `prompt` (feature `model`): OpenAI model-grader `input` messages and `sampling_params`.
//!
//! The wit-bindgen bindings are generated in one private module and never part of the API.

#![deny(missing_docs)]

// Lets generated code and `export!` name this crate `grader_sdk` from inside it as well.
extern crate self as grader_sdk;

#[doc(hidden)]
mod big_int;
pub mod bindings;
pub mod diff;
mod grade;
mod grader;
mod input;
pub mod json_path;
#[cfg(feature = "model")]
pub mod llm;
#[cfg(feature = "model")]
pub mod prompt;
pub mod run;
pub mod similarity;
pub mod template;

pub use grade::{Grade, GradeError, Metric};
pub use grader::Grader;
pub use input::{Item, Sample};
pub use run::{CONTRACT_VERSION, SDK_VERSION};

/// Exports a [`Grader`] as the component's `flywheel:grader/grading` implementation.
///
/// Call it once, at the root of the grader crate, with the type that implements [`Grader`].
/// On `wasm32` it emits the component exports; on other targets it only checks that the type
/// implements [`Grader`], so the crate still builds and tests natively.
#[macro_export]
macro_rules! export {
    ($grader:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct GraderSdkComponent;
            impl $crate::__private::Guest for GraderSdkComponent {
                fn info() -> $crate::__private::GraderInfo {
                    $crate::__private::info::<$grader>()
                }
                fn validate_config(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::run::validate_config::<$grader>(&config)
                }
                fn grade(
                    config: ::std::string::String,
                    sample: ::std::string::String,
                    item: ::std::string::String,
                ) -> ::std::result::Result<$crate::__private::WitGrade, $crate::__private::WitGradeError> {
                    $crate::__private::grade::<$grader>(&config, &sample, &item)
                }
                fn grade_batch(
                    config: ::std::string::String,
                    rows: ::std::vec::Vec<$crate::__private::Row>,
                ) -> ::std::vec::Vec<::std::result::Result<$crate::__private::WitGrade, $crate::__private::WitGradeError>> {
                    $crate::__private::grade_batch::<$grader>(&config, rows)
                }
            }
            $crate::__private::bindings::__grader_sdk_export_world!(GraderSdkComponent with_types_in $crate::__private::bindings);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            let _ = $crate::run::info::<$grader>;
        };
    };
}

/// Glue between the generated bindings and the public API. Not part of the API: only
/// [`export!`] uses it, from inside the author's crate.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::bindings::exports::flywheel::grader::grading::{
        GradeError as WitGradeError, GradeResult as WitGrade, GraderInfo, Guest, Row,
    };
    use crate::bindings::flywheel::grader::types::Metric as WitMetric;
    use crate::{Grade, GradeError, Grader};
    pub use wit_bindgen::rt as wit_bindgen_rt;

    /// The `info` export in WIT types.
    pub fn info<G: Grader>() -> GraderInfo {
        let info = crate::run::info::<G>();
        GraderInfo {
            sdk_version: info.sdk_version,
            description: info.description,
        }
    }

    /// The `grade` export in WIT types.
    pub fn grade<G: Grader>(
        config: &str,
        sample: &str,
        item: &str,
    ) -> Result<WitGrade, WitGradeError> {
        crate::run::grade::<G>(config, sample, item)
            .map(to_wit_grade)
            .map_err(to_wit_error)
    }

    /// The `grade-batch` export in WIT types.
    pub fn grade_batch<G: Grader>(
        config: &str,
        rows: Vec<Row>,
    ) -> Vec<Result<WitGrade, WitGradeError>> {
        let rows: Vec<(String, String)> = rows.into_iter().map(|r| (r.sample, r.item)).collect();
        crate::run::grade_batch::<G, String>(config, &rows)
            .into_iter()
            .map(|r| r.map(to_wit_grade).map_err(to_wit_error))
            .collect()
    }

    fn to_wit_grade(grade: Grade) -> WitGrade {
        WitGrade {
            score: grade.score,
            passed: grade.passed,
            label: grade.label,
            reasoning: grade.reasoning,
            metrics: grade
                .metrics
                .into_iter()
                .map(|m| WitMetric {
                    name: m.name,
                    value: m.value,
                })
                .collect(),
        }
    }

    fn to_wit_error(error: GradeError) -> WitGradeError {
        match error {
            GradeError::InvalidConfig(m) => WitGradeError::InvalidConfig(m),
            GradeError::InvalidInput(m) => WitGradeError::InvalidInput(m),
            GradeError::Failed(m) => WitGradeError::Failed(m),
        }
    }
}
