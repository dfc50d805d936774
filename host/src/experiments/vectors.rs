//! Test access to `vectors.json`: a copy of `shared/reference/ab-testing-vectors.json` (the
//! reference research's fixture: GrowthBook `cases.json` hashing cases and gbstats unit-test
//! numbers at commit 8f1db445, plus derived values), kept byte for byte so a diff shows any
//! drift from the reference.

use std::sync::LazyLock;

use serde_json::{Map, Value};

static VECTORS: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("vectors.json")).expect("vectors.json is valid JSON")
});

/// An array under `hashing`.
pub(crate) fn hashing(key: &str) -> &'static [Value] {
    VECTORS["hashing"][key]
        .as_array()
        .unwrap_or_else(|| panic!("hashing.{key} is not an array"))
}

/// An object under `hashing`.
pub(crate) fn hashing_object(key: &str) -> &'static Map<String, Value> {
    VECTORS["hashing"][key]
        .as_object()
        .unwrap_or_else(|| panic!("hashing.{key} is not an object"))
}

/// The `cases` array of a section.
pub(crate) fn cases(section: &str) -> &'static [Value] {
    VECTORS[section]["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{section}.cases is not an array"))
}

/// An object of a section.
pub(crate) fn object(section: &str, key: &str) -> &'static Map<String, Value> {
    VECTORS[section][key]
        .as_object()
        .unwrap_or_else(|| panic!("{section}.{key} is not an object"))
}
