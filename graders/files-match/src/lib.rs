//! `files-match`: the files a plan names against the item's `expected_files`.
//!
//! Config (every field optional):
//! `{"type":"files_match","name":"…","planned_path":"output_json.files","expected_path":"expected_files","text_fallback":true,"pass_threshold":0.8}`.
//!
//! - Planned files are read from the sample at `planned_path` (default `output_json.files`; an
//!   array of strings, or of objects with a `path` or `file` field). When that path is absent
//!   and `text_fallback` is true (the default), they are parsed from `output_text`: per line,
//!   the backticked spans that look like paths, else the first path-like word after a list
//!   bullet.
//! - Expected files are the item's array at `expected_path` (default `expected_files`).
//! - Paths are normalised before comparing: trimmed, `\` → `/`, `//` collapsed, leading `./`
//!   and one diff prefix `a/` or `b/` removed, trailing `/` removed. Comparison is
//!   case-sensitive, duplicates count once.
//! - Score is F1; metrics `precision`, `recall`, `f1`. A zero denominator gives 0 (scikit-learn's
//!   default `zero_division`), except that an empty plan for an empty expectation scores 1.
//! - `passed` is `f1 >= pass_threshold` when a threshold is given.

use std::collections::BTreeSet;

use grader_sdk::{Grade, GradeError, Grader, Item, Sample};
use serde::Deserialize;
use serde_json::Value;

/// The grader's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `files_match` when present.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Display name; not used for grading.
    #[serde(default)]
    pub name: Option<String>,
    /// Where the planned files are in the sample.
    #[serde(default = "default_planned_path")]
    pub planned_path: String,
    /// Where the expected files are in the item.
    #[serde(default = "default_expected_path")]
    pub expected_path: String,
    /// Parse paths out of `output_text` when `planned_path` is absent.
    #[serde(default = "default_true")]
    pub text_fallback: bool,
    /// F1 needed to pass, in [0, 1].
    #[serde(default)]
    pub pass_threshold: Option<f64>,
}

fn default_planned_path() -> String {
    "output_json.files".to_owned()
}

fn default_expected_path() -> String {
    "expected_files".to_owned()
}

fn default_true() -> bool {
    true
}

/// Normalises a path for comparison (see the crate docs); `None` when nothing is left.
pub fn normalize(path: &str) -> Option<String> {
    let mut p = path.trim().replace('\\', "/");
    while p.contains("//") {
        p = p.replace("//", "/");
    }
    let mut rest = p.as_str();
    while let Some(stripped) = rest.strip_prefix("./") {
        rest = stripped;
    }
    if let Some(stripped) = rest.strip_prefix("a/").or_else(|| rest.strip_prefix("b/"))
        && !stripped.is_empty()
    {
        rest = stripped;
    }
    while let Some(stripped) = rest.strip_prefix("./") {
        rest = stripped;
    }
    let rest = rest.trim_end_matches('/');
    (!rest.is_empty() && rest != ".").then(|| rest.to_owned())
}

/// Whether a word looks like a file path: no spaces, only path characters, and a `/` or a
/// `.` followed by an extension.
fn looks_like_path(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || "._-/\\@+~".contains(c))
        && (word.contains('/')
            || word.rsplit_once('.').is_some_and(|(stem, ext)| {
                !stem.is_empty() && !ext.is_empty() && ext.chars().any(|c| c.is_ascii_alphabetic())
            }))
}

/// Paths named in free text, one line at a time.
pub fn paths_in_text(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let spans: Vec<&str> = line
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::trim)
            .filter(|s| looks_like_path(s))
            .collect();
        if !spans.is_empty() {
            found.extend(spans.into_iter().map(str::to_owned));
            continue;
        }
        let mut words = line.split_whitespace().peekable();
        // Skip list bullets: `-`, `*`, `+`, `1.`, `1)`.
        if let Some(first) = words.peek()
            && (matches!(*first, "-" | "*" | "+")
                || first
                    .trim_end_matches(['.', ')'])
                    .chars()
                    .all(|c| c.is_ascii_digit())
                    && first.len() > 1)
        {
            words.next();
        }
        let word = words
            .map(|w| w.trim_matches(|c: char| "\"'`,;:()[]*".contains(c)))
            .find(|w| looks_like_path(w));
        if let Some(word) = word {
            found.push(word.to_owned());
        }
    }
    found
}

fn path_of(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Object(o) => o
            .get("path")
            .or_else(|| o.get("file"))
            .and_then(Value::as_str),
        _ => None,
    }
}

fn path_list(value: &Value, what: &str) -> Result<Vec<String>, GradeError> {
    let array = value
        .as_array()
        .ok_or_else(|| GradeError::input(format!("{what} is not an array")))?;
    array
        .iter()
        .map(|v| {
            path_of(v).map(str::to_owned).ok_or_else(|| {
                GradeError::input(format!(
                    "{what} has an entry that is neither a string nor {{\"path\": …}}: {v}"
                ))
            })
        })
        .collect()
}

fn normalized_set(paths: &[String]) -> BTreeSet<String> {
    paths.iter().filter_map(|p| normalize(p)).collect()
}

/// Precision, recall and F1 of `planned` against `expected`.
pub fn scores(planned: &BTreeSet<String>, expected: &BTreeSet<String>) -> (f64, f64, f64) {
    if planned.is_empty() && expected.is_empty() {
        return (1.0, 1.0, 1.0);
    }
    let hits = planned.intersection(expected).count() as f64;
    let ratio = |n: f64, d: usize| if d == 0 { 0.0 } else { n / d as f64 };
    let precision = ratio(hits, planned.len());
    let recall = ratio(hits, expected.len());
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1)
}

fn listing(paths: Vec<&String>) -> String {
    const SHOWN: usize = 5;
    let mut s = paths
        .iter()
        .take(SHOWN)
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        s.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    s
}

/// The `files-match` grader.
pub struct FilesMatch;

impl Grader for FilesMatch {
    const DESCRIPTION: &'static str = "F1 of the planned files against item.expected_files after path normalisation (metrics precision, recall, f1)";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), String> {
        if let Some(kind) = config.kind.as_deref().filter(|k| *k != "files_match") {
            return Err(format!("`type`: expected \"files_match\", found {kind:?}"));
        }
        grader_sdk::json_path::parse(&config.planned_path)
            .map_err(|e| format!("`planned_path`: {e}"))?;
        grader_sdk::json_path::parse(&config.expected_path)
            .map_err(|e| format!("`expected_path`: {e}"))?;
        if let Some(t) = config.pass_threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(format!("`pass_threshold`: must be in [0, 1], found {t}"));
        }
        Ok(())
    }

    fn grade(config: &Config, sample: &Sample, item: &Item) -> Result<Grade, GradeError> {
        let expected = item
            .get(&config.expected_path)
            .ok_or_else(|| GradeError::input(format!("item has no `{}`", config.expected_path)))?;
        let expected = normalized_set(&path_list(
            expected,
            &format!("item `{}`", config.expected_path),
        )?);
        let planned = match sample.get(&config.planned_path) {
            Some(value) => path_list(value, &format!("sample `{}`", config.planned_path))?,
            None if config.text_fallback => {
                paths_in_text(sample.output_text().ok_or_else(|| {
                    GradeError::input(format!(
                        "sample has neither `{}` nor a string `output_text`",
                        config.planned_path
                    ))
                })?)
            }
            None => {
                return Err(GradeError::input(format!(
                    "sample has no `{}`",
                    config.planned_path
                )));
            }
        };
        let planned = normalized_set(&planned);
        let (precision, recall, f1) = scores(&planned, &expected);
        let missing: Vec<&String> = expected.difference(&planned).collect();
        let extra: Vec<&String> = planned.difference(&expected).collect();
        let mut reasoning = format!(
            "{} of {} expected files planned; {} planned",
            expected.len() - missing.len(),
            expected.len(),
            planned.len()
        );
        if !missing.is_empty() {
            reasoning.push_str(&format!("; missing: {}", listing(missing)));
        }
        if !extra.is_empty() {
            reasoning.push_str(&format!("; unexpected: {}", listing(extra)));
        }
        Ok(Grade::new(f1)
            .with_threshold(config.pass_threshold)
            .with_reasoning(reasoning)
            .with_metric("precision", precision)
            .with_metric("recall", recall)
            .with_metric("f1", f1))
    }
}

grader_sdk::export!(FilesMatch);

#[cfg(test)]
mod tests {
    use super::*;
    use grader_sdk::run;
    use serde_json::json;

    fn grade(config: Value, sample: Value, item: Value) -> Result<Grade, GradeError> {
        run::grade::<FilesMatch>(&config.to_string(), &sample.to_string(), &item.to_string())
    }

    #[test]
    fn normalisation_rules() {
        let cases = [
            ("./src/lib.rs", Some("src/lib.rs")),
            ("a/src/lib.rs", Some("src/lib.rs")),
            ("b/src/lib.rs", Some("src/lib.rs")),
            ("src\\win\\path.rs", Some("src/win/path.rs")),
            ("src//double///slash.rs", Some("src/double/slash.rs")),
            ("docs/", Some("docs")),
            ("  ././x.rs ", Some("x.rs")),
            ("a/", Some("a")),
            ("Src/Lib.rs", Some("Src/Lib.rs")),
            ("./", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn json_plan_scores_precision_recall_f1() {
        let g = grade(
            json!({"pass_threshold": 0.5}),
            json!({"output_json": {"files": ["./src/a.rs", "b/src/b.rs", "src/extra.rs"]}}),
            json!({"expected_files": ["src/a.rs", "src/b.rs", "src/c.rs", "src/d.rs"]}),
        )
        .unwrap();
        assert_eq!(g.metric("precision"), Some(2.0 / 3.0));
        assert_eq!(g.metric("recall"), Some(0.5));
        let f1 = 2.0 * (2.0 / 3.0) * 0.5 / (2.0 / 3.0 + 0.5);
        assert!((g.score - f1).abs() < 1e-12);
        assert_eq!(g.passed, Some(true));
        let r = g.reasoning.unwrap();
        assert!(
            r.contains("missing: src/c.rs, src/d.rs") && r.contains("unexpected: src/extra.rs"),
            "{r}"
        );
    }

    #[test]
    fn plan_objects_with_path_fields_and_case_sensitivity() {
        let g = grade(
            json!({}),
            json!({"output_json": {"files": [{"path": "A.rs", "action": "edit"}, {"file": "b.rs"}]}}),
            json!({"expected_files": ["a.rs", "b.rs"]}),
        )
        .unwrap();
        assert_eq!(
            (g.metric("precision"), g.metric("recall")),
            (Some(0.5), Some(0.5))
        );
        assert_eq!(g.passed, None);
    }

    #[test]
    fn text_plans_are_parsed_line_by_line() {
        let text = "Plan:\n1. Edit `src/main.rs` to add the flag\n- tests/cli.rs: add a test\n* README.md\nThen run cargo test.\n2) Update Cargo.toml";
        assert_eq!(
            paths_in_text(text),
            ["src/main.rs", "tests/cli.rs", "README.md", "Cargo.toml"]
        );
        let g = grade(
            json!({"pass_threshold": 1.0}),
            json!({"output_text": text}),
            json!({"expected_files": ["src/main.rs", "tests/cli.rs", "README.md", "Cargo.toml"]}),
        )
        .unwrap();
        assert_eq!((g.score, g.passed), (1.0, Some(true)));
    }

    #[test]
    fn empty_sets() {
        let e = BTreeSet::new();
        let one: BTreeSet<String> = ["x".to_owned()].into();
        assert_eq!(scores(&e, &e), (1.0, 1.0, 1.0));
        assert_eq!(scores(&e, &one), (0.0, 0.0, 0.0));
        assert_eq!(scores(&one, &e), (0.0, 0.0, 0.0));
    }

    #[test]
    fn bad_inputs_are_invalid_input() {
        let cfg = json!({});
        let e = grade(cfg.clone(), json!({"output_text": "x.rs"}), json!({})).unwrap_err();
        assert!(
            matches!(e, GradeError::InvalidInput(ref m) if m.contains("expected_files")),
            "{e}"
        );
        let e = grade(
            cfg.clone(),
            json!({"output_text": "x.rs"}),
            json!({"expected_files": "x.rs"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not an array"), "{e}");
        let e = grade(
            cfg.clone(),
            json!({"output_json": {"files": [1]}}),
            json!({"expected_files": []}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("neither a string"), "{e}");
        let e = grade(cfg, json!({"choices": []}), json!({"expected_files": []})).unwrap_err();
        assert!(e.to_string().contains("output_text"), "{e}");
        let e = grade(
            json!({"text_fallback": false}),
            json!({"output_text": "x.rs"}),
            json!({"expected_files": []}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("output_json.files"), "{e}");
    }

    #[test]
    fn bad_configs_name_the_field() {
        for (config, field) in [
            (json!({"pass_threshold": 2}), "pass_threshold"),
            (json!({"pass_threshold": "high"}), "pass_threshold"),
            (json!({"planned_path": "a..b"}), "planned_path"),
            (json!({"expected_path": ""}), "expected_path"),
            (json!({"type": "string_check"}), "type"),
            (json!({"planed_path": "x"}), "planed_path"),
            (json!({"text_fallback": "yes"}), "text_fallback"),
        ] {
            let err = run::validate_config::<FilesMatch>(&config.to_string()).unwrap_err();
            assert!(err.contains(field), "{config}: {err}");
        }
    }
}
