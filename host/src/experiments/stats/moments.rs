//! Per-arm sufficient statistics and the effect of B over A (ab-testing.md §2).
//!
//! Owns what every engine starts from: an arm's `n` and sums ([`Sample`]), its mean and variance
//! (population `p(1-p)` for proportions, `n-1` for means), and the absolute or relative
//! difference with its standard error ([`effect`]), including gbstats' guards: no units, a
//! variance that is not positive, a zero baseline. Those return a [`Degenerate`] reason, and the
//! engines answer with gbstats' uninformative defaults instead of a NaN.

use serde::Serialize;

/// One arm's sufficient statistics for one metric. Sums add up across time, so a running total
/// per (test, arm, metric) is all an analysis needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// A binary metric: `successes` of `n`.
    Proportion {
        /// Units.
        n: u64,
        /// Units that succeeded.
        successes: u64,
    },
    /// A continuous metric.
    Mean {
        /// Units.
        n: u64,
        /// Sum of the values.
        sum: f64,
        /// Sum of the squared values.
        sum_squares: f64,
    },
}

impl Sample {
    /// Number of units.
    pub fn n(&self) -> u64 {
        match *self {
            Sample::Proportion { n, .. } | Sample::Mean { n, .. } => n,
        }
    }

    /// The mean (0 with no units).
    pub fn mean(&self) -> f64 {
        match *self {
            _ if self.n() == 0 => 0.0,
            Sample::Proportion { n, successes } => successes as f64 / n as f64,
            Sample::Mean { n, sum, .. } => sum / n as f64,
        }
    }

    /// The per-unit variance: `p(1-p)` (population form, as gbstats) or the sample variance
    /// `(Σx² − (Σx)²/n)/(n−1)`, 0 when `n <= 1`.
    pub fn variance(&self) -> f64 {
        match *self {
            Sample::Proportion { .. } => {
                let p = self.mean();
                p * (1.0 - p)
            }
            Sample::Mean {
                n,
                sum,
                sum_squares,
            } => {
                if n <= 1 {
                    return 0.0;
                }
                let n = n as f64;
                ((sum_squares - sum * sum / n) / (n - 1.0)).max(0.0)
            }
        }
    }
}

/// Whether the effect is `μB − μA` or `(μB − μA)/|μA|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Difference {
    /// `μB − μA`.
    Absolute,
    /// `(μB − μA)/|μA|` (lift).
    Relative,
}

/// Why no effect can be estimated (gbstats' error states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Degenerate {
    /// An arm has no units.
    NoUnits,
    /// An arm's variance, or the difference's, is not positive (0/n or n/n successes, n ≤ 1).
    ZeroVariance,
    /// The baseline mean is 0, so a relative effect has no meaning.
    ZeroBaseline,
}

/// The effect of B over A with what the tests need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    /// The point estimate.
    pub estimate: f64,
    /// Its variance (`SE²`).
    pub variance: f64,
    /// Welch–Satterthwaite degrees of freedom (from the per-unit variances).
    pub dof: f64,
    /// `n_A + n_B`, the `N` of the sequential engine.
    pub total: f64,
    /// The baseline mean `μA` (rescales priors for absolute effects).
    pub mean_a: f64,
}

impl Effect {
    /// The standard error.
    pub fn se(&self) -> f64 {
        self.variance.sqrt()
    }
}

/// The effect of `b` over `a`, or why there is none.
pub fn effect(a: &Sample, b: &Sample, difference: Difference) -> Result<Effect, Degenerate> {
    if a.n() == 0 || b.n() == 0 {
        return Err(Degenerate::NoUnits);
    }
    let (n_a, n_b) = (a.n() as f64, b.n() as f64);
    let (v_a, v_b) = (a.variance(), b.variance());
    let (mu_a, mu_b) = (a.mean(), b.mean());
    if v_a <= 0.0 || v_b <= 0.0 {
        return Err(Degenerate::ZeroVariance);
    }
    let (estimate, variance) = match difference {
        Difference::Absolute => (mu_b - mu_a, v_a / n_a + v_b / n_b),
        Difference::Relative => {
            if mu_a == 0.0 {
                return Err(Degenerate::ZeroBaseline);
            }
            (
                (mu_b - mu_a) / mu_a.abs(),
                v_b / (n_b * mu_a.powi(2)) + v_a * mu_b.powi(2) / (n_a * mu_a.powi(4)),
            )
        }
    };
    if variance.is_nan() || variance <= 0.0 || !variance.is_finite() || !estimate.is_finite() {
        return Err(Degenerate::ZeroVariance);
    }
    let dof = (v_b / n_b + v_a / n_a).powi(2)
        / (v_b.powi(2) / (n_b.powi(2) * (n_b - 1.0)) + v_a.powi(2) / (n_a.powi(2) * (n_a - 1.0)));
    Ok(Effect {
        estimate,
        variance,
        // With n = 1 in an arm the formula divides by 0; a normal is the honest limit.
        dof: if dof.is_finite() && dof > 0.0 {
            dof
        } else {
            f64::INFINITY
        },
        total: n_a + n_b,
        mean_a: mu_a,
    })
}
