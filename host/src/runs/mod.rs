//! Recorded runs: what an agent may send and what is refused before anything is stored. A body
//! of `POST /api/runs` (one run, or `{"runs": [...]}`) and of `PATCH /api/runs/outcomes` is
//! parsed here item by item, so a refusal names the item's index and the field; the store
//! ([`crate::store::RunStore`]) then records the batch in one transaction. The list cursor is
//! here too ([`cursor`]).
//!
//! Nothing here knows about HTTP: the API maps a [`BatchError`] to its codes.

pub mod cursor;
mod input;

pub use input::{OutcomeInput, OutcomesBody, RunInput, RunsBody, parse_outcomes, parse_runs};

/// Most runs (or outcomes) one request may carry.
pub const MAX_BATCH: usize = 1000;
/// Longest task id (and root task id), in characters.
pub const MAX_TASK_ID_CHARS: usize = 200;
/// Largest output of one run, in bytes (UTF-8): a long diff fits, a pasted log does not.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Largest `input` object of one run, in bytes of its JSON.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;
/// Longest model name, in characters.
pub const MAX_MODEL_CHARS: usize = 200;
/// Highest attempt number.
pub const MAX_ATTEMPT: i64 = 1_000_000;
/// Most expected files one outcome may list, and the longest path, in characters.
pub const MAX_EXPECTED_FILES: usize = 10_000;
/// Longest expected file path, in characters.
pub const MAX_FILE_PATH_CHARS: usize = 1024;
/// Largest failure signature, in bytes.
pub const MAX_FAILURE_SIGNATURE_BYTES: usize = 64 * 1024;
/// The body limit of `POST /api/runs`: room for a batch of 1,000 runs of about 16 KiB each (or
/// one run with the largest output); other routes keep the general 1 MiB.
pub const MAX_RUNS_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Which kind of item a batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A run of `POST /api/runs`.
    Run,
    /// An outcome of `PATCH /api/runs/outcomes`.
    Outcome,
}

/// Why a body of runs or outcomes was refused; nothing of it is stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// The body is neither a run nor a batch of the expected shape.
    #[error("{0}")]
    Body(String),
    /// The batch is empty or too long; `field` is the batch's field (`runs`, `outcomes`).
    #[error("{message}")]
    Size {
        /// The batch's field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// One item is of the wrong shape or out of range.
    #[error("{field}: {message}")]
    Item {
        /// Run or outcome.
        kind: ItemKind,
        /// Its position in the batch (none for a single run).
        index: Option<usize>,
        /// The field's path in the body (`runs[3].taskId`, `output`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The path of `field` of the item at `index` (`runs[3].taskId`), or of a single run
/// (`taskId`).
pub fn field_path(batch_field: &str, index: Option<usize>, field: &str) -> String {
    match (index, field) {
        (Some(i), "") => format!("{batch_field}[{i}]"),
        (Some(i), f) => format!("{batch_field}[{i}].{f}"),
        (None, "") => ".".to_owned(),
        (None, f) => f.to_owned(),
    }
}
