//! The grader runtime's operator-tunable limits: wall time per call, memory per instance and
//! calls at once (`FLYWHEEL_GRADER_TIMEOUT_MS`, `FLYWHEEL_GRADER_MEMORY_MB`,
//! `FLYWHEEL_GRADER_MAX_CONCURRENCY`). The defaults are the runtime's own
//! ([`crate::graders::limits`], [`crate::graders::engine::DEFAULT_MAX_CONCURRENCY`]); the bounds
//! keep a value from disabling the sandbox (no timeout) or reserving absurd address space.

use std::time::Duration;

use super::ConfigError;
use super::field;
use crate::graders::engine::{DEFAULT_MAX_CONCURRENCY, EPOCH_TICK};
use crate::graders::limits::{DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT};
use crate::graders::{Limits, RuntimeOptions};

/// Shortest accepted wall time: one epoch tick, the granularity the deadline is checked at.
pub const MIN_TIMEOUT_MS: u64 = EPOCH_TICK.as_millis() as u64;
/// Longest accepted wall time (10 minutes): a grader call is one row or one batch.
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// Smallest memory cap: a Rust component needs about 1–2 MiB of linear memory to start.
pub const MIN_MEMORY_MB: u64 = 2;
/// Largest memory cap per instance (4 GiB, the most a 32-bit wasm memory can address).
pub const MAX_MEMORY_MB: u64 = 4096;
/// Most calls at once; the instance pool reserves address space for each.
pub const MAX_CONCURRENCY: u32 = 256;

/// The validated grader limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraderLimits {
    /// Wall time per call or batch.
    pub timeout: Duration,
    /// Linear memory per instance, in bytes.
    pub memory_bytes: usize,
    /// Calls (rows or batches) at once.
    pub max_concurrency: u32,
}

impl Default for GraderLimits {
    fn default() -> Self {
        GraderLimits {
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
        }
    }
}

impl GraderLimits {
    /// Validates the raw values (each `None` or empty takes the default).
    pub fn parse(
        timeout_ms: Option<&str>,
        memory_mb: Option<&str>,
        max_concurrency: Option<&str>,
    ) -> Result<GraderLimits, ConfigError> {
        let defaults = GraderLimits::default();
        let timeout = match timeout_ms {
            None => defaults.timeout,
            Some(v) => Duration::from_millis(
                v.parse::<u64>()
                    .ok()
                    .filter(|ms| (MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(ms))
                    .ok_or_else(|| {
                        field::GRADER_TIMEOUT_MS
                            .error(v, "not a whole number of milliseconds from 10 to 600000")
                    })?,
            ),
        };
        let memory_bytes = match memory_mb {
            None => defaults.memory_bytes,
            Some(v) => {
                let mb = v
                    .parse::<u64>()
                    .ok()
                    .filter(|mb| (MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(mb))
                    .ok_or_else(|| {
                        field::GRADER_MEMORY_MB.error(v, "not a whole number of MiB from 2 to 4096")
                    })?;
                usize::try_from(mb << 20).map_err(|_| {
                    field::GRADER_MEMORY_MB.error_accepting(
                        v,
                        "larger than this platform can address",
                        "a smaller number of MiB",
                    )
                })?
            }
        };
        let max_concurrency = match max_concurrency {
            None => defaults.max_concurrency,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_CONCURRENCY).contains(n))
                .ok_or_else(|| {
                    field::GRADER_MAX_CONCURRENCY.error(v, "not a whole number from 1 to 256")
                })?,
        };
        Ok(GraderLimits {
            timeout,
            memory_bytes,
            max_concurrency,
        })
    }

    /// Runtime options carrying these limits (every other limit at its default).
    pub fn runtime_options(&self) -> RuntimeOptions {
        RuntimeOptions {
            max_concurrency: self.max_concurrency,
            limits: Limits {
                timeout: self.timeout,
                memory_bytes: self.memory_bytes,
                ..Limits::default()
            },
            ..RuntimeOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_runtimes_and_values_are_bounded() {
        assert_eq!(
            GraderLimits::parse(None, None, None).expect("defaults"),
            GraderLimits::default()
        );
        let limits = GraderLimits::parse(Some("150"), Some("32"), Some("4")).expect("valid");
        assert_eq!(limits.timeout, Duration::from_millis(150));
        assert_eq!(limits.memory_bytes, 32 << 20);
        assert_eq!(limits.max_concurrency, 4);
        let options = limits.runtime_options();
        assert_eq!(options.max_concurrency, 4);
        assert_eq!(options.limits.timeout, Duration::from_millis(150));
        assert_eq!(options.limits.memory_bytes, 32 << 20);
        assert_eq!(
            options.limits.max_input_bytes,
            Limits::default().max_input_bytes
        );
        for edge in ["10", "600000"] {
            GraderLimits::parse(Some(edge), None, None).expect(edge);
        }
        for (variable, timeout, memory, concurrency) in [
            ("FLYWHEEL_GRADER_TIMEOUT_MS", Some("0"), None, None),
            ("FLYWHEEL_GRADER_TIMEOUT_MS", Some("9"), None, None),
            ("FLYWHEEL_GRADER_TIMEOUT_MS", Some("600001"), None, None),
            ("FLYWHEEL_GRADER_TIMEOUT_MS", Some("2s"), None, None),
            ("FLYWHEEL_GRADER_TIMEOUT_MS", Some("-5"), None, None),
            ("FLYWHEEL_GRADER_MEMORY_MB", None, Some("1"), None),
            ("FLYWHEEL_GRADER_MEMORY_MB", None, Some("4097"), None),
            ("FLYWHEEL_GRADER_MEMORY_MB", None, Some("64MB"), None),
            ("FLYWHEEL_GRADER_MAX_CONCURRENCY", None, None, Some("0")),
            ("FLYWHEEL_GRADER_MAX_CONCURRENCY", None, None, Some("257")),
            ("FLYWHEEL_GRADER_MAX_CONCURRENCY", None, None, Some("many")),
        ] {
            let err = GraderLimits::parse(timeout, memory, concurrency)
                .expect_err(variable)
                .to_string();
            assert!(err.contains(variable), "{err}");
            assert!(err.contains("accepted: a whole number"), "{err}");
        }
    }
}
