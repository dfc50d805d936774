//! What the Python build steps share: their error ([`PythonUnavailable`]), running a command with
//! its failure's tail in the error, and a hash that is stable across Rust versions.

use std::process::Command;

/// Why the Python grader was not built. The text says what is missing and how to fix it.
#[derive(Debug, Clone)]
pub struct PythonUnavailable(pub String);

impl std::fmt::Display for PythonUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the python grader is unavailable: {}", self.0)
    }
}

impl std::error::Error for PythonUnavailable {}

/// Runs `cmd`; a failure carries the last lines of its stderr.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<(), PythonUnavailable> {
    let output = cmd
        .output()
        .map_err(|e| PythonUnavailable(format!("cannot run {what}: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = stderr
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    Err(PythonUnavailable(format!(
        "{what} failed ({}):\n{tail}",
        output.status
    )))
}

/// FNV-1a of `bytes` (stable across Rust versions, unlike `DefaultHasher`).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = Fnv1a::new();
    hash.feed(bytes);
    hash.0
}

pub(crate) struct Fnv1a(pub(crate) u64);

impl Fnv1a {
    pub(crate) fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
