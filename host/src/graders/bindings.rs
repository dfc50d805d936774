//! The one place wasmtime's bindgen reads `wit/grader.wit`.
//!
//! Only the `model-grader` world is generated: its exports are the same `grading` interface as
//! the pure `grader` world, and the extra `llm` import is simply unused by pure graders, so one
//! set of bindings serves both worlds. Imports and exports are async because the `llm` import
//! awaits an HTTP client and the WASI streams are async.

wasmtime::component::bindgen!({
    world: "model-grader",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use self::exports::flywheel::grader::grading;
pub use self::flywheel::grader::{llm, types};
