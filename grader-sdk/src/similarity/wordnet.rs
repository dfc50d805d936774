//! WordNet 3.0 synonyms as nltk's `wordnet.synsets(word)` finds them, for METEOR's third stage.
//!
//! The data is `grader-sdk/wordnet/wordnet.bin`, derived from Debian's `wordnet-base` by
//! `grader-sdk/wordnet/derive.py` (its docstring describes the layout; the WordNet licence is
//! next to it). It is compiled in with `include_bytes!` and read in place by binary search over
//! its sorted offset tables: nothing is parsed or allocated when a component instance starts,
//! so the fresh-instance cost of a grader does not grow with the ~4 MB of data, and a component
//! that never scores METEOR links none of it.

use std::cmp::Ordering;

static DATA: &[u8] = include_bytes!("../../wordnet/wordnet.bin");

/// nltk's `POS_LIST` order, with the letters its exception keys use.
const POS: [u8; 4] = [b'n', b'v', b'a', b'r'];

/// nltk's `MORPHOLOGICAL_SUBSTITUTIONS` per part of speech (nltk 3.10.4), in `POS` order.
const RULES: [&[(&str, &str)]; 4] = [
    &[
        ("s", ""),
        ("ses", "s"),
        ("ves", "f"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ],
    &[
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ],
    &[("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    &[],
];

fn u32_at(at: usize) -> usize {
    u32::from_le_bytes(DATA[at..at + 4].try_into().expect("4 bytes")) as usize
}

/// LEB128 at `*at`, advancing it.
fn varint(bytes: &[u8], at: &mut usize) -> usize {
    let mut value = 0;
    let mut shift = 0;
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// One offset table and the blob its entries live in.
#[derive(Clone, Copy)]
struct Table {
    len: usize,
    /// Byte position of the table's `len + 1` offsets.
    offsets: usize,
    /// Byte position of the blob the offsets point into.
    blob: usize,
}

impl Table {
    fn entry(self, i: usize) -> &'static [u8] {
        let start = u32_at(self.offsets + 4 * i);
        let end = u32_at(self.offsets + 4 * (i + 1));
        &DATA[self.blob + start..self.blob + end]
    }

    /// The entry's key (up to its first 0x00) and what follows it.
    fn keyed(self, i: usize) -> (&'static [u8], &'static [u8]) {
        let entry = self.entry(i);
        let nul = entry.iter().position(|&b| b == 0).unwrap_or(entry.len());
        (&entry[..nul], entry.get(nul + 1..).unwrap_or(&[]))
    }

    /// Binary search by key; the payload of the entry whose key is `key`.
    fn find(self, key: &[u8]) -> Option<(usize, &'static [u8])> {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (k, payload) = self.keyed(mid);
            match k.cmp(key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some((mid, payload)),
            }
        }
        None
    }
}

/// The three tables of `wordnet.bin`: lemmas, synsets, exceptions.
fn tables() -> [Table; 3] {
    assert_eq!(&DATA[..4], b"WNB1", "wordnet.bin has an unknown layout");
    let lens = [u32_at(4), u32_at(8), u32_at(12)];
    let mut at = 16;
    let mut offsets = [0; 3];
    for (o, len) in offsets.iter_mut().zip(lens) {
        *o = at;
        at += 4 * (len + 1);
    }
    let mut blob = at;
    let mut tables = [Table {
        len: 0,
        offsets: 0,
        blob: 0,
    }; 3];
    for (t, (offsets, len)) in tables.iter_mut().zip(offsets.into_iter().zip(lens)) {
        *t = Table { len, offsets, blob };
        blob += u32_at(offsets + 4 * len);
    }
    tables
}

/// Synset ids a lemma is indexed with under part of speech `pos` (index into `POS`).
fn lemma_synsets(payload: &[u8], pos: usize) -> Vec<usize> {
    let mask = payload[0];
    if mask & (1 << pos) == 0 {
        return Vec::new();
    }
    let mut at = 1;
    for p in 0..pos {
        if mask & (1 << p) != 0 {
            let count = varint(payload, &mut at);
            for _ in 0..count {
                varint(payload, &mut at);
            }
        }
    }
    let count = varint(payload, &mut at);
    (0..count).map(|_| varint(payload, &mut at)).collect()
}

/// nltk `_morphy(form, pos)` (3.10.4): the exception list's base forms if `form` has one,
/// else one round of suffix rules; kept when the index lists them under `pos`, and `form`
/// itself first. Returns each kept form's synset ids.
fn morphy(lemmas: Table, exceptions: Table, form: &str, pos: usize) -> Vec<usize> {
    let mut key = vec![POS[pos]];
    key.extend_from_slice(form.as_bytes());
    let mut forms: Vec<Vec<u8>> = vec![form.as_bytes().to_vec()];
    match exceptions.find(&key) {
        Some((_, bases)) => forms.extend(bases.split(|&b| b == 0).map(<[u8]>::to_vec)),
        None => {
            for (old, new) in RULES[pos] {
                if let Some(stem) = form.strip_suffix(old) {
                    forms.push(format!("{stem}{new}").into_bytes());
                }
            }
        }
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut synsets = Vec::new();
    for form in &forms {
        if seen.contains(&form.as_slice()) {
            continue;
        }
        seen.push(form);
        if let Some((_, payload)) = lemmas.find(form) {
            synsets.extend(lemma_synsets(payload, pos));
        }
    }
    synsets
}

/// The lemma names (without `_`, lower-case) of every synset nltk's `wordnet.synsets(word)`
/// returns, over all parts of speech; may repeat a name. `word` must already be lower-case,
/// as METEOR's tokens are.
pub fn synonyms(word: &str) -> Vec<&'static str> {
    let [lemmas, synsets, exceptions] = tables();
    let mut names = Vec::new();
    for pos in 0..POS.len() {
        for synset in morphy(lemmas, exceptions, word, pos) {
            let members = synsets.entry(synset);
            let mut at = 0;
            while at < members.len() {
                let (name, _) = lemmas.keyed(varint(members, &mut at));
                names.push(std::str::from_utf8(name).expect("wordnet.bin names are UTF-8"));
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(word: &str) -> Vec<&'static str> {
        let mut names = synonyms(word);
        names.sort_unstable();
        names.dedup();
        names
    }

    #[test]
    fn finds_synsets_through_rules_and_exceptions() {
        // "e-mails" reaches "e-mail" by the noun rule s -> "".
        assert!(
            sorted("e-mails").contains(&"email"),
            "{:?}",
            sorted("e-mails")
        );
        // "mice" is in noun.exc.
        assert!(sorted("mice").contains(&"mouse"));
        // Adjective rules: "quicker" -> "quick", a synonym of "fast".
        assert!(sorted("quicker").contains(&"fast"));
        // Names with `_` or upper-case letters are not kept.
        assert!(sorted("email").iter().all(|n| !n.contains('_')));
        assert!(sorted("party").iter().all(|n| *n == n.to_lowercase()));
    }

    #[test]
    fn unknown_words_have_no_synonyms() {
        assert!(synonyms("zzzqx").is_empty());
        assert!(synonyms("").is_empty());
        assert!(synonyms("!!!").is_empty());
        // A bare letter is a lemma ("s": second, sulfur, …), and so are its synonyms.
        assert!(synonyms("s").contains(&"second"));
    }
}
