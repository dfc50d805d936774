//! The WebAssembly grader runtime: every grader is a component run by wasmtime in a sandbox.
//!
//! # Layout
//! - [`bindings`]: the one place wasmtime's bindgen reads `wit/grader.wit`.
//! - [`builtin`]: the built-in graders embedded in the binary.
//! - [`limits`]: the per-call limits (wall time, memory, input, output, log) and their defaults.
//! - [`engine`]: [`GraderRuntime`]: the process-wide `Engine`, its epoch ticker, the `Linker`
//!   that grants nothing beyond what a Rust `std` guest needs, and the call paths.
//! - [`guest_threads`]: the threads guest code runs on, apart from those serving HTTP.
//! - [`host`]: the per-`Store` state: WASI context, resource table, store limits, log pipe.
//! - [`log_pipe`]: a bounded stdout/stderr sink that keeps the tail and never traps the guest.
//! - [`llm`]: the `llm` import over [`crate::llm`]: a run's token budget ([`llm::LlmRun`]) and
//!   each row's own model session ([`llm::RowLlm`]), so usage per row is exact.
//! - [`outcome`]: what grading one row gives: a grade, an error the grader returned, a trap
//!   (kept apart), or a refusal by the host.
//! - [`component`]: loading one component: size cap, core module vs component, contract
//!   version, world, imports allowed, pre-instantiation, `info()`.
//! - [`cache`]: compiled artifacts on disk, keyed by content hash and engine.
//! - [`registry`]: built-ins plus the watched graders directory, swapped atomically.
//! - [`definition`] and [`formula`]: OpenAI grader JSON and `calculate_output`: parsed, checked
//!   against the registry, pinned and run.
//! - [`kinds`]: the definition types and the component each runs on.
//!
//! Not here: stored definitions, their seeds and the grading of files or stored data
//! ([`crate::grading`], which uses this runtime); HTTP routes and CLI commands. This module
//! imports no store.

pub mod bindings;
pub mod builtin;
pub mod cache;
pub mod component;
pub mod definition;
pub mod engine;
pub mod formula;
pub mod guest_threads;
pub mod host;
pub mod kinds;
pub mod limits;
pub mod llm;
pub mod log_pipe;
pub mod outcome;
pub mod registry;

pub use component::{CONTRACT_VERSION, LoadError, LoadedGrader, World};
pub use definition::{Definition, DefinitionError};
pub use engine::{GraderRuntime, RuntimeError, RuntimeOptions, SAME_TRAP_ROWS_TO_STOP};
pub use limits::Limits;
pub use llm::LlmRun;
pub use outcome::{GradeResult, GraderErrorKind, Outcome, TokenUsage, TrapKind};
pub use registry::{GraderListing, Registry, RegistryOptions};
