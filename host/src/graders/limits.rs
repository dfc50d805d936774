//! Per-call limits applied to every `Store`, and their defaults.
//!
//! The defaults follow what peer hosts publish (reference/peers.md §3): a 2 s wall time like
//! Langfuse, a 64 MiB memory cap (Phoenix and wasmCloud allow 256 MiB, graders need far less), a
//! 1 MiB input cap and a tail-keeping log buffer (Phoenix keeps the tail too).

use std::time::Duration;

/// Wall time one call (or one batch) may take, instantiation included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Linear memory one instance may grow to.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;
/// Bytes of config + sample + item one row may send to a grader.
pub const DEFAULT_MAX_INPUT_BYTES: usize = 1 << 20;
/// Bytes of stdout/stderr kept per call (the tail; older bytes are counted and dropped).
pub const DEFAULT_LOG_BYTES: usize = 16 << 10;
/// Longest reasoning kept from a grade; longer text is cut.
pub const DEFAULT_MAX_REASONING_BYTES: usize = 16 << 10;
/// Longest label kept from a grade.
pub const DEFAULT_MAX_LABEL_BYTES: usize = 256;
/// Most metrics kept from a grade.
pub const DEFAULT_MAX_METRICS: usize = 64;
/// Largest component file accepted; a bigger one is refused before compiling. The built-in
/// Python grader (CPython compiled to a component, with its standard library and bundled
/// packages, sympy and nltk included, as compressed code in its heap snapshot) is about 44 MB,
/// hence 64 MiB.
pub const DEFAULT_MAX_COMPONENT_BYTES: usize = 64 << 20;
/// Bytes one guest→host call may copy (wasmtime's default is 128 MiB).
pub const DEFAULT_HOSTCALL_FUEL: usize = 4 << 20;
/// Resource handles one instance may hold.
pub const DEFAULT_MAX_HANDLES: usize = 1_000;
/// Bytes of randomness one `get-random-bytes` call may ask for.
pub const DEFAULT_MAX_RANDOM_BYTES: u64 = 4 << 10;

/// The limits of every grader call.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall time per call or batch (epoch deadline and an outer `tokio` timeout).
    pub timeout: Duration,
    /// Linear memory per instance.
    pub memory_bytes: usize,
    /// Bytes of config + sample + item per row.
    pub max_input_bytes: usize,
    /// Bytes of log tail kept.
    pub log_bytes: usize,
    /// Longest reasoning kept.
    pub max_reasoning_bytes: usize,
    /// Longest label kept.
    pub max_label_bytes: usize,
    /// Most metrics kept.
    pub max_metrics: usize,
    /// Largest component file.
    pub max_component_bytes: usize,
    /// Bytes per guest→host call.
    pub hostcall_fuel: usize,
    /// Resource handles per instance.
    pub max_handles: usize,
    /// Bytes per random call.
    pub max_random_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            log_bytes: DEFAULT_LOG_BYTES,
            max_reasoning_bytes: DEFAULT_MAX_REASONING_BYTES,
            max_label_bytes: DEFAULT_MAX_LABEL_BYTES,
            max_metrics: DEFAULT_MAX_METRICS,
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
            hostcall_fuel: DEFAULT_HOSTCALL_FUEL,
            max_handles: DEFAULT_MAX_HANDLES,
            max_random_bytes: DEFAULT_MAX_RANDOM_BYTES,
        }
    }
}
