//! nltk's sentence BLEU and sentence GLEU over pre-split tokens, one reference each.

use std::collections::HashMap;

fn ngram_counts<'a, 'b>(tokens: &'b [&'a str], n: usize) -> HashMap<&'b [&'a str], usize> {
    let mut counts = HashMap::new();
    if n == 0 || tokens.len() < n {
        return counts;
    }
    for gram in tokens.windows(n) {
        *counts.entry(gram).or_insert(0) += 1;
    }
    counts
}

/// nltk `sentence_bleu([reference], hypothesis)` with the default weights (0.25, 0.25, 0.25,
/// 0.25) and no smoothing: a zero n-gram precision is replaced by the smallest positive double,
/// as nltk's `method0` does, which makes the score vanishingly small rather than exactly 0.
/// No unigram match at all gives exactly 0.
pub fn bleu(reference: &[&str], hypothesis: &[&str]) -> f64 {
    const MAX_N: usize = 4;
    let mut numerators = [0usize; MAX_N];
    let mut denominators = [0usize; MAX_N];
    for n in 1..=MAX_N {
        let hyp = ngram_counts(hypothesis, n);
        let refs = ngram_counts(reference, n);
        numerators[n - 1] = hyp
            .iter()
            .map(|(gram, &count)| count.min(refs.get(gram).copied().unwrap_or(0)))
            .sum();
        denominators[n - 1] = hyp.values().sum::<usize>().max(1);
    }
    if numerators[0] == 0 {
        return 0.0;
    }
    let (hyp_len, ref_len) = (hypothesis.len(), reference.len());
    let brevity = if hyp_len > ref_len {
        1.0
    } else if hyp_len == 0 {
        0.0
    } else {
        (1.0 - ref_len as f64 / hyp_len as f64).exp()
    };
    let log_sum: f64 = (0..MAX_N)
        .map(|i| {
            let p = if numerators[i] == 0 {
                f64::MIN_POSITIVE
            } else {
                numerators[i] as f64 / denominators[i] as f64
            };
            0.25 * p.ln()
        })
        .sum();
    brevity * log_sum.exp()
}

/// nltk `sentence_gleu([reference], hypothesis)`: matching 1- to 4-grams over the larger of
/// the two n-gram totals; 0 when both texts are empty.
pub fn gleu(reference: &[&str], hypothesis: &[&str]) -> f64 {
    let mut matches = 0usize;
    let mut hyp_total = 0usize;
    let mut ref_total = 0usize;
    for n in 1..=4 {
        let hyp = ngram_counts(hypothesis, n);
        let refs = ngram_counts(reference, n);
        hyp_total += hyp.values().sum::<usize>();
        ref_total += refs.values().sum::<usize>();
        matches += hyp
            .iter()
            .map(|(gram, &count)| count.min(refs.get(gram).copied().unwrap_or(0)))
            .sum::<usize>();
    }
    let total = hyp_total.max(ref_total);
    if total == 0 {
        0.0
    } else {
        matches as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sentences_score_one() {
        let s = ["the", "cat", "sat", "on", "the", "mat"];
        assert_eq!(bleu(&s, &s), 1.0);
        assert_eq!(gleu(&s, &s), 1.0);
    }

    #[test]
    fn empty_and_disjoint_sentences_score_zero() {
        assert_eq!(bleu(&["a"], &[]), 0.0);
        assert_eq!(bleu(&["a"], &["b"]), 0.0);
        assert_eq!(gleu(&[], &[]), 0.0);
        assert!(bleu(&["a", "b"], &["a", "c"]) < 1e-70);
    }
}
