//! Google's rouge-score (`RougeScorer(..., use_stemmer=True)`), F-measure.

use std::collections::HashMap;

use super::porter;

/// rouge-score's default tokenizer: lowercase, every run of characters outside `[a-z0-9]`
/// becomes a separator (so non-ASCII letters vanish), and tokens longer than three characters
/// are Porter-stemmed.
pub fn rouge_tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    lower
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(|t| {
            if t.chars().count() > 3 {
                porter::stem(t)
            } else {
                t.to_owned()
            }
        })
        .filter(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        .collect()
}

fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

fn grams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    if n > 0 && tokens.len() >= n {
        for w in tokens.windows(n) {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    counts
}

/// ROUGE-N F-measure of `prediction` against `target` tokens.
pub fn rouge_n(target: &[String], prediction: &[String], n: usize) -> f64 {
    let target = grams(target, n);
    let prediction = grams(prediction, n);
    let overlap: usize = target
        .iter()
        .map(|(g, &c)| c.min(prediction.get(g).copied().unwrap_or(0)))
        .sum();
    let target_total: usize = target.values().sum();
    let prediction_total: usize = prediction.values().sum();
    let precision = overlap as f64 / prediction_total.max(1) as f64;
    let recall = overlap as f64 / target_total.max(1) as f64;
    fmeasure(precision, recall)
}

/// ROUGE-L (longest common subsequence) F-measure of `prediction` against `target` tokens.
pub fn rouge_l(target: &[String], prediction: &[String]) -> f64 {
    if target.is_empty() || prediction.is_empty() {
        return 0.0;
    }
    let mut row = vec![0usize; prediction.len() + 1];
    for t in target {
        let mut diagonal = 0;
        for (j, p) in prediction.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if t == p {
                diagonal + 1
            } else {
                above.max(row[j])
            };
            diagonal = above;
        }
    }
    let lcs = row[prediction.len()] as f64;
    fmeasure(lcs / prediction.len() as f64, lcs / target.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_drops_non_ascii_and_stems_long_tokens() {
        assert_eq!(
            rouge_tokens("The Running cats, café!"),
            ["the", "run", "cat", "caf"]
        );
        assert!(rouge_tokens("日本語").is_empty());
    }

    #[test]
    fn identical_and_disjoint() {
        let a = rouge_tokens("the cat sat");
        assert_eq!(rouge_n(&a, &a, 1), 1.0);
        assert_eq!(rouge_l(&a, &a), 1.0);
        assert_eq!(rouge_n(&a, &a, 4), 0.0);
        assert_eq!(rouge_l(&a, &rouge_tokens("dog")), 0.0);
    }
}
