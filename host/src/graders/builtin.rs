//! The built-in graders (`graders/*`: string-check, text-similarity, files-match, diff-valid),
//! compiled to components by `host/build.rs` and embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/builtin_graders.rs"));

/// The built-ins as the registry takes them.
pub fn builtins() -> Vec<(String, Vec<u8>)> {
    BUILTIN_GRADERS
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect()
}
