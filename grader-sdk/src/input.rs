//! Typed access to a row's JSON: the model's [`Sample`] and the dataset [`Item`].
//!
//! Both keep the parsed JSON and answer path lookups (`"a.b[0].c"`, see [`crate::json_path`]).
//! The SDK parses them once per row, before the author's `grade` runs.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::GradeError;
use crate::big_int::BigInts;
use crate::json_path;

/// The model's output for one row, with OpenAI's `sample` meaning: `output_text`,
/// `output_json`, `output_tools`, `choices`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    value: Value,
}

/// The dataset row, OpenAI's `item`: whatever columns the dataset has.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    value: Value,
    /// Integer literals of the parsed text beyond `i64`/`u64`, whose digits serde_json lost.
    big_ints: BigInts,
}

impl Sample {
    /// Parses a sample. A JSON object is taken as is; a bare JSON string is taken as
    /// `{"output_text": …}`. When `output_json` is absent and `output_text` is itself a JSON
    /// object or array, `output_json` is filled from it, as OpenAI's grader runner does ("the
    /// `output_json` variable will be populated if the model sample is a valid JSON string").
    pub fn parse(json: &str) -> Result<Self, GradeError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| GradeError::input(format!("sample is not valid JSON: {e}")))?;
        Self::from_value(value)
    }

    /// Builds a sample from a JSON value (see [`Sample::parse`] for what is accepted).
    pub fn from_value(value: Value) -> Result<Self, GradeError> {
        let mut object = match value {
            Value::Object(object) => object,
            Value::String(text) => {
                let mut object = Map::new();
                object.insert("output_text".to_owned(), Value::String(text));
                object
            }
            other => {
                return Err(GradeError::input(format!(
                    "sample must be a JSON object, found {}",
                    kind(&other)
                )));
            }
        };
        if !object.contains_key("output_json") {
            let parsed = object
                .get("output_text")
                .and_then(Value::as_str)
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
                .filter(|v| v.is_object() || v.is_array());
            if let Some(parsed) = parsed {
                object.insert("output_json".to_owned(), parsed);
            }
        }
        Ok(Self {
            value: Value::Object(object),
        })
    }

    /// A sample whose only field is `output_text`, handy in tests.
    pub fn from_text(text: impl Into<String>) -> Self {
        let mut object = Map::new();
        object.insert("output_text".to_owned(), Value::String(text.into()));
        Self {
            value: Value::Object(object),
        }
    }

    /// `output_text`, or `None` when absent or not a string.
    pub fn output_text(&self) -> Option<&str> {
        self.value.get("output_text").and_then(Value::as_str)
    }

    /// `output_text`, or an [`GradeError::InvalidInput`] naming it.
    pub fn require_output_text(&self) -> Result<&str, GradeError> {
        self.output_text()
            .ok_or_else(|| GradeError::input("sample has no string `output_text`"))
    }

    /// `output_json`, or `None` when absent or null.
    pub fn output_json(&self) -> Option<&Value> {
        self.value.get("output_json").filter(|v| !v.is_null())
    }

    /// The value at `path` (for example `"output_json.files[0]"`), `None` when absent or when
    /// the path is malformed.
    pub fn get(&self, path: &str) -> Option<&Value> {
        json_path::lookup(&self.value, path).ok().flatten()
    }

    /// The whole sample as JSON.
    pub fn as_json(&self) -> &Value {
        &self.value
    }
}

impl Item {
    /// Parses an item; it must be a JSON object.
    pub fn parse(json: &str) -> Result<Self, GradeError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| GradeError::input(format!("item is not valid JSON: {e}")))?;
        let mut item = Self::from_value(value)?;
        item.big_ints = BigInts::scan(json);
        Ok(item)
    }

    /// Builds an item from a JSON value; it must be an object.
    pub fn from_value(value: Value) -> Result<Self, GradeError> {
        if !value.is_object() {
            return Err(GradeError::input(format!(
                "item must be a JSON object, found {}",
                kind(&value)
            )));
        }
        Ok(Self {
            value,
            big_ints: BigInts::default(),
        })
    }

    /// An item with no fields.
    pub fn empty() -> Self {
        Self {
            value: Value::Object(Map::new()),
            big_ints: BigInts::default(),
        }
    }

    /// The digits of an integer in the item's JSON text that serde_json could only hold as
    /// the `f64` `value` (beyond `i64`/`u64`), so templates render it as Python would.
    pub(crate) fn big_int_digits(&self, value: f64) -> Option<&str> {
        self.big_ints.digits(value)
    }

    /// The value at `path` (for example `"expected_files"` or `"meta.tags[0]"`), `None` when
    /// absent or when the path is malformed.
    pub fn get(&self, path: &str) -> Option<&Value> {
        json_path::lookup(&self.value, path).ok().flatten()
    }

    /// The string at `path`, or `None` when absent or not a string.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    /// Deserializes the value at `path` into `T`; an [`GradeError::InvalidInput`] naming the
    /// path when it is absent or has the wrong shape.
    pub fn get_as<T: DeserializeOwned>(&self, path: &str) -> Result<T, GradeError> {
        let value = self
            .get(path)
            .ok_or_else(|| GradeError::input(format!("item has no `{path}`")))?;
        T::deserialize(value).map_err(|e| GradeError::input(format!("item `{path}`: {e}")))
    }

    /// The whole item as JSON.
    pub fn as_json(&self) -> &Value {
        &self.value
    }
}

/// A JSON type's name for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_json_is_filled_from_json_output_text() {
        let s = Sample::parse(r#"{"output_text": "{\"files\": [\"a.rs\"]}"}"#).unwrap();
        assert_eq!(s.output_json(), Some(&json!({"files": ["a.rs"]})));
        assert_eq!(s.get("output_json.files[0]"), Some(&json!("a.rs")));
    }

    #[test]
    fn explicit_output_json_wins_and_plain_text_gives_none() {
        let s = Sample::parse(r#"{"output_text": "[1]", "output_json": {"x": 1}}"#).unwrap();
        assert_eq!(s.output_json(), Some(&json!({"x": 1})));
        let s = Sample::parse(r#"{"output_text": "hello"}"#).unwrap();
        assert_eq!(s.output_json(), None);
        assert_eq!(s.output_text(), Some("hello"));
    }

    #[test]
    fn bare_string_sample_is_output_text() {
        let s = Sample::parse(r#""just text""#).unwrap();
        assert_eq!(s.output_text(), Some("just text"));
    }

    #[test]
    fn bad_rows_are_invalid_input() {
        assert!(matches!(
            Sample::parse("{"),
            Err(GradeError::InvalidInput(_))
        ));
        assert!(matches!(
            Sample::parse("3"),
            Err(GradeError::InvalidInput(_))
        ));
        assert!(matches!(
            Item::parse("[1]"),
            Err(GradeError::InvalidInput(_))
        ));
        assert!(matches!(
            Item::parse("nope"),
            Err(GradeError::InvalidInput(_))
        ));
        let s = Sample::parse(r#"{"output_text": 5}"#).unwrap();
        assert!(s.require_output_text().is_err());
    }

    #[test]
    fn item_typed_access_names_the_path() {
        let item = Item::parse(r#"{"expected_files": ["a", "b"], "n": 3}"#).unwrap();
        let files: Vec<String> = item.get_as("expected_files").unwrap();
        assert_eq!(files, ["a", "b"]);
        let err = item.get_as::<Vec<String>>("n").unwrap_err();
        assert!(err.to_string().contains("`n`"), "{err}");
        let err = item.get_as::<Vec<String>>("missing").unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
