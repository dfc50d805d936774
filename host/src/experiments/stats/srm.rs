//! The sample-ratio-mismatch check (ab-testing.md §7): Pearson's χ² of the exposure counts
//! against the configured weights. A mismatch means the assignment or the recording is broken
//! (ids re-used, exposures lost in one arm), so no decision may be trusted while it holds.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// GrowthBook's `DEFAULT_SRM_THRESHOLD`: unhealthy below this p-value.
pub const SRM_THRESHOLD: f64 = 0.001;
/// Statsig's warning band.
pub const SRM_WARNING: f64 = 0.01;
/// GrowthBook's minimum count per arm before the check runs (total ≥ 8·k).
pub const SRM_MIN_PER_ARM: u64 = 8;

/// The χ² p-value of `counts` against `weights` (arms of weight ≤ 0 skipped). 1 with fewer
/// than two arms of positive weight or no units.
pub fn srm_p_value(counts: &[u64], weights: &[f64]) -> f64 {
    let arms: Vec<(f64, f64)> = counts
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(c, w)| (*c as f64, *w))
        .collect();
    let total: f64 = arms.iter().map(|(c, _)| c).sum();
    let weight: f64 = arms.iter().map(|(_, w)| w).sum();
    if arms.len() < 2 || total == 0.0 {
        return 1.0;
    }
    let x: f64 = arms
        .iter()
        .map(|(o, w)| {
            let e = w / weight * total;
            (o - e).powi(2) / e
        })
        .sum();
    let dof = (arms.len() - 1) as f64;
    ChiSquared::new(dof).map_or(1.0, |chi| chi.sf(x).clamp(0.0, 1.0))
}
