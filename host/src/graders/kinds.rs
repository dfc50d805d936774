//! The definition types this host understands and the built-in component that runs each: read
//! by definition parsing (to name the known types in an error) and by the registry's listing (to
//! say which types can run now). Kept apart so neither of those two modules imports the other.

/// Every definition `type` this host knows, and the built-in component that runs it.
pub const KINDS: &[(&str, Option<&str>)] = &[
    ("string_check", Some("string-check")),
    ("text_similarity", Some("text-similarity")),
    ("multi", None),
    ("wasm", None),
    ("score_model", Some("score-model")),
    ("label_model", Some("label-model")),
    ("python", Some("python")),
];
