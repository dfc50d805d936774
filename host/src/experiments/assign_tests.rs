//! Every hashing vector of `vectors.json` (GrowthBook's cross-SDK `cases.json` and the derived
//! task-id examples), plus the properties §11.6 asks of the integer assignment.

use serde_json::Value;

use super::*;
use crate::experiments::vectors;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn ranges_of(v: &Value) -> Vec<(f64, f64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (f(&r[0]), f(&r[1])))
        .collect()
}

#[test]
fn fnv1a32_standard_vectors() {
    let cases = vectors::hashing("fnv1a32_standard_vectors_[input,uint32]");
    assert_eq!(cases.len(), 3);
    for case in cases {
        let input = case[0].as_str().unwrap();
        assert_eq!(
            u64::from(fnv1a32(input.as_bytes())),
            case[1].as_u64().unwrap(),
            "{input}"
        );
    }
}

#[test]
fn hash_cases() {
    let cases = vectors::hashing("hash_cases_[seed,value,version,expected]");
    assert_eq!(cases.len(), 15);
    for case in cases {
        let (seed, value) = (case[0].as_str().unwrap(), case[1].as_str().unwrap());
        let version = case[2].as_u64().unwrap() as u32;
        let got = hash(seed, value, version);
        match case[3].as_f64() {
            Some(expected) => {
                let got = got.unwrap_or_else(|| panic!("{case}: no hash"));
                assert!((got - expected).abs() < 1e-9, "{case}: got {got}");
            }
            None => assert_eq!(got, None, "{case}"),
        }
    }
}

#[test]
fn equal_weights_cases() {
    let cases = vectors::hashing("getEqualWeights_cases");
    assert_eq!(cases.len(), 6);
    for case in cases {
        let got = equal_weights(case[0].as_i64().unwrap());
        let expected: Vec<f64> = case[1].as_array().unwrap().iter().map(f).collect();
        assert_eq!(got.len(), expected.len(), "{case}");
        for (g, e) in got.iter().zip(&expected) {
            // The fixture rounds 1/3 to 8 places.
            assert!((g - e).abs() < 1e-8, "{case}: got {got:?}");
        }
    }
}

#[test]
fn bucket_range_cases() {
    let cases = vectors::hashing(
        "getBucketRange_cases_[name,[numVariations,coverage,weights],expected_ranges]",
    );
    assert_eq!(cases.len(), 13);
    for case in cases {
        let args = &case[1];
        let weights: Option<Vec<f64>> = args[2].as_array().map(|w| w.iter().map(f).collect());
        let got = bucket_ranges(
            args[0].as_u64().unwrap() as usize,
            f(&args[1]),
            weights.as_deref(),
        );
        let expected = ranges_of(&case[2]);
        assert_eq!(got.len(), expected.len(), "{}", case[0]);
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                (g.0 - e.0).abs() < 1e-9 && (g.1 - e.1).abs() < 1e-9,
                "{}: got {got:?}",
                case[0]
            );
        }
    }
}

#[test]
fn choose_variation_cases() {
    let cases = vectors::hashing("chooseVariation_cases_[name,n,ranges,expected_index]");
    assert_eq!(cases.len(), 13);
    for case in cases {
        let got = choose_variation(f(&case[1]), &ranges_of(&case[2]));
        let expected = case[3].as_i64().unwrap();
        let got = got.map_or(-1, |i| i as i64);
        assert_eq!(got, expected, "{}", case[0]);
    }
}

#[test]
fn in_namespace_cases() {
    let cases = vectors::hashing("inNamespace_cases_[name,id,[namespace,start,end],expected]");
    assert_eq!(cases.len(), 16);
    for case in cases {
        let ns = &case[2];
        let got = in_namespace(
            case[1].as_str().unwrap(),
            ns[0].as_str().unwrap(),
            f(&ns[1]),
            f(&ns[2]),
        );
        assert_eq!(got, case[3].as_bool().unwrap(), "{}", case[0]);
    }
}

/// GrowthBook's `run` for the fields the subset uses: `(value, inExperiment, hashUsed)`.
fn run(id: &str, experiment: &Value) -> (i64, bool, bool) {
    let key = experiment["key"].as_str().unwrap();
    let seed = experiment["seed"].as_str().unwrap_or(key);
    let version = experiment["hashVersion"].as_u64().unwrap_or(1) as u32;
    let variations = experiment["variations"].as_array().unwrap();
    let Some(n) = hash(seed, id, version) else {
        return (variations[0].as_i64().unwrap(), false, false);
    };
    let ranges = match experiment.get("ranges") {
        Some(ranges) => ranges_of(ranges),
        None => {
            let weights: Option<Vec<f64>> = experiment
                .get("weights")
                .map(|w| w.as_array().unwrap().iter().map(f).collect());
            let coverage = experiment.get("coverage").map_or(1.0, f);
            bucket_ranges(variations.len(), coverage, weights.as_deref())
        }
    };
    match choose_variation(n, &ranges) {
        Some(i) => (variations[i].as_i64().unwrap(), true, true),
        None => (variations[0].as_i64().unwrap(), false, false),
    }
}

#[test]
fn run_cases() {
    let cases = vectors::hashing(
        "run_cases_subset_[name,context,experiment,expected_value,inExperiment,hashUsed]",
    );
    assert_eq!(cases.len(), 39);
    for case in cases {
        let id = case[1]["attributes"]["id"].as_str().unwrap();
        let got = run(id, &case[2]);
        let expected = (
            case[3].as_i64().unwrap(),
            case[4].as_bool().unwrap(),
            case[5].as_bool().unwrap(),
        );
        assert_eq!(got, expected, "{}", case[0]);
    }
}

#[test]
fn derived_task_id_examples() {
    let cases = vectors::hashing_object("derived_task_id_examples_v2_seed_prompt-exp-1");
    let mut checked = 0;
    for (task, expected) in cases {
        let Some(expected) = expected.as_f64() else {
            continue; // the note
        };
        let got = hash("prompt-exp-1", task, 2).unwrap();
        assert!((got - expected).abs() < 1e-9, "{task}: got {got}");
        // The integer bucket is the same number, without the division.
        assert_eq!(
            bucket_v2("prompt-exp-1", task),
            (expected * 10_000.0).round() as u32
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn integer_assignment_matches_the_float_ranges() {
    // The integer boundary gives the arm chooseVariation gives on [[0, 1-s), [1-s, 1)].
    for split in [0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0] {
        let ranges = bucket_ranges(2, 1.0, Some(&[1.0 - split, split]));
        for i in 0..2000 {
            let unit = format!("task-{i}");
            let got = assign("exp:1", &unit, split);
            let n = hash("exp:1", &unit, 2).unwrap();
            // At a range edge the float ranges round (1 − 0.7 = 0.30000000000000004 puts
            // n = 0.3 in A); the integer boundary is exact (§1.4), so edges are checked
            // against exact arithmetic instead.
            let edge = (n - (1.0 - split)).abs() < 1e-9;
            let expected = if edge {
                if u64::from(got.bucket) * 10 < ((1.0 - split) * 100_000.0).round() as u64 {
                    Arm::A
                } else {
                    Arm::B
                }
            } else {
                match choose_variation(n, &ranges) {
                    Some(1) => Arm::B,
                    _ => Arm::A,
                }
            };
            assert_eq!(got.arm, expected, "split {split}, {unit} (n = {n})");
        }
    }
    assert_eq!(b_boundary(0.5), 5000);
    assert_eq!(b_boundary(1.0), 0);
    assert_eq!(b_boundary(0.0), 10_000);
    assert_eq!(b_boundary(f64::NAN), 10_000);
}

#[test]
fn shares_are_within_one_percent_over_a_million_ids_and_pass_srm() {
    for split in [0.5, 0.2] {
        let mut b = 0u64;
        let total = 1_000_000u64;
        for i in 0..total {
            if assign("prompt-exp-1:1", &format!("t{i}"), split).arm == Arm::B {
                b += 1;
            }
        }
        let share = b as f64 / total as f64;
        assert!((share - split).abs() < 0.01, "split {split}: share {share}");
        let p = crate::experiments::stats::srm_p_value(&[total - b, b], &[1.0 - split, split]);
        assert!(p > 0.001, "split {split}: SRM p {p}");
    }
}

#[test]
fn the_unit_is_the_root_task_when_there_is_one() {
    assert_eq!(unit_of("t-2", Some("t-1")), "t-1");
    assert_eq!(unit_of("t-2", Some("")), "t-2");
    assert_eq!(unit_of("t-2", None), "t-2");
}
