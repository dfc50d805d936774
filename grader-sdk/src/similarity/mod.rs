//! Text-similarity metrics, each matching one reference Python implementation to 1e-6 (the
//! corpus and its generator are in `graders/text-similarity/reference/`).
//!
//! | metric | reference implementation |
//! |---|---|
//! | `fuzzy_match` | rapidfuzz `fuzz.WRatio(input, reference, processor=utils.default_process) / 100` |
//! | `bleu` | nltk `sentence_bleu([reference.split()], input.split())`: weights (0.25,)×4, no smoothing (method0) |
//! | `gleu` | nltk `sentence_gleu([reference.split()], input.split())`: 1- to 4-grams |
//! | `meteor` | nltk `meteor_score([reference.split()], input.split())`, alpha 0.9, beta 3, gamma 0.5: exact, Porter-stem and WordNet 3.0 synonym matching |
//! | `rouge_1`…`rouge_5`, `rouge_l` | rouge-score `RougeScorer([type], use_stemmer=True)`, F-measure |
//!
//! Tokens for bleu, gleu and meteor are Python's `str.split()`: runs of Unicode whitespace
//! (including U+001C–U+001F, which Python counts and Rust's `split_whitespace` does not).
//! METEOR's third stage reads WordNet 3.0 (Debian's `wordnet-base`) from a compact table
//! compiled into the component (`grader-sdk/wordnet/`, see the `wordnet` module), with nltk's
//! `morphy` rules, so a build needs nothing installed and nothing is fetched at run time.

mod fuzzy;
mod meteor;
mod ngram;
pub mod porter;
mod rouge;
mod wordnet;

pub use fuzzy::{default_process, ratio, wratio};
pub use meteor::meteor;
pub use ngram::{bleu, gleu};
pub use rouge::{rouge_l, rouge_n, rouge_tokens};

/// A metric OpenAI's `text_similarity` grader names in `evaluation_metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// rapidfuzz WRatio with default processing, scaled to [0, 1].
    FuzzyMatch,
    /// nltk sentence BLEU.
    Bleu,
    /// nltk sentence GLEU.
    Gleu,
    /// nltk METEOR with WordNet 3.0 synonyms.
    Meteor,
    /// rouge-score ROUGE-N F-measure. OpenAI names N in 1..=5; [`Metric::score`] accepts any
    /// N, but [`Metric::name`] reports every N above 4 as `rouge_5`.
    RougeN(usize),
    /// rouge-score ROUGE-L F-measure.
    RougeL,
}

impl Metric {
    /// Every metric, in OpenAI's order.
    pub const ALL: [Metric; 10] = [
        Metric::FuzzyMatch,
        Metric::Bleu,
        Metric::Gleu,
        Metric::Meteor,
        Metric::RougeN(1),
        Metric::RougeN(2),
        Metric::RougeN(3),
        Metric::RougeN(4),
        Metric::RougeN(5),
        Metric::RougeL,
    ];

    /// The metric OpenAI calls `name` (`fuzzy_match`, `rouge_3`, …), if it is one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// OpenAI's name for the metric.
    pub fn name(self) -> &'static str {
        match self {
            Metric::FuzzyMatch => "fuzzy_match",
            Metric::Bleu => "bleu",
            Metric::Gleu => "gleu",
            Metric::Meteor => "meteor",
            Metric::RougeN(1) => "rouge_1",
            Metric::RougeN(2) => "rouge_2",
            Metric::RougeN(3) => "rouge_3",
            Metric::RougeN(4) => "rouge_4",
            Metric::RougeN(_) => "rouge_5",
            Metric::RougeL => "rouge_l",
        }
    }

    /// Scores `input` against `reference`, in [0, 1].
    pub fn score(self, input: &str, reference: &str) -> f64 {
        match self {
            Metric::FuzzyMatch => {
                wratio(&default_process(input), &default_process(reference)) / 100.0
            }
            Metric::Bleu => bleu(&split(reference), &split(input)),
            Metric::Gleu => gleu(&split(reference), &split(input)),
            Metric::Meteor => meteor(&split(reference), &split(input)),
            Metric::RougeN(n) => rouge_n(&rouge_tokens(reference), &rouge_tokens(input), n),
            Metric::RougeL => rouge_l(&rouge_tokens(reference), &rouge_tokens(input)),
        }
    }
}

/// Whether Python's `str.isspace()` holds: Unicode White_Space plus U+001C–U+001F.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` with no arguments.
pub fn split(text: &str) -> Vec<&str> {
    text.split(is_python_space)
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(m));
        }
        assert_eq!(Metric::from_name("cosine"), None);
        assert_eq!(Metric::from_name("rouge_6"), None);
    }

    #[test]
    fn python_split_includes_information_separators() {
        assert_eq!(split(" a\u{1f}b\u{a0}c\t\n"), ["a", "b", "c"]);
        assert!(split("   ").is_empty());
    }
}
