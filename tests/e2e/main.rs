//! End-to-end tests.

mod graders_definitions;
mod graders_reload;
mod graders_support;
mod python_graders;
mod sandbox;
