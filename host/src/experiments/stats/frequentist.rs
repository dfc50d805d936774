//! The fixed-horizon Welch t-test (ab-testing.md §3, gbstats `frequentist/tests.py`), for
//! display only: it is valid at one planned look, not when people watch results as they come.

use super::interval::{Interval, Side, t_cdf, t_quantile};
use super::moments::{Difference, Sample, effect};

/// The fixed-horizon interval and p-value of B against A at level `alpha`, null effect 0.
pub fn t_test(a: &Sample, b: &Sample, difference: Difference, side: Side, alpha: f64) -> Interval {
    let e = match effect(a, b, difference) {
        Ok(e) => e,
        Err(reason) => return Interval::default_for(reason),
    };
    let se = e.se();
    let t = e.estimate / se;
    let (lower, upper, p_value) = match side {
        Side::TwoSided => {
            let width = t_quantile(1.0 - alpha / 2.0, e.dof) * se;
            let p = 2.0 * (1.0 - t_cdf(t.abs(), e.dof));
            (e.estimate - width, e.estimate + width, p)
        }
        Side::Greater => {
            let width = t_quantile(1.0 - alpha, e.dof) * se;
            (e.estimate - width, f64::INFINITY, 1.0 - t_cdf(t, e.dof))
        }
        Side::Lesser => {
            let width = t_quantile(1.0 - alpha, e.dof) * se;
            (f64::NEG_INFINITY, e.estimate + width, t_cdf(t, e.dof))
        }
    };
    Interval {
        estimate: e.estimate,
        lower,
        upper,
        stddev: se,
        p_value: p_value.clamp(0.0, 1.0),
        degenerate: None,
    }
}
