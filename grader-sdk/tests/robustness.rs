//! Inputs a model or a dataset controls must never panic inside a component (a panic is a
//! trap that loses the row). These tests feed the parsers and metrics many deterministic
//! pseudo-random inputs built from the characters that matter to them.

use grader_sdk::similarity::Metric;
use grader_sdk::template::Template;
use grader_sdk::{Item, Sample, diff, json_path};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn text(&mut self, alphabet: &[&str], max_len: usize) -> String {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

const ROUNDS: usize = 3000;

#[test]
fn diff_parser_never_panics_on_mutated_diffs() {
    let pieces = [
        "--- a/x\n",
        "+++ b/x\n",
        "@@ -1,2 +1,2 @@\n",
        "@@ -0,0 +1 @@\n",
        "@@ -1 +1 @@ f\n",
        " ctx\n",
        "-old\n",
        "+new\n",
        "\\ No newline at end of file\n",
        "diff --git a/x b/x\n",
        "diff --git \"a/q x\" \"b/q x\"\n",
        "new file mode 100644\n",
        "index 1..2\n",
        "--- /dev/null\n",
        "+++ /dev/null\n",
        "\n",
        "\r\n",
        "prose é\n",
        "@@ -",
        "+",
        "-",
        " ",
        "@@ -9999999999999999999999,1 +1 @@\n",
        "\"",
        "Binary files a/x and b/x differ\n",
        "```diff\n",
        "```\n",
    ];
    let mut rng = Rng(0x5eed_0001);
    let mut valid = 0;
    for _ in 0..ROUNDS {
        let text = rng.text(&pieces, 14);
        if let Ok(parsed) = diff::parse(&text) {
            valid += 1;
            assert!(!parsed.files.is_empty());
        } else if let Err(e) = diff::parse(&text) {
            assert!(
                e.line >= 1 && e.line <= text.lines().count().max(1) + 1,
                "{e} for {text:?}"
            );
        }
    }
    // The generator must reach both outcomes, or the test proves little.
    assert!(valid > 0 && valid < ROUNDS, "valid {valid} of {ROUNDS}");
}

#[test]
fn templates_and_paths_never_panic() {
    let pieces = [
        "{{",
        "}}",
        "{",
        "}",
        "item",
        "sample",
        ".",
        "[",
        "]",
        "0",
        "12",
        "a",
        "output_text",
        " ",
        "é",
        "-1",
    ];
    let sample =
        Sample::parse(r#"{"output_text": "{\"a\": [1, {\"b\": \"x\"}]}"}"#).expect("sample");
    let item = Item::parse(r#"{"a": [[1], {"0": 2}], "output_text": "i"}"#).expect("item");
    let mut rng = Rng(0x5eed_0002);
    let mut rendered = 0;
    for _ in 0..ROUNDS {
        let text = rng.text(&pieces, 12);
        let _ = json_path::parse(&text);
        let _ = json_path::lookup(item.as_json(), &text);
        if let Ok(template) = Template::parse(&text)
            && template.render(&sample, &item).is_ok()
        {
            rendered += 1;
        }
    }
    assert!(rendered > 0);
}

#[test]
fn metrics_stay_in_unit_range_on_arbitrary_text() {
    let pieces = [
        "the ", "cat ", "running ", "runs ", "a", "b", " ", "  ", "\t", "\n", "!", "_", "é", "É",
        "İ", "ß", "日本", "😀", "\u{1f}", "\u{a0}", "\u{301}", "x²", "ies", "ing ", "ational ",
    ];
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..ROUNDS / 3 {
        let a = rng.text(&pieces, 20);
        let b = rng.text(&pieces, 20);
        for metric in Metric::ALL {
            let score = metric.score(&a, &b);
            assert!(
                (0.0..=1.0 + 1e-12).contains(&score),
                "{}({a:?}, {b:?}) = {score}",
                metric.name()
            );
            // WRatio, GLEU and ROUGE F-measures are symmetric in their two texts.
            if !matches!(metric, Metric::Bleu | Metric::Meteor) {
                let swapped = metric.score(&b, &a);
                assert!(
                    (score - swapped).abs() < 1e-12,
                    "{} not symmetric on {a:?}, {b:?}",
                    metric.name()
                );
            }
        }
    }
}
