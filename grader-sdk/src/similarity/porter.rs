//! The Porter stemmer exactly as nltk's `PorterStemmer()` runs it (mode `NLTK_EXTENSIONS`):
//! the original algorithm plus nltk's irregular-forms pool, its `ies`/`ied` handling for
//! four-letter words, its `y` → `i` condition, and its extra `alli`, `fulli` and `logi` rules.
//! METEOR's stem stage and rouge-score's `use_stemmer=True` both use it.
//!
//! Words are handled as sequences of Unicode scalar values, as Python strings are; only
//! `a e i o u` (and `y` after a consonant) are vowels.

/// Stems a word (lowercasing it first, as nltk does).
pub fn stem(word: &str) -> String {
    let lower = word.to_lowercase();
    if let Some(irregular) = irregular(&lower) {
        return irregular.to_owned();
    }
    // nltk compares the length of the word as given, before lowercasing.
    if word.chars().count() <= 2 {
        return lower;
    }
    let mut w: Vec<char> = lower.chars().collect();
    w = step1a(w);
    w = step1b(w);
    w = step1c(w);
    w = step2(w);
    w = step3(w);
    w = step4(w);
    w = step5a(w);
    w = step5b(w);
    w.into_iter().collect()
}

fn irregular(word: &str) -> Option<&'static str> {
    Some(match word {
        "sky" | "skies" => "sky",
        "dying" => "die",
        "lying" => "lie",
        "tying" => "tie",
        "news" => "news",
        "innings" | "inning" => "inning",
        "outings" | "outing" => "outing",
        "cannings" | "canning" => "canning",
        "howe" => "howe",
        "proceed" => "proceed",
        "exceed" => "exceed",
        "succeed" => "succeed",
        _ => return None,
    })
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

fn consonant_flags(w: &[char]) -> Vec<bool> {
    let mut flags: Vec<bool> = Vec::with_capacity(w.len());
    for (i, &c) in w.iter().enumerate() {
        let flag = if is_vowel(c) {
            false
        } else if c == 'y' {
            i == 0 || !flags[i - 1]
        } else {
            true
        };
        flags.push(flag);
    }
    flags
}

fn is_consonant(w: &[char], i: usize) -> bool {
    consonant_flags(&w[..=i])[i]
}

/// The number of vowel-consonant sequences.
fn measure(stem: &[char]) -> usize {
    let flags = consonant_flags(stem);
    flags.windows(2).filter(|p| !p[0] && p[1]).count()
}

fn contains_vowel(stem: &[char]) -> bool {
    consonant_flags(stem).iter().any(|c| !c)
}

fn ends_double_consonant(w: &[char]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && is_consonant(w, n - 1)
}

fn ends_cvc(w: &[char]) -> bool {
    let n = w.len();
    (n >= 3
        && is_consonant(w, n - 3)
        && !is_consonant(w, n - 2)
        && is_consonant(w, n - 1)
        && !matches!(w[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(w, 0) && is_consonant(w, 1))
}

fn ends_with(w: &[char], suffix: &str) -> bool {
    let s: Vec<char> = suffix.chars().collect();
    w.len() >= s.len() && w[w.len() - s.len()..] == s[..]
}

fn strip(w: &[char], suffix: &str) -> Vec<char> {
    w[..w.len() - suffix.chars().count()].to_vec()
}

fn with(mut stem: Vec<char>, replacement: &str) -> Vec<char> {
    stem.extend(replacement.chars());
    stem
}

type Condition<'a> = &'a dyn Fn(&[char]) -> bool;

/// nltk's `_apply_rule_list`: the first rule whose suffix matches decides, whether or not its
/// condition holds. `"*d"` is the double-consonant pseudo-suffix.
fn apply_rules(w: Vec<char>, rules: &[(&str, &str, Option<Condition>)]) -> Vec<char> {
    for (suffix, replacement, condition) in rules {
        if *suffix == "*d" && ends_double_consonant(&w) {
            let stem = w[..w.len() - 2].to_vec();
            return match condition {
                Some(c) if !c(&stem) => w,
                _ => with(stem, replacement),
            };
        }
        if ends_with(&w, suffix) {
            let stem = strip(&w, suffix);
            return match condition {
                Some(c) if !c(&stem) => w,
                _ => with(stem, replacement),
            };
        }
    }
    w
}

fn step1a(w: Vec<char>) -> Vec<char> {
    if ends_with(&w, "ies") && w.len() == 4 {
        return with(strip(&w, "ies"), "ie");
    }
    apply_rules(
        w,
        &[
            ("sses", "ss", None),
            ("ies", "i", None),
            ("ss", "ss", None),
            ("s", "", None),
        ],
    )
}

fn step1b(w: Vec<char>) -> Vec<char> {
    if ends_with(&w, "ied") {
        let replacement = if w.len() == 4 { "ie" } else { "i" };
        return with(strip(&w, "ied"), replacement);
    }
    if ends_with(&w, "eed") {
        let stem = strip(&w, "eed");
        return if measure(&stem) > 0 {
            with(stem, "ee")
        } else {
            w
        };
    }
    let mut intermediate = None;
    for suffix in ["ed", "ing"] {
        if ends_with(&w, suffix) {
            let stem = strip(&w, suffix);
            if contains_vowel(&stem) {
                intermediate = Some(stem);
                break;
            }
        }
    }
    let Some(stem) = intermediate else {
        return w;
    };
    let last = stem.last().copied().unwrap_or(' ');
    let last_str = last.to_string();
    let not_lsz = move |_: &[char]| !matches!(last, 'l' | 's' | 'z');
    let add_e = |s: &[char]| measure(s) == 1 && ends_cvc(s);
    apply_rules(
        stem,
        &[
            ("at", "ate", None),
            ("bl", "ble", None),
            ("iz", "ize", None),
            ("*d", &last_str, Some(&not_lsz)),
            ("", "e", Some(&add_e)),
        ],
    )
}

fn step1c(w: Vec<char>) -> Vec<char> {
    let condition = |s: &[char]| s.len() > 1 && is_consonant(s, s.len() - 1);
    apply_rules(w, &[("y", "i", Some(&condition))])
}

fn positive_measure(s: &[char]) -> bool {
    measure(s) > 0
}

fn step2(w: Vec<char>) -> Vec<char> {
    if ends_with(&w, "alli") && positive_measure(&strip(&w, "alli")) {
        return step2(with(strip(&w, "alli"), "al"));
    }
    let whole = w.clone();
    let logi = move |_: &[char]| positive_measure(&whole[..whole.len() - 3]);
    let m: Condition = &positive_measure;
    apply_rules(
        w,
        &[
            ("ational", "ate", Some(m)),
            ("tional", "tion", Some(m)),
            ("enci", "ence", Some(m)),
            ("anci", "ance", Some(m)),
            ("izer", "ize", Some(m)),
            ("bli", "ble", Some(m)),
            ("alli", "al", Some(m)),
            ("entli", "ent", Some(m)),
            ("eli", "e", Some(m)),
            ("ousli", "ous", Some(m)),
            ("ization", "ize", Some(m)),
            ("ation", "ate", Some(m)),
            ("ator", "ate", Some(m)),
            ("alism", "al", Some(m)),
            ("iveness", "ive", Some(m)),
            ("fulness", "ful", Some(m)),
            ("ousness", "ous", Some(m)),
            ("aliti", "al", Some(m)),
            ("iviti", "ive", Some(m)),
            ("biliti", "ble", Some(m)),
            ("fulli", "ful", Some(m)),
            ("logi", "log", Some(&logi)),
        ],
    )
}

fn step3(w: Vec<char>) -> Vec<char> {
    let m: Condition = &positive_measure;
    apply_rules(
        w,
        &[
            ("icate", "ic", Some(m)),
            ("ative", "", Some(m)),
            ("alize", "al", Some(m)),
            ("iciti", "ic", Some(m)),
            ("ical", "ic", Some(m)),
            ("ful", "", Some(m)),
            ("ness", "", Some(m)),
        ],
    )
}

fn step4(w: Vec<char>) -> Vec<char> {
    let gt1 = |s: &[char]| measure(s) > 1;
    let ion = |s: &[char]| measure(s) > 1 && matches!(s.last(), Some('s' | 't'));
    let m: Condition = &gt1;
    apply_rules(
        w,
        &[
            ("al", "", Some(m)),
            ("ance", "", Some(m)),
            ("ence", "", Some(m)),
            ("er", "", Some(m)),
            ("ic", "", Some(m)),
            ("able", "", Some(m)),
            ("ible", "", Some(m)),
            ("ant", "", Some(m)),
            ("ement", "", Some(m)),
            ("ment", "", Some(m)),
            ("ent", "", Some(m)),
            ("ion", "", Some(&ion)),
            ("ou", "", Some(m)),
            ("ism", "", Some(m)),
            ("ate", "", Some(m)),
            ("iti", "", Some(m)),
            ("ous", "", Some(m)),
            ("ive", "", Some(m)),
            ("ize", "", Some(m)),
        ],
    )
}

fn step5a(w: Vec<char>) -> Vec<char> {
    if ends_with(&w, "e") {
        let stem = strip(&w, "e");
        let m = measure(&stem);
        if m > 1 || (m == 1 && !ends_cvc(&stem)) {
            return stem;
        }
    }
    w
}

fn step5b(w: Vec<char>) -> Vec<char> {
    let whole = w.clone();
    let condition = move |_: &[char]| measure(&whole[..whole.len() - 1]) > 1;
    apply_rules(w, &[("ll", "l", Some(&condition))])
}

#[cfg(test)]
mod tests {
    use super::stem;

    #[test]
    fn classic_porter_examples() {
        for (word, want) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "tie"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("hopping", "hop"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("generalization", "gener"),
            ("controlling", "control"),
            ("dying", "die"),
            ("skies", "sky"),
            ("a", "a"),
            ("Running", "run"),
        ] {
            assert_eq!(stem(word), want, "{word}");
        }
    }
}
