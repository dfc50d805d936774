//! The rows of a dataset version as they arrive: OpenAI eval JSONL lines, the `rows` of a
//! request, and snapshots of recorded runs. Each given row is `{"item": {...}, "sample"?: {...}}`
//! and nothing else; a refused row is named by its line or index and field.

use serde_json::{Map, Value};

use crate::store::ExportRun;

/// A refused row: `field` is `jsonl:7` (a line, from 1), `rows[3].item` and the like.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid row at `{field}`: {message}")]
pub struct RowError {
    /// Where.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// An `item` and its optional `sample`.
pub type ParsedRow = (Map<String, Value>, Option<Map<String, Value>>);

/// Parses the text of an OpenAI eval JSONL file; blank lines are skipped.
pub fn parse_jsonl(text: &str) -> Result<Vec<ParsedRow>, RowError> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("jsonl:{}", index + 1);
        let value: Value = serde_json::from_str(line).map_err(|e| RowError {
            field: at.clone(),
            message: format!("not JSON: {e}"),
        })?;
        rows.push(parse_row(value, &at)?);
    }
    Ok(rows)
}

/// Parses the `rows` of a request.
pub fn parse_rows(rows: Vec<Value>) -> Result<Vec<ParsedRow>, RowError> {
    rows.into_iter()
        .enumerate()
        .map(|(index, value)| parse_row(value, &format!("rows[{index}]")))
        .collect()
}

fn parse_row(value: Value, at: &str) -> Result<ParsedRow, RowError> {
    let refuse = |field: String, message: &str| RowError {
        field,
        message: message.to_owned(),
    };
    let Value::Object(mut row) = value else {
        return Err(refuse(
            at.to_owned(),
            "a row is an object {\"item\": {...}, \"sample\"?: {...}}",
        ));
    };
    if let Some(key) = row.keys().find(|k| *k != "item" && *k != "sample") {
        return Err(refuse(
            format!("{at}.{key}"),
            "unknown field; a row has only `item` and `sample`",
        ));
    }
    let item = match row.remove("item") {
        Some(Value::Object(item)) => item,
        Some(_) => return Err(refuse(format!("{at}.item"), "`item` must be an object")),
        None => return Err(refuse(format!("{at}.item"), "missing `item`")),
    };
    let sample = match row.remove("sample") {
        None | Some(Value::Null) => None,
        Some(Value::Object(sample)) => Some(sample),
        Some(_) => {
            return Err(refuse(
                format!("{at}.sample"),
                "`sample` must be an object or null",
            ));
        }
    };
    // PostgreSQL cannot store NUL in JSON text; refused on both backends alike.
    let holds_nul = |map: &Map<String, Value>| has_nul(&Value::Object(map.clone()));
    if holds_nul(&item) || sample.as_ref().is_some_and(holds_nul) {
        return Err(refuse(
            at.to_owned(),
            "holds a NUL character (U+0000), which is not accepted in text",
        ));
    }
    Ok((item, sample))
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The row a recorded run becomes, from the run as [`crate::store::RunStore::export_runs`]
/// reads it (taken apart rather than copied: exports and snapshots make rows of many runs):
/// `item` holds the input variables, then the outcome (`tests_passed`, `pr_merged`,
/// `expected_files`, `failure_signature`) and the annotation (`rating`, `output_feedback`,
/// `failure_mode`) where known — an input variable of the same name is kept, never
/// overwritten; `sample` is `{"output_text": …}` when the run has an output.
pub fn snapshot_row_from(run: ExportRun) -> ParsedRow {
    let mut item = run.input;
    let mut add = |key: &str, value: Value| {
        if !value.is_null() {
            item.entry(key.to_owned()).or_insert(value);
        }
    };
    if let Some(outcome) = run.outcome {
        add("tests_passed", outcome.tests_passed.into());
        add("pr_merged", outcome.pr_merged.into());
        add(
            "expected_files",
            outcome.expected_files.map_or(Value::Null, Value::from),
        );
        add("failure_signature", outcome.failure_signature.into());
    }
    if let Some(annotation) = run.annotation {
        add(
            "rating",
            annotation.rating.map_or(Value::Null, |r| r.as_str().into()),
        );
        add("output_feedback", annotation.output_feedback.into());
        add("failure_mode", annotation.failure_mode.into());
    }
    let sample = run.output.map(|output| {
        let mut sample = Map::new();
        sample.insert("output_text".to_owned(), Value::String(output));
        sample
    });
    (item, sample)
}
