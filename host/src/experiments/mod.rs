//! A/B tests of prompt versions, the pure part: no I/O, no clock, no storage. The
//! specification is `shared/reference/ab-testing.md` (the "reference" below).
//!
//! - [`assign`]: which arm a task gets (GrowthBook hash v2 over the root task id, integer
//!   buckets; reference §1).
//! - [`stats`]: effects, the always-valid confidence sequence, fixed-horizon and Bayesian
//!   readouts, the sample-ratio-mismatch check (§2–§7).
//! - [`decision`]: the readout of a test and its decision with health gates, minimum data and
//!   guardrails (§9, §11.4, §11.5).
//!
//! The store records tests, exposures and runs; the API and the registry call into here.

pub mod assign;
pub mod decision;
pub mod stats;
#[cfg(test)]
mod vectors;

pub use assign::{Arm, Assignment, assign, unit_of};
pub use decision::{
    AbTestResult, ArmData, Decision, Guardrail, GuardrailMetric, Readout, Settings, analyze,
};
