//! How recorded content is shown: an agent's output (a unified diff coloured line by line, JSON
//! pretty-printed, anything else as text), template variables, grader verdicts, and the
//! side-by-side diff of two prompt versions ([`similar`]). Everything is escaped by maud; nothing
//! here trusts the content.

use maud::{Markup, html};
use serde_json::Value;
use similar::{DiffTag, TextDiff};

/// How an output reads best.
#[derive(Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// A unified diff (a coder's patch).
    Diff,
    /// A JSON document.
    Json(String),
    /// Anything else.
    Text,
}

/// Decides how to show `output`: JSON when it parses as an object or array, a diff when it has
/// a hunk header (`@@ `) or a `diff --git` line, text otherwise.
pub fn classify(output: &str) -> OutputKind {
    let trimmed = output.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(value) = serde_json::from_str::<Value>(output)
        && let Ok(pretty) = serde_json::to_string_pretty(&value)
    {
        return OutputKind::Json(pretty);
    }
    let is_diff = output
        .lines()
        .any(|line| line.starts_with("@@ ") || line.starts_with("diff --git "));
    if is_diff {
        OutputKind::Diff
    } else {
        OutputKind::Text
    }
}

/// An agent's output, shown as [`classify`] decides.
pub fn output(output: &str) -> Markup {
    match classify(output) {
        OutputKind::Diff => html! {
            pre.output.diff {
                @for line in output.lines() {
                    // Block spans: one line each, coloured across the width.
                    span class=(diff_line_class(line)) { (line) }
                }
            }
        },
        OutputKind::Json(pretty) => html! { pre.output.json { (pretty) } },
        OutputKind::Text => html! { pre.output { (output) } },
    }
}

fn diff_line_class(line: &str) -> &'static str {
    if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff ") {
        "meta"
    } else if line.starts_with("@@") {
        "hunk"
    } else if line.starts_with('+') {
        "add"
    } else if line.starts_with('-') {
        "del"
    } else {
        "ctx"
    }
}

/// Template variables: a table of name and value (strings as text, the rest as JSON).
pub fn variables(input: &serde_json::Map<String, Value>) -> Markup {
    html! {
        @if input.is_empty() {
            p.muted { "No input variables." }
        } @else {
            table.vars {
                @for (name, value) in input {
                    tr {
                        th scope="row" { (name) }
                        td { pre { (value_text(value)) } }
                    }
                }
            }
        }
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// Grader results (`{"name": {"passed", "score", "label", "error", …}}`) as a table.
pub fn grader_results(results: Option<&Value>) -> Markup {
    let Some(Value::Object(results)) = results else {
        return html! { p.muted { "Not graded." } };
    };
    html! {
        table.graders {
            thead { tr { th { "Grader" } th { "Passed" } th { "Score" } th { "Label / error" } } }
            tbody {
                @for (name, verdict) in results {
                    @let passed = verdict.get("passed").and_then(Value::as_bool);
                    tr class=(match passed { Some(true) => "pass", Some(false) => "fail", None => "" }) {
                        td { (name) }
                        td { (super::layout::yes_no(passed)) }
                        td { (verdict.get("score").and_then(Value::as_f64).map(|s| format!("{s:.2}")).unwrap_or_default()) }
                        td {
                            (verdict.get("label").and_then(Value::as_str).unwrap_or_default())
                            @if let Some(error) = verdict.get("error").and_then(Value::as_str) {
                                span.error { (error) }
                            }
                            @if let Some(reason) = verdict.get("reasoning").and_then(Value::as_str) {
                                div.muted { (reason) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One row of a side-by-side diff: the old line, the new line, and what happened.
#[derive(Debug, PartialEq, Eq)]
pub struct DiffRow<'a> {
    /// The old version's line, when the row has one.
    pub old: Option<&'a str>,
    /// The new version's line, when the row has one.
    pub new: Option<&'a str>,
    /// `same`, `removed`, `added` or `changed`.
    pub kind: &'static str,
}

/// Lines of `old` and `new` paired for a side-by-side view: equal lines side by side, a
/// replaced block line by line, removed lines with nothing on the right, added ones with
/// nothing on the left.
pub fn side_by_side<'a>(old: &'a str, new: &'a str) -> Vec<DiffRow<'a>> {
    let diff = TextDiff::from_lines(old, new);
    let (olds, news) = (diff.old_slices(), diff.new_slices());
    let line = |s: &'a str| s.trim_end_matches(['\n', '\r']);
    let mut rows = Vec::new();
    for op in diff.ops() {
        let (tag, old_range, new_range) = op.as_tag_tuple();
        let kind = match tag {
            DiffTag::Equal => "same",
            DiffTag::Delete => "removed",
            DiffTag::Insert => "added",
            DiffTag::Replace => "changed",
        };
        let count = old_range.len().max(new_range.len());
        for i in 0..count {
            let old = (i < old_range.len()).then(|| line(olds[old_range.start + i]));
            let new = (i < new_range.len()).then(|| line(news[new_range.start + i]));
            rows.push(DiffRow { old, new, kind });
        }
    }
    rows
}

/// The side-by-side diff as a table.
pub fn diff_table(old_title: &str, old: &str, new_title: &str, new: &str) -> Markup {
    let rows = side_by_side(old, new);
    html! {
        table.sbs {
            thead { tr { th { (old_title) } th { (new_title) } } }
            tbody {
                @for row in &rows {
                    tr class=(row.kind) {
                        td.old { @if let Some(text) = row.old { (text) } }
                        td.new { @if let Some(text) = row.new { (text) } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_told_apart() {
        assert_eq!(
            classify("{\"a\":1}"),
            OutputKind::Json("{\n  \"a\": 1\n}".to_owned())
        );
        assert_eq!(
            classify("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"),
            OutputKind::Diff
        );
        assert_eq!(classify("{not json"), OutputKind::Text);
        assert_eq!(classify("plain words"), OutputKind::Text);
    }

    #[test]
    fn a_diff_is_coloured_by_line_and_escaped() {
        let shown = output("@@ -1 +1 @@\n-<b>\n+<i>\n ctx").into_string();
        assert!(
            shown.contains(r#"<span class="del">-&lt;b&gt;</span>"#),
            "{shown}"
        );
        assert!(
            shown.contains(r#"<span class="add">+&lt;i&gt;</span>"#),
            "{shown}"
        );
        assert!(shown.contains(r#"<span class="hunk">"#), "{shown}");
    }

    #[test]
    fn side_by_side_pairs_lines() {
        let rows = side_by_side("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(
            rows,
            vec![
                DiffRow {
                    old: Some("a"),
                    new: Some("a"),
                    kind: "same"
                },
                DiffRow {
                    old: Some("b"),
                    new: Some("B"),
                    kind: "changed"
                },
                DiffRow {
                    old: Some("c"),
                    new: Some("c"),
                    kind: "same"
                },
                DiffRow {
                    old: None,
                    new: Some("d"),
                    kind: "added"
                },
            ]
        );
    }
}
