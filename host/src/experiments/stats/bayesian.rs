//! The Bayesian readout (ab-testing.md §5, gbstats `bayesian/tests.py`): a Gaussian posterior on
//! the effect, chance to win, credible interval and risk. For display only: checking "chance to
//! win > 95%" at every look inflates false ships just like peeking at p-values (§5 caveat).

use serde::Serialize;
use statrs::distribution::{Continuous, ContinuousCDF};

use super::interval::std_normal;
use super::moments::{Degenerate, Difference, Sample, effect};

/// A Gaussian prior on the **relative** lift (gbstats rescales it for absolute effects).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    /// Prior mean of the lift.
    pub mean: f64,
    /// Prior variance of the lift.
    pub variance: f64,
}

/// The posterior readout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Posterior {
    /// Posterior mean of the effect.
    pub expected: f64,
    /// Lower end of the credible interval.
    pub lower: f64,
    /// Upper end of the credible interval.
    pub upper: f64,
    /// Posterior standard deviation.
    pub stddev: f64,
    /// `P(B better than A)` (0.5 when degenerate).
    pub chance_to_win: f64,
    /// `[risk of keeping A, risk of shipping B]`: expected loss of each choice.
    #[schema(value_type = Vec<f64>)]
    pub risk: [f64; 2],
    /// Why the default was returned, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degenerate: Option<Degenerate>,
}

/// The posterior of B against A. `prior: None` is gbstats' default improper (flat) prior.
/// `inverse`: lower is better (tokens, latency), which flips the chance to win and the risks.
pub fn posterior(
    a: &Sample,
    b: &Sample,
    difference: Difference,
    prior: Option<Prior>,
    alpha: f64,
    inverse: bool,
) -> Posterior {
    let e = match effect(a, b, difference) {
        Ok(e) => e,
        Err(reason) => {
            return Posterior {
                expected: 0.0,
                lower: 0.0,
                upper: 0.0,
                stddev: 0.0,
                chance_to_win: 0.5,
                risk: [0.0, 0.0],
                degenerate: Some(reason),
            };
        }
    };
    let (mut mean, mut variance) = (e.estimate, e.variance);
    if let Some(prior) = prior {
        let (mu0, var0) = match difference {
            Difference::Relative => (prior.mean, prior.variance),
            Difference::Absolute => (
                prior.mean * e.mean_a.abs(),
                prior.variance * e.mean_a.powi(2),
            ),
        };
        let precision = 1.0 / variance + 1.0 / var0;
        mean = (e.estimate / variance + mu0 / var0) / precision;
        variance = 1.0 / precision;
    }
    let sd = variance.sqrt();
    let normal = std_normal();
    let z = normal.inverse_cdf(1.0 - alpha / 2.0);
    let mut ctw = 1.0 - normal.cdf(-mean / sd);
    let mut risk = risk(mean, sd);
    if inverse {
        ctw = 1.0 - ctw;
        risk.swap(0, 1);
    }
    Posterior {
        expected: mean,
        lower: mean - z * sd,
        upper: mean + z * sd,
        stddev: sd,
        chance_to_win: ctw,
        risk,
        degenerate: None,
    }
}

/// gbstats' `get_risk(μ, σ)`: `[P(δ>0)·E[δ|δ>0], −P(δ<0)·E[δ|δ<0]]`, written without the
/// divisions (`E[δ|δ<0]·Φ(a) = μΦ(a) − σφ(a)`, `a = −μ/σ`); `|μ/σ| > 37` short-circuits to
/// `[max(μ,0), max(−μ,0)]` as gbstats does.
pub fn risk(mu: f64, sigma: f64) -> [f64; 2] {
    if sigma.is_nan() || sigma <= 0.0 || (mu / sigma).abs() > 37.0 {
        return [mu.max(0.0), (-mu).max(0.0)];
    }
    let normal = std_normal();
    let a = -mu / sigma;
    let p_neg = normal.cdf(a);
    let density = normal.pdf(a);
    let risk_treatment = -(mu * p_neg - sigma * density);
    let risk_control = mu * (1.0 - p_neg) + sigma * density;
    [risk_control, risk_treatment]
}
