//! The decision rule on constructed data, and the seeded simulations of issue 13 (A/A false
//! ships under 50 looks, power at +5 points on a 30% base, an SRM of 52/48 flagged).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn costs(n: u64, mean: f64, sd: f64) -> Sample {
    // n values with the given mean and sample standard deviation.
    let n_f = n as f64;
    Sample::Mean {
        n,
        sum: mean * n_f,
        sum_squares: sd * sd * (n_f - 1.0) + mean * mean * n_f,
    }
}

fn arm(n: u64, successes: u64, tokens: f64, latency: f64) -> ArmData {
    ArmData {
        exposures: n,
        successes,
        tokens: costs(n, tokens, tokens * 0.2),
        latency: costs(n, latency, latency * 0.2),
    }
}

fn settings() -> Settings {
    Settings {
        min_days: 0.0,
        ..Settings::default()
    }
}

#[test]
fn ships_b_when_better_and_within_guardrails() {
    let r = analyze(
        &arm(2000, 600, 1000.0, 5000.0),
        &arm(2000, 800, 1000.0, 5000.0),
        0.5,
        3.0,
        &settings(),
    );
    assert_eq!(r.decision, Decision::ShipB, "{:?}", r.reasons);
    assert!(r.primary.absolute.lower > 0.0);
    assert!(r.guardrails.iter().all(|g| g.status == "non_inferior"));
    assert!((r.b.rate - 0.4).abs() < 1e-12);
}

#[test]
fn rolls_back_when_worse() {
    let r = analyze(
        &arm(2000, 800, 1000.0, 5000.0),
        &arm(2000, 600, 1000.0, 5000.0),
        0.5,
        3.0,
        &settings(),
    );
    assert_eq!(r.decision, Decision::Rollback, "{:?}", r.reasons);
}

#[test]
fn rolls_back_when_a_guardrail_regresses_even_if_b_wins() {
    // B better on success but costs 40% more tokens (margin 10%).
    let r = analyze(
        &arm(2000, 600, 1000.0, 5000.0),
        &arm(2000, 800, 1400.0, 5000.0),
        0.5,
        3.0,
        &settings(),
    );
    assert_eq!(r.decision, Decision::Rollback, "{:?}", r.reasons);
    assert_eq!(r.guardrails[0].status, "regressed");
}

#[test]
fn an_unproven_guardrail_holds_the_ship() {
    // B better, but no task reported latency: non-inferiority cannot be shown.
    let mut a = arm(2000, 600, 1000.0, 5000.0);
    let mut b = arm(2000, 800, 1000.0, 5000.0);
    a.latency = Sample::Mean {
        n: 0,
        sum: 0.0,
        sum_squares: 0.0,
    };
    b.latency = a.latency;
    let r = analyze(&a, &b, 0.5, 3.0, &settings());
    assert_eq!(r.decision, Decision::KeepRunning, "{:?}", r.reasons);
    assert_eq!(r.guardrails[1].status, "unproven");
    let r = analyze(
        &a,
        &b,
        0.5,
        3.0,
        &Settings {
            max_days: Some(2.0),
            ..settings()
        },
    );
    assert_eq!(r.decision, Decision::InconclusiveKeepA);
    // Without guardrails it ships.
    let r = analyze(
        &a,
        &b,
        0.5,
        3.0,
        &Settings {
            guardrails: vec![],
            ..settings()
        },
    );
    assert_eq!(r.decision, Decision::ShipB);
}

#[test]
fn minimum_data_and_runtime_gate_every_decision() {
    let (a, b) = (arm(90, 20, 1000.0, 5000.0), arm(90, 80, 1000.0, 5000.0));
    let r = analyze(&a, &b, 0.5, 3.0, &settings());
    assert_eq!(r.decision, Decision::KeepRunning);
    assert!(r.reasons[0].contains("not enough tasks"), "{:?}", r.reasons);
    let (a, b) = (
        arm(2000, 600, 1000.0, 5000.0),
        arm(2000, 800, 1000.0, 5000.0),
    );
    let r = analyze(&a, &b, 0.5, 0.5, &Settings::default());
    assert_eq!(r.decision, Decision::KeepRunning);
    assert!(r.reasons[0].contains("days"), "{:?}", r.reasons);
    let r = analyze(
        &arm(500, 10, 1.0, 1.0),
        &arm(500, 40, 1.0, 1.0),
        0.5,
        3.0,
        &settings(),
    );
    assert!(r.reasons[0].contains("successes"), "{:?}", r.reasons);
}

#[test]
fn no_difference_keeps_running_then_ends_inconclusive() {
    let (a, b) = (
        arm(1000, 300, 1000.0, 5000.0),
        arm(1000, 302, 1000.0, 5000.0),
    );
    let r = analyze(&a, &b, 0.5, 3.0, &settings());
    assert_eq!(r.decision, Decision::KeepRunning);
    let r = analyze(
        &a,
        &b,
        0.5,
        14.0,
        &Settings {
            max_days: Some(14.0),
            ..settings()
        },
    );
    assert_eq!(r.decision, Decision::InconclusiveKeepA);
}

#[test]
fn srm_blocks_a_decision() {
    // 52/48 at 10,000 tasks, B clearly better: still no ship.
    let r = analyze(
        &arm(4800, 1440, 1000.0, 5000.0),
        &arm(5200, 2080, 1000.0, 5000.0),
        0.5,
        3.0,
        &settings(),
    );
    assert_eq!(r.srm.status, "unhealthy");
    assert_eq!(r.decision, Decision::KeepRunning);
    assert!(r.reasons[0].contains("sample ratio mismatch"));
}

#[test]
fn degenerate_arms_give_finite_readouts() {
    let empty = ArmData {
        exposures: 0,
        successes: 0,
        tokens: Sample::Mean {
            n: 0,
            sum: 0.0,
            sum_squares: 0.0,
        },
        latency: Sample::Mean {
            n: 0,
            sum: 0.0,
            sum_squares: 0.0,
        },
    };
    let r = analyze(&empty, &empty, 0.5, 0.0, &Settings::default());
    // serde_json writes a NaN as null: the only nulls allowed are the open ends of one-sided
    // bounds, which are infinite by design.
    fn nulls(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Null => out.push(path.to_owned()),
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    nulls(v, k, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| nulls(v, path, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    nulls(&serde_json::to_value(&r).unwrap(), "", &mut found);
    assert!(
        found
            .iter()
            .all(|p| p == "nonInferiorityBound" || p == "regressionBound"),
        "{found:?}"
    );
    assert_eq!(found.len(), 4);
    assert_eq!(r.decision, Decision::KeepRunning);
    assert_eq!(r.srm.p_value, 1.0);
}

/// Simulates `reps` tests with success rates `pa`, `pb`, a look every `step` tasks per arm for
/// `looks` looks, and counts the tests whose primary sequence ever excluded 0 upwards (a ship)
/// or either way (a rejection).
fn simulate(seed: u64, reps: usize, pa: f64, pb: f64, step: u64, looks: u64) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ships, mut rejections) = (0, 0);
    for _ in 0..reps {
        let (mut sa, mut sb, mut n) = (0u64, 0u64, 0u64);
        let (mut shipped, mut rejected) = (false, false);
        for _ in 0..looks {
            for _ in 0..step {
                sa += u64::from(rng.random_bool(pa));
                sb += u64::from(rng.random_bool(pb));
            }
            n += step;
            let cs = stats::confidence_sequence(
                &Sample::Proportion { n, successes: sa },
                &Sample::Proportion { n, successes: sb },
                Difference::Absolute,
                Side::TwoSided,
                0.05,
                stats::DEFAULT_TUNING,
            );
            shipped |= cs.lower > 0.0;
            rejected |= cs.lower > 0.0 || cs.upper < 0.0;
        }
        ships += usize::from(shipped);
        rejections += usize::from(rejected);
    }
    (ships, rejections)
}

#[test]
fn a_a_with_fifty_looks_keeps_false_ships_under_five_percent() {
    // Reference §10: A/A, p 0.30, a look every 50 per arm, 50 looks: FPR 1.55% (N* = 5000).
    let reps = 2000;
    let (ships, rejections) = simulate(20240601, reps, 0.30, 0.30, 50, 50);
    let fpr = rejections as f64 / reps as f64;
    let se = (0.05f64 * 0.95 / reps as f64).sqrt();
    assert!(ships as f64 / reps as f64 <= 0.05);
    assert!(fpr <= 0.05 + 3.0 * se, "A/A rejection rate {fpr}");
    // And close to the reference's 1.55%.
    let ref_se = (0.0155f64 * 0.9845 / reps as f64).sqrt();
    assert!(
        (fpr - 0.0155).abs() <= 4.0 * ref_se + 0.0034,
        "A/A rejection rate {fpr}"
    );
}

#[test]
fn plus_five_points_on_thirty_percent_has_the_reference_power() {
    // Reference §10: p 0.30 → 0.35, up to 2500 per arm, 50 looks: power 82.9% (N* = 5000).
    let reps = 2000;
    let (ships, _) = simulate(7, reps, 0.30, 0.35, 50, 50);
    let power = ships as f64 / reps as f64;
    let se = (0.829f64 * 0.171 / reps as f64).sqrt();
    assert!(
        (power - 0.829).abs() <= 3.0 * se + 0.0034,
        "power {power} (±{se})"
    );
}
