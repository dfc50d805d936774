//! Shared pieces of the grader tests: the test components built by `tests/build.rs`, one
//! process-wide grader runtime (one engine, as in the service), and loading helpers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use flywheel::graders::cache::CompileCache;
use flywheel::graders::component::{self, GraderSource, LoadError, LoadedGrader};
use flywheel::graders::{GraderRuntime, Outcome, RuntimeOptions};

/// Paths of the components in `tests/components/*`, built for wasm32-wasip2.
pub mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}

/// The runtime shared by every grader test, like the one engine of the service.
pub fn runtime() -> Arc<GraderRuntime> {
    static RUNTIME: OnceLock<Arc<GraderRuntime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            GraderRuntime::new(RuntimeOptions::default()).expect("the grader engine builds")
        })
        .clone()
}

/// A compile cache shared by the tests of this process, so each component compiles once.
pub fn cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
        .join("components")
}

/// Reads a built test component.
pub fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("test component {path} is missing: {e}"))
}

/// Loads bytes as a grader named `name`.
pub async fn load_bytes(name: &str, bytes: Vec<u8>) -> Result<LoadedGrader, LoadError> {
    let runtime = runtime();
    let cache = CompileCache::new(runtime.engine(), Some(cache_dir()));
    component::load(
        &runtime,
        &cache,
        name,
        Arc::new(bytes),
        GraderSource::Builtin,
        1,
    )
    .await
}

/// Loads a built test component.
pub async fn load(name: &str, path: &str) -> Result<LoadedGrader, LoadError> {
    load_bytes(name, bytes(path)).await
}

/// The score of an outcome, or a panic describing it.
pub fn score(outcome: &Outcome) -> f64 {
    outcome
        .score()
        .unwrap_or_else(|| panic!("expected a grade, got {outcome:?}"))
}

/// Writes `bytes` to `dir/name` the way a deployment should: a temp file, then a rename.
pub fn deploy(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write temp file");
    std::fs::rename(&tmp, dir.join(name)).expect("rename into place");
}

/// Polls `check` every 20 ms until it is true or `limit` passes; returns the time it took.
pub async fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check().then(|| start.elapsed())
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
