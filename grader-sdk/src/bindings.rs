//! The one place wit-bindgen runs. Everything here is generated from `wit/grader.wit` and is an
//! implementation detail: authors see [`crate::Grader`], [`crate::Grade`] and friends instead.
//!
//! `wit` is a link to the workspace's `wit/` directory, so the contract has one copy in the
//! source tree; `cargo package` follows the link and ships the file inside the crate, so a
//! published SDK builds without Flywheel's tree.
//!
//! Only one world can be linked into a component, so the `model` feature switches the world
//! rather than adding one. The generated export macro is published (hidden) because
//! [`crate::export!`] expands inside the author's crate and must reach it from there.

#![allow(missing_docs, unsafe_op_in_unsafe_fn, clippy::all)]

#[cfg(not(feature = "model"))]
wit_bindgen::generate!({
    path: "wit",
    world: "grader",
    pub_export_macro: true,
    export_macro_name: "__grader_sdk_export_world",
    default_bindings_module: "grader_sdk::__private::bindings",
    runtime_path: "grader_sdk::__private::wit_bindgen_rt",
});

#[cfg(feature = "model")]
wit_bindgen::generate!({
    path: "wit",
    world: "model-grader",
    pub_export_macro: true,
    export_macro_name: "__grader_sdk_export_world",
    default_bindings_module: "grader_sdk::__private::bindings",
    runtime_path: "grader_sdk::__private::wit_bindgen_rt",
});
