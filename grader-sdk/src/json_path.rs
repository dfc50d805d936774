//! Path lookup in JSON values: `a.b[0].c`, the "JSON path like syntax" of OpenAI's templates.
//!
//! A path is keys separated by `.`, each optionally followed by `[index]` for arrays. Keys that
//! contain `.` or `[` cannot be addressed; OpenAI documents no escape for them either.

use serde_json::Value;

/// A path that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path `{path}`: {reason}")]
pub struct PathError {
    /// The path as written.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One step of a parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Splits a path into segments, or says why it is malformed.
pub fn parse(path: &str) -> Result<Vec<Segment>, PathError> {
    let error = |reason: &str| PathError {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if path.trim().is_empty() {
        return Err(error("the path is empty"));
    }
    let mut segments = Vec::new();
    for (i, part) in path.split('.').enumerate() {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if key.is_empty() && (i > 0 || rest.is_empty()) {
            return Err(error("a key is empty"));
        }
        if key.contains(']') {
            return Err(error("`]` without `[`"));
        }
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_owned()));
        }
        while !rest.is_empty() {
            let Some(close) = rest.find(']') else {
                return Err(error("`[` without `]`"));
            };
            let index = rest[1..close]
                .trim()
                .parse::<usize>()
                .map_err(|_| error("an index is not a non-negative integer"))?;
            segments.push(Segment::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(error("text after `]`"));
            }
        }
    }
    Ok(segments)
}

/// Follows parsed segments from `root`; `None` when a key or index is absent or the value on
/// the way has the wrong shape.
pub fn follow<'a>(root: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
    segments
        .iter()
        .try_fold(root, |value, segment| match segment {
            Segment::Key(key) => value.as_object()?.get(key),
            Segment::Index(index) => value.as_array()?.get(*index),
        })
}

/// Looks `path` up in `root`: `Ok(None)` when absent, an error when the path is malformed.
pub fn lookup<'a>(root: &'a Value, path: &str) -> Result<Option<&'a Value>, PathError> {
    Ok(follow(root, &parse(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_and_indexes_resolve() {
        let v = json!({"a": {"b": [{"c": 1}, {"c": [5, 6]}]}});
        assert_eq!(lookup(&v, "a.b[0].c").unwrap(), Some(&json!(1)));
        assert_eq!(lookup(&v, "a.b[1].c[1]").unwrap(), Some(&json!(6)));
        assert_eq!(lookup(&v, "a").unwrap(), Some(&v["a"]));
    }

    #[test]
    fn absent_keys_and_wrong_shapes_are_none() {
        let v = json!({"a": {"b": [1]}});
        assert_eq!(lookup(&v, "a.x").unwrap(), None);
        assert_eq!(lookup(&v, "a.b[3]").unwrap(), None);
        assert_eq!(lookup(&v, "a.b.c").unwrap(), None);
        assert_eq!(lookup(&v, "a[0]").unwrap(), None);
    }

    #[test]
    fn leading_index_addresses_a_top_level_array() {
        let v = json!([[1, 2], [3]]);
        assert_eq!(lookup(&v, "[0][1]").unwrap(), Some(&json!(2)));
    }

    #[test]
    fn malformed_paths_are_errors() {
        for bad in [
            "", "a..b", ".a", "a.", "a[", "a[x]", "a[-1]", "a]b", "a[0]b", "  ",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
