//! The answer every frequentist engine gives: an estimate, an interval, a p-value, or gbstats'
//! uninformative default when the data cannot support one. Also the distribution helpers the
//! engines share (Student t with a normal limit, standard normal).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::moments::Degenerate;

/// Which hypothesis a test or interval is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// B differs from A; the interval is bounded on both sides.
    TwoSided,
    /// B is greater than A; the interval is `[lower, +∞)`.
    Greater,
    /// B is less than A; the interval is `(−∞, upper]`.
    Lesser,
}

/// An estimate with its interval and p-value. A one-sided interval has an infinite end; the
/// API writes those as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Interval {
    /// The point estimate (0 when degenerate).
    pub estimate: f64,
    /// Lower end of the interval.
    #[serde(serialize_with = "finite_or_null")]
    #[schema(value_type = Option<f64>)]
    pub lower: f64,
    /// Upper end of the interval.
    #[serde(serialize_with = "finite_or_null")]
    #[schema(value_type = Option<f64>)]
    pub upper: f64,
    /// Standard error of the estimate (0 when degenerate).
    pub stddev: f64,
    /// The p-value (1 when degenerate).
    pub p_value: f64,
    /// Why the default was returned, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degenerate: Option<Degenerate>,
}

impl Interval {
    /// gbstats' uninformative output: estimate 0, interval (0, 0), p 1.
    pub fn default_for(reason: Degenerate) -> Interval {
        Interval {
            estimate: 0.0,
            lower: 0.0,
            upper: 0.0,
            stddev: 0.0,
            p_value: 1.0,
            degenerate: Some(reason),
        }
    }
}

fn finite_or_null<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() {
        serializer.serialize_f64(*value)
    } else {
        serializer.serialize_none()
    }
}

/// The standard normal.
pub(crate) fn std_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("the standard normal is valid")
}

/// Student's t with `dof` degrees of freedom: `(cdf, quantile)` functions. Past 1e7 degrees
/// (or an infinite count) it is the normal, which is what the t converges to.
pub(crate) fn t_cdf(x: f64, dof: f64) -> f64 {
    if dof.is_finite() && dof < 1e7 {
        StudentsT::new(0.0, 1.0, dof).map_or_else(|_| std_normal().cdf(x), |t| t.cdf(x))
    } else {
        std_normal().cdf(x)
    }
}

/// See [`t_cdf`].
pub(crate) fn t_quantile(p: f64, dof: f64) -> f64 {
    if dof.is_finite() && dof < 1e7 {
        StudentsT::new(0.0, 1.0, dof)
            .map_or_else(|_| std_normal().inverse_cdf(p), |t| t.inverse_cdf(p))
    } else {
        std_normal().inverse_cdf(p)
    }
}
