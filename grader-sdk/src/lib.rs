//! Flywheel grader SDK.
