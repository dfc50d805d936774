//! nltk's METEOR (`meteor_score` with one reference): exact, Porter-stem and WordNet-synonym
//! matching, then the fragmentation penalty.

use std::collections::HashMap;

use super::{porter, wordnet};

/// Words with their original positions, as nltk's `enum_*_list`s.
type Words = Vec<(usize, String)>;

/// nltk `_match_enums`: walks the hypothesis from its end and pairs each word with the last
/// unmatched equal reference word. Returns the matches and what is left on both sides.
fn match_enums(hyp: Words, refs: Words) -> (Vec<(usize, usize)>, Words, Words) {
    let mut positions: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, (_, word)) in refs.iter().enumerate() {
        positions.entry(word.as_str()).or_default().push(j);
    }
    let mut matches = Vec::new();
    let mut hyp_matched = vec![false; hyp.len()];
    let mut ref_matched = vec![false; refs.len()];
    for i in (0..hyp.len()).rev() {
        if let Some(j) = positions.get_mut(hyp[i].1.as_str()).and_then(Vec::pop) {
            hyp_matched[i] = true;
            ref_matched[j] = true;
            matches.push((hyp[i].0, refs[j].0));
        }
    }
    let hyp_left = hyp
        .into_iter()
        .zip(hyp_matched)
        .filter(|(_, m)| !m)
        .map(|(p, _)| p)
        .collect();
    let ref_left = refs
        .into_iter()
        .zip(ref_matched)
        .filter(|(_, m)| !m)
        .map(|(p, _)| p)
        .collect();
    (matches, hyp_left, ref_left)
}

fn stemmed(words: Vec<(usize, String)>) -> Vec<(usize, String)> {
    words
        .into_iter()
        .map(|(i, w)| (i, porter::stem(&w)))
        .collect()
}

/// nltk `_enum_wordnetsyn_match` over what the stem stage left (those words are stems): from
/// the hypothesis' end, each word's WordNet synonyms and the word itself are looked up among
/// the unmatched reference words, and the one whose last unmatched position is furthest right
/// is taken.
fn synonym_match(hyp: &Words, refs: &Words) -> Vec<(usize, usize)> {
    let mut positions: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, (_, word)) in refs.iter().enumerate() {
        positions.entry(word.as_str()).or_default().push(j);
    }
    let mut matches = Vec::new();
    if refs.is_empty() {
        return matches;
    }
    for (position, word) in hyp.iter().rev() {
        let mut best: Option<(usize, &str)> = None;
        let synonyms = wordnet::synonyms(word);
        for candidate in synonyms.iter().copied().chain([word.as_str()]) {
            if let Some(&j) = positions.get(candidate).and_then(|p| p.last())
                && best.is_none_or(|(b, _)| j > b)
            {
                best = Some((j, candidate));
            }
        }
        if let Some((j, candidate)) = best {
            positions.get_mut(candidate).and_then(Vec::pop);
            matches.push((*position, refs[j].0));
        }
    }
    matches
}

/// nltk `_count_chunks` over matches sorted by hypothesis position.
fn count_chunks(matches: &[(usize, usize)]) -> usize {
    1 + matches
        .windows(2)
        .filter(|p| !(p[1].0 == p[0].0 + 1 && p[1].1 == p[0].1 + 1))
        .count()
}

/// METEOR of `hypothesis` against `reference` (tokens), with nltk's defaults: words
/// lowercased, alpha 0.9, beta 3, gamma 0.5; exact matches first, then Porter-stem matches,
/// then WordNet 3.0 synonyms of the remaining stems.
pub fn meteor(reference: &[&str], hypothesis: &[&str]) -> f64 {
    const ALPHA: f64 = 0.9;
    const BETA: f64 = 3.0;
    const GAMMA: f64 = 0.5;
    let hyp: Vec<(usize, String)> = hypothesis
        .iter()
        .map(|w| w.to_lowercase())
        .enumerate()
        .collect();
    let refs: Vec<(usize, String)> = reference
        .iter()
        .map(|w| w.to_lowercase())
        .enumerate()
        .collect();
    let (hyp_len, ref_len) = (hyp.len(), refs.len());
    let (mut matches, hyp, refs) = match_enums(hyp, refs);
    let (stem_matches, hyp, refs) = match_enums(stemmed(hyp), stemmed(refs));
    matches.extend(stem_matches);
    matches.extend(synonym_match(&hyp, &refs));
    matches.sort_by_key(|m| m.0);
    let count = matches.len();
    if hyp_len == 0 || ref_len == 0 || count == 0 {
        return 0.0;
    }
    let precision = count as f64 / hyp_len as f64;
    let recall = count as f64 / ref_len as f64;
    let fmean = precision * recall / (ALPHA * precision + (1.0 - ALPHA) * recall);
    let fragmentation = count_chunks(&matches) as f64 / count as f64;
    let penalty = GAMMA * fragmentation.powf(BETA);
    (1.0 - penalty) * fmean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_text_is_penalised_only_by_one_chunk() {
        let s = ["a", "b", "c", "d"];
        let fmean = 1.0;
        let penalty = 0.5 * (1.0f64 / 4.0).powf(3.0);
        assert!((meteor(&s, &s) - (1.0 - penalty) * fmean).abs() < 1e-15);
    }

    #[test]
    fn stems_match_after_exact_words() {
        assert!(meteor(&["running"], &["runs"]) > 0.0);
        assert_eq!(meteor(&["cat"], &["dog"]), 0.0);
        assert_eq!(meteor(&[], &["dog"]), 0.0);
    }

    #[test]
    fn synonyms_match_after_stems() {
        // nltk with WordNet: "e-mails" stems to "e-mail", whose synset holds "email".
        let score = meteor(&["email", "emails"], &["e-mail", "e-mails"]);
        assert!(score > 0.9, "{score}");
        assert!(meteor(&["fast"], &["quick"]) > 0.0);
    }
}
