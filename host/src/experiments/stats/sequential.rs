//! The always-valid confidence sequence and p-value that drive decisions (ab-testing.md §4.1:
//! GrowthBook's asymptotic confidence sequences, Waudby-Smith et al. 2023, eqs. 9, 134, 155,
//! 161). Valid at every look, so results can be watched continuously without inflating false
//! ships; `N*` (the tuning) is the total sample size where the sequence is tightest, fixed for
//! the test's life.

use super::interval::{Interval, Side};
use super::moments::{Difference, Effect, Sample, effect};

/// GrowthBook's default `N*` (`DEFAULT_SEQUENTIAL_TESTING_TUNING_PARAMETER`).
pub const DEFAULT_TUNING: f64 = 5000.0;

/// The mixing parameter: `ρ = sqrt((−2 ln α + ln(−2 ln α + 1)) / N*)` (eq. 161).
pub fn rho(alpha: f64, tuning: f64) -> f64 {
    let l = -2.0 * alpha.ln();
    ((l + (l + 1.0).ln()) / tuning).sqrt()
}

/// Two-sided half-width (eq. 9); `s2 = SE² · N`.
fn halfwidth_two_sided(e: &Effect, alpha: f64, tuning: f64) -> f64 {
    let (n, r) = (e.total, rho(alpha, tuning));
    let s2 = e.variance * n;
    let nr2 = n * r * r + 1.0;
    s2.sqrt() * (2.0 * nr2 / (n * n * r * r) * (nr2.sqrt() / alpha).ln()).sqrt()
}

/// One-sided half-width (eq. 134) at level `alpha`, with the mixing parameter `r` (taken at
/// `2α` of the test's level, and kept fixed while the p-value's search varies `alpha`).
fn halfwidth_one_sided(e: &Effect, alpha: f64, r: f64) -> f64 {
    let n = e.total;
    let s2 = e.variance * n;
    let nr2 = n * r * r + 1.0;
    (s2 * 2.0 * nr2 / (n * r).powi(2) * (1.0 + nr2.sqrt() / (2.0 * alpha)).ln()).sqrt()
}

/// Two-sided always-valid p-value: `min(1, 1/e)`, `e = exp(ρ²z²N / (2(Nρ²+1))) / sqrt(Nρ²+1)`
/// (eq. 155), computed in logs so a huge `z` gives 0 rather than `1/∞` trouble.
fn p_two_sided(e: &Effect, alpha: f64, tuning: f64) -> f64 {
    let (n, r) = (e.total, rho(alpha, tuning));
    let z = e.estimate / e.se();
    let nr2 = n * r * r + 1.0;
    let log_e = r * r * z * z * n / (2.0 * nr2) - 0.5 * nr2.ln();
    (-log_e).exp().min(1.0)
}

/// Bisection bounds and tolerance of gbstats' one-sided sequential p-value.
const P_LOW: f64 = 1e-5;
const P_HIGH: f64 = 0.4999;

/// One-sided p-value: the smallest `α` in `[1e-5, 0.4999]` whose one-sided sequence excludes 0,
/// by bisection (tolerance 1e-6, at most 100 steps), clamped at the ends. `ρ` stays the one of
/// the test's level (`r`): only the level inside the logarithm varies, as in gbstats (with `ρ`
/// varying too, the width is not monotone in `α` and the search has no single answer).
fn p_one_sided(e: &Effect, side: Side, r: f64) -> f64 {
    let excludes_zero = |alpha: f64| {
        let h = halfwidth_one_sided(e, alpha, r);
        match side {
            Side::Lesser => e.estimate + h < 0.0,
            _ => e.estimate - h > 0.0,
        }
    };
    if !excludes_zero(P_HIGH) {
        return P_HIGH;
    }
    if excludes_zero(P_LOW) {
        return P_LOW;
    }
    let (mut low, mut high) = (P_LOW, P_HIGH);
    for _ in 0..100 {
        if high - low < 1e-6 {
            break;
        }
        let mid = (low + high) / 2.0;
        if excludes_zero(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    (low + high) / 2.0
}

/// The confidence sequence of B against A at level `alpha` with tuning `N*`, and its p-value.
pub fn confidence_sequence(
    a: &Sample,
    b: &Sample,
    difference: Difference,
    side: Side,
    alpha: f64,
    tuning: f64,
) -> Interval {
    let e = match effect(a, b, difference) {
        Ok(e) => e,
        Err(reason) => return Interval::default_for(reason),
    };
    let (lower, upper, p_value) = match side {
        Side::TwoSided => {
            let h = halfwidth_two_sided(&e, alpha, tuning);
            (
                e.estimate - h,
                e.estimate + h,
                p_two_sided(&e, alpha, tuning),
            )
        }
        Side::Greater => {
            let r = rho(2.0 * alpha, tuning);
            let h = halfwidth_one_sided(&e, alpha, r);
            (e.estimate - h, f64::INFINITY, p_one_sided(&e, side, r))
        }
        Side::Lesser => {
            let r = rho(2.0 * alpha, tuning);
            let h = halfwidth_one_sided(&e, alpha, r);
            (f64::NEG_INFINITY, e.estimate + h, p_one_sided(&e, side, r))
        }
    };
    Interval {
        estimate: e.estimate,
        lower,
        upper,
        stddev: e.se(),
        p_value,
        degenerate: None,
    }
}
