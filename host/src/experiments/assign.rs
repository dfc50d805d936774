//! Sticky assignment of a task to an arm: GrowthBook's hashing (ab-testing.md §1), pure.
//!
//! Owns the FNV-1a 32 hash, GrowthBook's `hash` (v1 and v2), bucket ranges, `chooseVariation`
//! and namespaces — kept whole so the cross-SDK vectors (`vectors.json`, from GrowthBook's
//! `cases.json`) run against them — and [`assign`], what Flywheel uses: hash v2 in **integer**
//! buckets `0..10000` (§1.4), so no floating-point rounding decides an arm at a range edge.
//!
//! The hash runs over the UTF-8 bytes of its input, as GrowthBook's Rust SDK does. JavaScript
//! SDKs hash UTF-16 code units; the two agree for ASCII, which every upstream vector is. Task ids
//! outside ASCII still get a stable arm here, only not the one a JavaScript SDK would give.
//!
//! The unit is the root task id (the task id when none, §1.4), so retries and sub-tasks of one
//! logical task always see the same prompt; the arm depends on nothing but the test's seed and
//! that id, which makes it sticky across restarts and instances without storing anything.

use serde::{Deserialize, Serialize};

/// Number of v2 buckets (GrowthBook's `% 10000`).
pub const BUCKETS: u32 = 10_000;

/// FNV-1a, 32 bits, over bytes.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The v2 bucket of `value` under `seed`: `fnv1a32(decimal(fnv1a32(seed + value))) % 10000`.
pub fn bucket_v2(seed: &str, value: &str) -> u32 {
    let mut joined = String::with_capacity(seed.len() + value.len());
    joined.push_str(seed);
    joined.push_str(value);
    let inner = fnv1a32(joined.as_bytes());
    fnv1a32(inner.to_string().as_bytes()) % BUCKETS
}

/// GrowthBook's `hash(seed, value, version)`: a number in `[0, 1)`, or `None` for an unknown
/// version (the unit is then not in the experiment).
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        2 => Some(f64::from(bucket_v2(seed, value)) / f64::from(BUCKETS)),
        1 => {
            let joined = format!("{value}{seed}");
            Some(f64::from(fnv1a32(joined.as_bytes()) % 1000) / 1000.0)
        }
        _ => None,
    }
}

/// GrowthBook's `getEqualWeights`.
pub fn equal_weights(variations: i64) -> Vec<f64> {
    if variations <= 0 {
        return Vec::new();
    }
    vec![1.0 / variations as f64; variations as usize]
}

/// GrowthBook's `getBucketRanges`: coverage clamped to `[0, 1]`; weights replaced by equal ones
/// when their count or sum (outside `[0.99, 1.01]`) is wrong; each arm keeps its start point.
pub fn bucket_ranges(variations: usize, coverage: f64, weights: Option<&[f64]>) -> Vec<(f64, f64)> {
    let coverage = coverage.clamp(0.0, 1.0);
    let equal = equal_weights(variations as i64);
    let mut weights = weights
        .map(<[f64]>::to_vec)
        .unwrap_or_else(|| equal.clone());
    if weights.len() != variations {
        weights = equal.clone();
    }
    let total: f64 = weights.iter().sum();
    if !(0.99..=1.01).contains(&total) {
        weights = equal;
    }
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|w| {
            let start = cumulative;
            cumulative += w;
            (start, start + coverage * w)
        })
        .collect()
}

/// GrowthBook's `chooseVariation`: the first range with `start <= n < end`, else `None`.
pub fn choose_variation(n: f64, ranges: &[(f64, f64)]) -> Option<usize> {
    ranges
        .iter()
        .position(|&(start, end)| n >= start && n < end)
}

/// GrowthBook's `inNamespace`: `start <= hash("__" + namespace, id, 1) < end`.
pub fn in_namespace(id: &str, namespace: &str, start: f64, end: f64) -> bool {
    let n = hash(&format!("__{namespace}"), id, 1).unwrap_or(-1.0);
    n >= start && n < end
}

/// An arm of a two-version test: `a` serves the old version, `b` the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    /// Version A (the control, the old prompt).
    A,
    /// Version B (the treatment, the new prompt).
    B,
}

impl Arm {
    /// `"a"` or `"b"`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::A => "a",
            Arm::B => "b",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Arm> {
        match text {
            "a" => Some(Arm::A),
            "b" => Some(Arm::B),
            _ => None,
        }
    }
}

/// Where a unit landed: its arm and its v2 bucket (`0..10000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The arm.
    pub arm: Arm,
    /// The bucket the arm was chosen from.
    pub bucket: u32,
}

/// The first bucket of arm B for a share `traffic_split` of traffic to B: arm A owns
/// `[0, boundary)` and B `[boundary, 10000)`, the integer form of the ranges
/// `[[0, 1 - split), [1 - split, 1)` (§1.4: `round(cum_weight * 10000)`).
pub fn b_boundary(traffic_split: f64) -> u32 {
    let split = if traffic_split.is_finite() {
        traffic_split.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((1.0 - split) * f64::from(BUCKETS)).round() as u32
}

/// Assigns `unit` (the root task id, else the task id) under `seed` with a share
/// `traffic_split` of traffic to B. Coverage is always 1: every unit is in the test.
pub fn assign(seed: &str, unit: &str, traffic_split: f64) -> Assignment {
    let bucket = bucket_v2(seed, unit);
    let arm = if bucket < b_boundary(traffic_split) {
        Arm::A
    } else {
        Arm::B
    };
    Assignment { arm, bucket }
}

/// The hashing unit of a task: its root task id when it has one (non-empty), else its id.
pub fn unit_of<'a>(task_id: &'a str, root_task_id: Option<&'a str>) -> &'a str {
    match root_task_id {
        Some(root) if !root.is_empty() => root,
        _ => task_id,
    }
}

#[cfg(test)]
#[path = "assign_tests.rs"]
mod tests;
