//! Every metric against the values the reference Python implementations computed for the
//! committed corpus (`reference/corpus.json`, written by `reference/generate.py`).

use grader_sdk::similarity::{Metric, porter};
use serde_json::Value;

const CORPUS: &str = include_str!("../reference/corpus.json");
const TOLERANCE: f64 = 1e-6;

fn corpus() -> Value {
    serde_json::from_str(CORPUS).expect("corpus.json is valid JSON")
}

#[test]
fn corpus_has_at_least_200_pairs_and_every_metric() {
    let corpus = corpus();
    let pairs = corpus["pairs"].as_array().expect("pairs");
    assert!(pairs.len() >= 200, "only {} pairs", pairs.len());
    for pair in pairs {
        for metric in Metric::ALL {
            assert!(
                pair[metric.name()].is_f64() || pair[metric.name()].is_i64(),
                "{pair}"
            );
        }
    }
}

#[test]
fn every_metric_matches_the_reference_implementation() {
    let corpus = corpus();
    let mut failures = Vec::new();
    let mut checked = 0;
    for pair in corpus["pairs"].as_array().expect("pairs") {
        let input = pair["input"].as_str().expect("input");
        let reference = pair["reference"].as_str().expect("reference");
        for metric in Metric::ALL {
            let want = pair[metric.name()].as_f64().expect("number");
            let got = metric.score(input, reference);
            checked += 1;
            if (got - want).abs() > TOLERANCE {
                failures.push(format!(
                    "{}({input:?}, {reference:?}) = {got}, reference {want}",
                    metric.name()
                ));
            }
        }
    }
    assert!(checked >= 2000, "checked only {checked}");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn porter_stems_match_nltk() {
    let corpus = corpus();
    let mut failures = Vec::new();
    let stems = corpus["porter_stems"].as_object().expect("porter_stems");
    assert!(stems.len() > 100);
    for (word, want) in stems {
        let got = porter::stem(word);
        if got != want.as_str().expect("string") {
            failures.push(format!("{word:?}: {got:?}, nltk {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
