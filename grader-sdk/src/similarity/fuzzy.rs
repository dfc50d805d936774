//! rapidfuzz's `WRatio` and the scorers it is built from, over Unicode scalar values as
//! rapidfuzz treats Python strings. Scores are in [0, 100], as rapidfuzz returns them.
//!
//! rapidfuzz threads a `score_cutoff` through these calls to skip work; a cutoff only turns a
//! lower score into 0 and every caller takes a maximum, so computing without it gives the same
//! results.

use std::collections::BTreeSet;

use super::is_python_space;

/// rapidfuzz's `utils.default_process` (the C++ one `WRatio` gets): every character that is not
/// alphanumeric becomes a space, the ends are trimmed, and letters are lowercased one scalar
/// at a time (simple case mapping, so `İ` becomes `i`, not `i̇`).
pub fn default_process(text: &str) -> String {
    let replaced: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    replaced.trim_matches(is_python_space).to_owned()
}

/// Length of the longest common subsequence.
fn lcs(a: &[char], b: &[char]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let mut row = vec![0usize; b.len() + 1];
    for &ca in a {
        let mut diagonal = 0;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diagonal + 1
            } else {
                above.max(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Normalised Indel similarity in [0, 1]: `1 - (len_a + len_b - 2·lcs) / (len_a + len_b)`.
fn indel_similarity(a: &[char], b: &[char]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    let distance = total - 2 * lcs(a, b);
    1.0 - distance as f64 / total as f64
}

/// `fuzz.ratio`, in [0, 100].
pub fn ratio(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    indel_similarity(&a, &b) * 100.0
}

fn ratio_chars(a: &[char], b: &[char]) -> f64 {
    indel_similarity(a, b) * 100.0
}

/// rapidfuzz's `_partial_ratio_impl`: the best Indel similarity of `short` against every
/// window of `long` of its length, plus the shorter prefixes and suffixes of `long`.
fn partial_impl(short: &[char], long: &[char]) -> f64 {
    let len1 = short.len();
    let len2 = long.len();
    let chars: BTreeSet<char> = short.iter().copied().collect();
    let mut best = 0.0f64;
    for i in 1..len1 {
        if !chars.contains(&long[i - 1]) {
            continue;
        }
        best = best.max(indel_similarity(short, &long[..i.min(len2)]));
        if best == 1.0 {
            return 100.0;
        }
    }
    for i in 0..len2.saturating_sub(len1) {
        if !chars.contains(&long[i + len1 - 1]) {
            continue;
        }
        best = best.max(indel_similarity(short, &long[i..i + len1]));
        if best == 1.0 {
            return 100.0;
        }
    }
    for i in len2.saturating_sub(len1)..len2 {
        if !chars.contains(&long[i]) {
            continue;
        }
        best = best.max(indel_similarity(short, &long[i..]));
        if best == 1.0 {
            return 100.0;
        }
    }
    best * 100.0
}

/// `fuzz.partial_ratio`, in [0, 100].
fn partial_ratio(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 100.0;
    }
    // rapidfuzz's C++ scorer gives 0 here; its window loops would index before the start.
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut score = partial_impl(short, long);
    if score != 100.0 && a.len() == b.len() {
        score = score.max(partial_impl(long, short));
    }
    score
}

fn tokens(s: &[char]) -> Vec<String> {
    let text: String = s.iter().collect();
    super::split(&text).into_iter().map(str::to_owned).collect()
}

fn joined<'a>(tokens: impl IntoIterator<Item = &'a String>) -> Vec<char> {
    let parts: Vec<&str> = tokens.into_iter().map(String::as_str).collect();
    parts.join(" ").chars().collect()
}

fn sorted_joined(mut tokens: Vec<String>) -> Vec<char> {
    tokens.sort();
    joined(&tokens)
}

fn token_sort_ratio(a: &[char], b: &[char]) -> f64 {
    ratio_chars(&sorted_joined(tokens(a)), &sorted_joined(tokens(b)))
}

fn norm_distance(distance: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        100.0 - 100.0 * distance as f64 / total as f64
    }
}

fn token_set_ratio(a: &[char], b: &[char]) -> f64 {
    let set_a: BTreeSet<String> = tokens(a).into_iter().collect();
    let set_b: BTreeSet<String> = tokens(b).into_iter().collect();
    if set_a.is_empty() || set_b.is_empty() {
        return 0.0;
    }
    let intersection: Vec<&String> = set_a.intersection(&set_b).collect();
    let diff_ab: Vec<&String> = set_a.difference(&set_b).collect();
    let diff_ba: Vec<&String> = set_b.difference(&set_a).collect();
    if !intersection.is_empty() && (diff_ab.is_empty() || diff_ba.is_empty()) {
        return 100.0;
    }
    // BTreeSet iterates in sorted order, which is what rapidfuzz's `sorted()` gives.
    let ab = joined(diff_ab);
    let ba = joined(diff_ba);
    let sect_len = joined(intersection).len();
    let sep = usize::from(sect_len != 0);
    let sect_ab_len = sect_len + sep + ab.len();
    let sect_ba_len = sect_len + sep + ba.len();
    let distance = ab.len() + ba.len() - 2 * lcs(&ab, &ba);
    let result = norm_distance(distance, sect_ab_len + sect_ba_len);
    if sect_len == 0 {
        return result;
    }
    let sect_ab_ratio = norm_distance(sep + ab.len(), sect_len + sect_ab_len);
    let sect_ba_ratio = norm_distance(sep + ba.len(), sect_len + sect_ba_len);
    result.max(sect_ab_ratio).max(sect_ba_ratio)
}

fn token_ratio(a: &[char], b: &[char]) -> f64 {
    token_set_ratio(a, b).max(token_sort_ratio(a, b))
}

fn partial_token_ratio(a: &[char], b: &[char]) -> f64 {
    let split_a = tokens(a);
    let split_b = tokens(b);
    let set_a: BTreeSet<String> = split_a.iter().cloned().collect();
    let set_b: BTreeSet<String> = split_b.iter().cloned().collect();
    if set_a.intersection(&set_b).next().is_some() {
        return 100.0;
    }
    let diff_ab: Vec<&String> = set_a.difference(&set_b).collect();
    let diff_ba: Vec<&String> = set_b.difference(&set_a).collect();
    let result = partial_ratio(
        &sorted_joined(split_a.clone()),
        &sorted_joined(split_b.clone()),
    );
    if split_a.len() == diff_ab.len() && split_b.len() == diff_ba.len() {
        return result;
    }
    result.max(partial_ratio(&joined(diff_ab), &joined(diff_ba)))
}

/// `fuzz.WRatio` on already processed strings, in [0, 100]: 0 when either is empty.
pub fn wratio(a: &str, b: &str) -> f64 {
    const UNBASE_SCALE: f64 = 0.95;
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (len1, len2) = (a.len() as f64, b.len() as f64);
    let len_ratio = if len1 > len2 {
        len1 / len2
    } else {
        len2 / len1
    };
    let end_ratio = ratio_chars(&a, &b);
    if len_ratio < 1.5 {
        return end_ratio.max(token_ratio(&a, &b) * UNBASE_SCALE);
    }
    let partial_scale = if len_ratio <= 8.0 { 0.9 } else { 0.6 };
    let end_ratio = end_ratio.max(partial_ratio(&a, &b) * partial_scale);
    end_ratio.max(partial_token_ratio(&a, &b) * UNBASE_SCALE * partial_scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_process_matches_rapidfuzz_examples() {
        assert_eq!(default_process("a_b c-d"), "a b c d");
        assert_eq!(default_process("Café ÉCOLE"), "café école");
        assert_eq!(default_process("İstanbul"), "istanbul");
        assert_eq!(default_process("emoji 😀 ok"), "emoji   ok");
        assert_eq!(default_process("  !x! "), "x");
    }

    #[test]
    fn known_scores() {
        assert_eq!(
            ratio("this is a test", "this is a test!"),
            100.0 * (1.0 - 1.0 / 29.0)
        );
        assert_eq!(wratio("", "x"), 0.0);
        assert_eq!(wratio("same", "same"), 100.0);
    }
}
