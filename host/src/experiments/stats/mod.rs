//! The statistics of an A/B test, pure functions of per-arm sums (ab-testing.md §2–§7).
//!
//! - [`moments`]: per-arm sufficient statistics and the effect of B over A (§2).
//! - [`sequential`]: the always-valid confidence sequence and p-value that **drive decisions**
//!   (§4.1), safe to look at any time.
//! - [`frequentist`]: the fixed-horizon Welch t interval (§3), display only.
//! - [`bayesian`]: chance to win, credible interval and risk (§5), display only.
//! - [`srm`]: the sample-ratio-mismatch check (§7), a health gate.
//!
//! Every function answers for every input: degenerate data (no units, zero variance, zero
//! baseline) gives gbstats' uninformative defaults, never a NaN.

pub mod bayesian;
pub mod frequentist;
mod interval;
pub mod moments;
pub mod sequential;
pub mod srm;

pub use bayesian::{Posterior, Prior, posterior, risk};
pub use frequentist::t_test;
pub use interval::{Interval, Side};
pub use moments::{Degenerate, Difference, Effect, Sample, effect};
pub use sequential::{DEFAULT_TUNING, confidence_sequence, rho};
pub use srm::{SRM_MIN_PER_ARM, SRM_THRESHOLD, SRM_WARNING, srm_p_value};

#[cfg(test)]
mod tests;
