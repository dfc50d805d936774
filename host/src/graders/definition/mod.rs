//! Grader definitions: OpenAI grader JSON (`string_check`, `text_similarity`, `score_model`,
//! `label_model`, `python`, `multi`) and `{"type":"wasm","component":"<name>","config":{…}}`,
//! parsed, checked against the loaded components, pinned to them and run.
//!
//! # Layout
//! - [`tree`]: [`Definition`], the parsed tree, and [`DefinitionError`], which names the
//!   offending field by its path (`graders.name.operation`).
//! - [`openai`]: the JSON shapes, [`Definition::parse`], and the mapping of each `type` onto the
//!   component that runs it.
//! - [`resolved`]: the check of a definition against the registry (each component loaded and
//!   accepting its config) and [`Resolved`], a definition pinned to loaded components.
//! - [`run`]: grading rows with a [`Resolved`] tree (`multi` combines its parts' scores).
//!
//! Validation has two layers: the JSON shape (strict: unknown fields are refused), then the
//! component's own `validate-config`, run for the sub-graders of a `multi` (at most
//! [`MAX_MULTI_GRADERS`]) concurrently and within [`validation_deadline`] as a whole. The host's shapes accept the same fields as the
//! components' configs (`grader-sdk`, `graders/*`), so an exported OpenAI definition that a
//! component takes is never refused by the host first; `tests/e2e/graders_openai_examples.rs` feeds
//! every OpenAI example to both.

pub mod openai;
pub mod resolved;
pub mod run;
pub mod tree;

pub use crate::graders::kinds::KINDS;
pub use openai::MAX_MULTI_GRADERS;
pub use resolved::{Resolved, VALIDATION_CONCURRENCY, validation_deadline};
pub use tree::{Definition, DefinitionError};
