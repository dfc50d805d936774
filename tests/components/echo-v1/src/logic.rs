//! The grading logic shared by `echo-v1`, `echo-v2` and the native benchmark baseline: token F1
//! between the sample and the item text (real but small work per row), or exact match (almost
//! no work, so a benchmark sees the sandbox's own cost).

/// Token-level F1 between two texts (whitespace tokens, multiset overlap).
pub fn token_f1(sample: &str, item: &str) -> f64 {
    let mut expected: Vec<&str> = item.split_whitespace().collect();
    let predicted: Vec<&str> = sample.split_whitespace().collect();
    if expected.is_empty() && predicted.is_empty() {
        return 1.0;
    }
    if expected.is_empty() || predicted.is_empty() {
        return 0.0;
    }
    let expected_len = expected.len() as f64;
    let mut overlap = 0usize;
    for token in &predicted {
        if let Some(pos) = expected.iter().position(|t| t == token) {
            expected.swap_remove(pos);
            overlap += 1;
        }
    }
    if overlap == 0 {
        return 0.0;
    }
    let precision = overlap as f64 / predicted.len() as f64;
    let recall = overlap as f64 / expected_len;
    2.0 * precision * recall / (precision + recall)
}

/// 1.0 when the texts are identical, else 0.0.
pub fn exact(sample: &str, item: &str) -> f64 {
    if sample == item { 1.0 } else { 0.0 }
}
