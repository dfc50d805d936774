//! Migrations into Flywheel from services that are shutting down. Today: OpenAI evals
//! ([`openai_eval`]), whose hosted platform closed on 2026-11-30.
//!
//! A migration is all or nothing: everything given is read and checked first (every problem
//! reported, each named by its place: `eval.testing_criteria[2].operation`,
//! `items.jsonl:7`), and only a migration with no problem writes anything.

pub mod openai_eval;

pub use openai_eval::{MigrateError, MigrateOpenaiEval, Migrated, Problem};
