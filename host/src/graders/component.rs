//! Loading one grader component: from bytes to a pre-instantiated, described [`LoadedGrader`].
//!
//! Checks, in order, each with its own error: the size cap (before anything is parsed); a
//! component, not a core module or random bytes; compiling (or the compile cache); the
//! contract version read from the `flywheel:grader/grading@X.Y.Z` export name; every import
//! on the allow-list, refused by name otherwise; linking (`InstancePre`); `info()`.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::graders::bindings::ModelGraderPre;
use crate::graders::cache::CompileCache;
use crate::graders::engine::GraderRuntime;
use crate::graders::host::HostState;
use crate::graders::llm::LlmRun;
use crate::graders::outcome::Outcome;

/// The contract version this host implements: `flywheel:grader@0.1.0`. Components built for
/// any `0.1.x` are accepted.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The package of the contract, in export and import names.
const CONTRACT_PACKAGE: &str = "flywheel:grader";

/// Interfaces a component may import: what a Rust `std` guest needs (none of which grants
/// access to anything: see `engine::build_linker`) and the contract's own interfaces.
const ALLOWED_IMPORTS: &[&str] = &[
    "wasi:io/poll",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "flywheel:grader/types",
    "flywheel:grader/llm",
];

/// Which world of the contract a component was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// A pure grader: no capability.
    Grader,
    /// A grader that imports the host's `llm` interface.
    ModelGrader,
}

/// Where a grader came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub enum GraderSource {
    /// Embedded in the binary.
    Builtin,
    /// A file in the graders directory.
    File(PathBuf),
}

/// A grader ready to run: compiled, checked, pre-linked and described. Callers hold an
/// `Arc<LoadedGrader>` for a whole call or run, so a reload never changes a call in flight.
pub struct LoadedGrader {
    /// Its name (the file stem, or the built-in's name).
    pub name: String,
    /// The contract version it was built for, such as `0.1.0`.
    pub contract_version: String,
    /// Its world.
    pub world: World,
    /// sha256 of the `.wasm`, hex.
    pub sha256: String,
    /// What `info()` said about the SDK it was built with.
    pub sdk_version: String,
    /// What `info()` said it measures.
    pub description: String,
    /// Increases by one each time the registry loads a new version of any grader.
    pub generation: u64,
    /// Where it came from.
    pub source: GraderSource,
    /// Rows per `grade-batch` call, from the instantiation cost measured at load.
    pub batch_rows: usize,
    pub(crate) pre: ModelGraderPre<HostState>,
}

impl std::fmt::Debug for LoadedGrader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedGrader")
            .field("name", &self.name)
            .field("contract_version", &self.contract_version)
            .field("world", &self.world)
            .field("sha256", &self.sha256)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl LoadedGrader {
    /// Grades one row in a fresh sandbox, in a grading run of its own.
    pub async fn grade(
        &self,
        runtime: &GraderRuntime,
        config: &str,
        sample: &str,
        item: &str,
    ) -> Outcome {
        self.grade_in(runtime, &runtime.new_run(), config, sample, item)
            .await
    }

    /// Grades rows with one config, in a run of their own (see [`LoadedGrader::grade_batch_in`]).
    pub async fn grade_batch(
        &self,
        runtime: &GraderRuntime,
        config: &str,
        rows: &[(String, String)],
    ) -> Vec<Outcome> {
        self.grade_batch_in(runtime, &runtime.new_run(), config, rows)
            .await
    }

    /// Grades one row as part of grading run `run`. A model grader gets a model session of its
    /// own, on the endpoint its config names (`"endpoint"`), spending the run's budget; once the
    /// budget is spent the row reports `budget_exhausted` without being started.
    pub async fn grade_in(
        &self,
        runtime: &GraderRuntime,
        run: &LlmRun,
        config: &str,
        sample: &str,
        item: &str,
    ) -> Outcome {
        if self.world == World::ModelGrader && run.budget().is_exhausted() {
            return Outcome::budget_exhausted();
        }
        let endpoint = match self.world {
            World::ModelGrader => endpoint_of(config),
            World::Grader => None,
        };
        runtime
            .grade_with(&self.pre, run, endpoint, config, sample, item)
            .await
    }

    /// Grades rows with one config as part of grading run `run`. A pure grader grades them in
    /// one fresh sandbox (`grade-batch`); a model grader grades each row in a sandbox and model
    /// session of its own, up to the runtime's concurrency at once (the model client's own limit
    /// applies to the calls), so every row's usage is exact and model latency overlaps.
    pub async fn grade_batch_in(
        &self,
        runtime: &GraderRuntime,
        run: &LlmRun,
        config: &str,
        rows: &[(String, String)],
    ) -> Vec<Outcome> {
        match self.world {
            World::Grader => runtime.grade_batch(&self.pre, config, rows).await,
            World::ModelGrader => {
                use futures::StreamExt;
                // By index, so no closure over a borrowed row is held across an await: such a
                // closure makes the future not `Send` for `tokio::spawn` (rustc cannot prove it
                // for every lifetime of the row).
                futures::stream::iter(0..rows.len())
                    .map(|i| self.grade_in(runtime, run, config, &rows[i].0, &rows[i].1))
                    .buffered(runtime.max_concurrency())
                    .collect()
                    .await
            }
        }
    }

    /// Runs the component's own `validate-config`.
    pub async fn validate_config(
        &self,
        runtime: &GraderRuntime,
        config: &str,
    ) -> Result<Result<(), String>, Outcome> {
        runtime.validate_config(&self.pre, config).await
    }
}

/// Why a component was not loaded. Every message names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file is over the size cap.
    #[error("the file is {size} bytes; components may be at most {limit} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        limit: usize,
    },
    /// A core WebAssembly module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// Not WebAssembly at all.
    #[error("this is not a WebAssembly component (bad magic or version header)")]
    NotWasm,
    /// wasmtime could not compile it.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// Built for a contract version this host does not support.
    #[error("built for {CONTRACT_PACKAGE}@{found}; this host supports {supported}")]
    IncompatibleContract {
        /// The version it was built for.
        found: String,
        /// What this host supports, such as `0.1.x`.
        supported: String,
    },
    /// Exports no `flywheel:grader/grading` interface.
    #[error("the component exports another world ({exports}), not {CONTRACT_PACKAGE}/grading")]
    NotAGrader {
        /// What it exports, comma-separated.
        exports: String,
    },
    /// Imports an interface graders are not offered.
    #[error(
        "the component imports `{import}`, which graders are not offered (a grader may import only WASI io, clocks, random and cli, and {CONTRACT_PACKAGE}/llm)"
    )]
    ForbiddenImport {
        /// The import's full name.
        import: String,
    },
    /// Linking failed (a type mismatch on an allowed interface).
    #[error("the component does not link: {0}")]
    Link(String),
    /// `info()` trapped or timed out.
    #[error("info() failed: {0}")]
    Info(String),
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(String),
    /// The compile task was lost.
    #[error("the compile task failed: {0}")]
    Task(String),
}

/// The `endpoint` a model grader's config names, if any.
fn endpoint_of(config: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(config)
        .ok()?
        .get("endpoint")?
        .as_str()
        .map(str::to_string)
}

/// The sha256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What `inspect` learnt from a compiled component.
struct Inspected {
    contract_version: String,
    world: World,
}

/// Loads a component: checks, compiles (off the async runtime), links and calls `info()`.
pub async fn load(
    runtime: &Arc<GraderRuntime>,
    cache: &CompileCache,
    name: &str,
    bytes: Arc<Vec<u8>>,
    source: GraderSource,
    generation: u64,
) -> Result<LoadedGrader, LoadError> {
    let limit = runtime.limits().max_component_bytes;
    if bytes.len() > limit {
        return Err(LoadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    if !wasmparser::Parser::is_component(&bytes) {
        return Err(if wasmparser::Parser::is_core_wasm(&bytes) {
            LoadError::CoreModule
        } else {
            LoadError::NotWasm
        });
    }
    let sha256 = sha256_hex(&bytes);
    let component = match runtime.compiled(&sha256) {
        Some(component) => {
            let cache = cache.clone();
            let stored = component.clone();
            let key = sha256.clone();
            tokio::task::spawn_blocking(move || cache.ensure_stored(&stored, &key))
                .await
                .map_err(|e| LoadError::Task(e.to_string()))?;
            component
        }
        None => {
            let task_runtime = runtime.clone();
            let cache = cache.clone();
            let key = sha256.clone();
            let component = tokio::task::spawn_blocking(move || {
                cache.load_or_compile(task_runtime.engine(), &bytes, &key)
            })
            .await
            .map_err(|e| LoadError::Task(e.to_string()))?
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
            runtime.remember_compiled(&sha256, &component);
            component
        }
    };
    let inspected = inspect(runtime, &component)?;
    let instance_pre = runtime
        .linker()
        .instantiate_pre(&component)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
    let pre = ModelGraderPre::new(instance_pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
    let started = std::time::Instant::now();
    let info = runtime
        .info(&pre)
        .await
        .map_err(|outcome| LoadError::Info(describe(&outcome)))?;
    // A fresh store + instance + one call: what every batch pays before its first row.
    let instantiation = started.elapsed();
    Ok(LoadedGrader {
        name: name.to_string(),
        contract_version: inspected.contract_version,
        world: inspected.world,
        sha256,
        sdk_version: info.sdk_version,
        description: info.description,
        generation,
        source,
        batch_rows: batch_rows_for(instantiation),
        pre,
    })
}

/// Fewest rows sent to one `grade-batch` call.
pub const MIN_BATCH_ROWS: usize = 100;
/// Most rows sent to one `grade-batch` call: bounds what one trapped batch costs to regrade row
/// by row, and what a batch holds against the call's wall-time limit.
pub const MAX_BATCH_ROWS: usize = 1000;
/// Share of a row's cost that instantiation may add when spread over a batch.
const INSTANTIATION_PER_ROW: std::time::Duration = std::time::Duration::from_micros(2);

/// Rows per batch for a component whose fresh instance costs `instantiation`: enough rows that
/// instantiation adds about 2 µs to each (the small Rust graders: the minimum; the ~20 MB
/// Python interpreter, ~1.8 ms to instantiate: the maximum).
fn batch_rows_for(instantiation: std::time::Duration) -> usize {
    let rows = instantiation.as_nanos() / INSTANTIATION_PER_ROW.as_nanos();
    usize::try_from(rows)
        .unwrap_or(MAX_BATCH_ROWS)
        .clamp(MIN_BATCH_ROWS, MAX_BATCH_ROWS)
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Trap { kind, message, .. } => format!("{}: {message}", kind.name()),
        Outcome::Refused { message } => message.clone(),
        other => other.kind_name().to_string(),
    }
}

/// Reads the contract version from the exports and checks every import.
fn inspect(runtime: &GraderRuntime, component: &Component) -> Result<Inspected, LoadError> {
    let engine = runtime.engine();
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let grading_prefix = format!("{CONTRACT_PACKAGE}/grading");
    let Some(grading) = exports.iter().find(|e| e.starts_with(&grading_prefix)) else {
        return Err(LoadError::NotAGrader {
            exports: if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            },
        });
    };
    let found = grading
        .split_once('@')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    if !compatible(&found) {
        return Err(LoadError::IncompatibleContract {
            found: if found.is_empty() {
                "an unversioned contract".into()
            } else {
                found
            },
            supported: supported_range(),
        });
    }
    let mut world = World::Grader;
    for (import, _) in ty.imports(engine) {
        let (interface, version) = import.split_once('@').unwrap_or((import, ""));
        if !ALLOWED_IMPORTS.contains(&interface) {
            return Err(LoadError::ForbiddenImport {
                import: import.to_string(),
            });
        }
        if interface.starts_with(CONTRACT_PACKAGE) && !compatible(version) {
            return Err(LoadError::IncompatibleContract {
                found: version.to_string(),
                supported: supported_range(),
            });
        }
        if interface == "flywheel:grader/llm" {
            world = World::ModelGrader;
        }
    }
    Ok(Inspected {
        contract_version: found,
        world,
    })
}

fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() {
        return None;
    }
    Some(version)
}

/// Semver compatibility with [`CONTRACT_VERSION`]: same major, and for `0.x` the same minor.
pub fn compatible(version: &str) -> bool {
    let (Some(found), Some(ours)) = (parse_version(version), parse_version(CONTRACT_VERSION))
    else {
        return false;
    };
    if ours.0 == 0 {
        found.0 == 0 && found.1 == ours.1
    } else {
        found.0 == ours.0
    }
}

/// The versions this host accepts, such as `0.1.x`.
pub fn supported_range() -> String {
    match parse_version(CONTRACT_VERSION) {
        Some((0, minor, _)) => format!("0.{minor}.x"),
        Some((major, _, _)) => format!("{major}.x"),
        None => CONTRACT_VERSION.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_grows_with_instantiation_cost() {
        use std::time::Duration;
        assert_eq!(batch_rows_for(Duration::from_micros(15)), MIN_BATCH_ROWS);
        assert_eq!(batch_rows_for(Duration::from_micros(1_000)), 500);
        assert_eq!(batch_rows_for(Duration::from_millis(50)), MAX_BATCH_ROWS);
        assert_eq!(batch_rows_for(Duration::ZERO), MIN_BATCH_ROWS);
    }

    #[test]
    fn contract_versions_follow_semver_for_zero_majors() {
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("1.1.0"));
        assert!(!compatible("0.1"));
        assert!(!compatible(""));
        assert!(!compatible("x.y.z"));
        assert_eq!(supported_range(), "0.1.x");
    }

    #[test]
    fn the_contract_version_is_the_wit_package_version() {
        // The grader SDK checks its own CONTRACT_VERSION against the same file, so host, SDK
        // and WIT cannot disagree.
        let wit = include_str!("../../../wit/grader.wit");
        let package = format!("package {CONTRACT_PACKAGE}@{CONTRACT_VERSION};");
        assert!(
            wit.lines().any(|line| line.trim() == package),
            "wit/grader.wit does not declare `{package}`"
        );
    }

    #[test]
    fn the_incompatible_message_names_both_versions() {
        let e = LoadError::IncompatibleContract {
            found: "0.2.0".into(),
            supported: supported_range(),
        };
        assert_eq!(
            e.to_string(),
            "built for flywheel:grader@0.2.0; this host supports 0.1.x"
        );
    }
}
