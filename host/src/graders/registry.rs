//! The registry of loaded graders: the built-ins plus every `*.wasm` of the graders directory
//! (`FLYWHEEL_GRADERS_DIR`), watched and swapped atomically.
//!
//! Watch → debounce (~200 ms, `notify-debouncer-full`) → one loader task that rescans the
//! directory: files are hashed, so an unchanged file costs a read and a hash; a new or changed
//! file is compiled off the async runtime and replaces the old version only once it loaded
//! (a broken file is reported and the previous version keeps serving); a deleted file is
//! unloaded. The map is published through `ArcSwap`: callers take an `Arc<LoadedGrader>` and
//! finish on it whatever happens to the directory meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::graders::cache::CompileCache;
use crate::graders::component::{self, GraderSource, LoadError, LoadedGrader, World};
use crate::graders::engine::GraderRuntime;
use crate::log_text::Untrusted;

/// How long the watcher waits for a burst of file events to settle.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// A built-in component: (name, bytes).
pub type BuiltinBytes = (String, Vec<u8>);

/// What the registry loads.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// The graders directory, watched when present.
    pub graders_dir: Option<PathBuf>,
    /// Where compiled components are cached (`<data-dir>/cache/components`).
    pub cache_dir: Option<PathBuf>,
    /// Built-in components: (name, bytes).
    pub builtins: Vec<BuiltinBytes>,
    /// Watch the directory for changes (off for one-shot commands).
    pub watch: bool,
}

/// A failed load, kept for the listing.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFailure {
    /// The file.
    pub path: PathBuf,
    /// sha256 of the bytes that failed (so they are not retried until they change).
    pub sha256: String,
    /// Why.
    pub error: String,
}

#[derive(Default)]
struct Snapshot {
    graders: HashMap<String, Arc<LoadedGrader>>,
    failures: BTreeMap<String, LoadFailure>,
}

/// The built-ins, loaded once (before the first rescan).
#[derive(Default, Clone)]
struct Builtins {
    graders: HashMap<String, Arc<LoadedGrader>>,
    failures: BTreeMap<String, LoadFailure>,
}

/// The loaded graders, swapped atomically on every change of the directory.
pub struct Registry {
    runtime: Arc<GraderRuntime>,
    cache: CompileCache,
    graders_dir: Option<PathBuf>,
    builtins: ArcSwap<Builtins>,
    snapshot: ArcSwap<Snapshot>,
    generation: AtomicU64,
    /// Set once every built-in has been tried (loaded or failed): before that, a component
    /// missing from the listing may only be still compiling.
    builtins_done: std::sync::atomic::AtomicBool,
    rescan_lock: tokio::sync::Mutex<()>,
    watcher: Mutex<
        Option<
            notify_debouncer_full::Debouncer<
                notify::RecommendedWatcher,
                notify_debouncer_full::RecommendedCache,
            >,
        >,
    >,
}

/// One component as `GET /api/graders` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentListing {
    /// Its name.
    pub name: String,
    /// The contract version it was built for (absent when it never loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_version: Option<String>,
    /// Its world.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<World>,
    /// sha256 of the serving version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The generation it was loaded in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// `builtin` or `file`.
    pub source: String,
    /// What `info()` said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The SDK version from `info()`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    /// Why the newest file did not load (the previous version, if any, keeps serving).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
}

/// The listing of `GET /api/graders` and `flywheel graders list`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraderListing {
    /// Components, sorted by name.
    pub components: Vec<ComponentListing>,
    /// The OpenAI grader types this host understands and the component each maps to.
    pub definitions: Vec<DefinitionKind>,
    /// Whether every built-in component has been loaded (or has failed to): until then a
    /// definition naming a built-in may be answered `503 unavailable`.
    pub builtins_loaded: bool,
}

/// One definition type and what runs it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionKind {
    /// The `type` field, such as `string_check`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The component that runs it, when it maps to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<&'static str>,
    /// Whether it can run on this host now.
    pub available: bool,
}

impl Registry {
    /// Loads the built-ins and the directory, then (when asked) starts watching it. Must be
    /// called inside a tokio runtime.
    pub async fn start(runtime: Arc<GraderRuntime>, options: RegistryOptions) -> Arc<Registry> {
        let (registry, builtins, watch) = Registry::empty(runtime, options);
        registry.load(builtins, watch).await;
        registry
    }

    /// Like [`Registry::start`], but returns at once and loads in a background task (the
    /// listing fills in as graders load). For building the service synchronously. Must be
    /// called inside a tokio runtime.
    pub fn spawn(runtime: Arc<GraderRuntime>, options: RegistryOptions) -> Arc<Registry> {
        let (registry, builtins, watch) = Registry::empty(runtime, options);
        let loading = registry.clone();
        tokio::spawn(async move { loading.load(builtins, watch).await });
        registry
    }

    fn empty(
        runtime: Arc<GraderRuntime>,
        options: RegistryOptions,
    ) -> (Arc<Registry>, Vec<BuiltinBytes>, bool) {
        let cache = CompileCache::new(runtime.engine(), options.cache_dir.clone());
        let registry = Arc::new(Registry {
            runtime,
            cache,
            graders_dir: options.graders_dir,
            builtins: ArcSwap::from_pointee(Builtins::default()),
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            generation: AtomicU64::new(0),
            builtins_done: std::sync::atomic::AtomicBool::new(false),
            rescan_lock: tokio::sync::Mutex::new(()),
            watcher: Mutex::new(None),
        });
        (registry, options.builtins, options.watch)
    }

    async fn load(self: &Arc<Self>, mut builtins: Vec<BuiltinBytes>, watch: bool) {
        // Smallest first, each published as soon as it is ready: the string checks are live in
        // milliseconds while the ~20 MB Python interpreter still compiles (seconds, once per
        // compile cache).
        builtins.sort_by_key(|(_, bytes)| bytes.len());
        // The directory exists from the start, so operators can deploy into it while the
        // built-ins still compile; it is scanned once they are loaded.
        if let Some(dir) = &self.graders_dir
            && let Err(error) = std::fs::create_dir_all(dir)
        {
            tracing::warn!(dir = %dir.display(), %error, "cannot create the graders directory");
        }
        let mut loaded = Builtins::default();
        for (name, bytes) in builtins {
            let sha256 = component::sha256_hex(&bytes);
            let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
            match component::load(
                &self.runtime,
                &self.cache,
                &name,
                Arc::new(bytes),
                GraderSource::Builtin,
                generation,
            )
            .await
            {
                Ok(grader) => {
                    loaded.graders.insert(name, Arc::new(grader));
                }
                Err(error) => {
                    tracing::error!(grader = %name, error = %Untrusted(&error), "built-in grader failed to load");
                    loaded.failures.insert(
                        name.clone(),
                        LoadFailure {
                            path: PathBuf::from(format!("builtin:{name}")),
                            sha256,
                            error: error.to_string(),
                        },
                    );
                }
            }
            self.builtins.store(Arc::new(loaded.clone()));
        }
        self.builtins_done.store(true, Ordering::SeqCst);
        // Watch before the first scan, so a file written in between is seen by one or the other.
        if watch {
            self.watch();
        }
        self.rescan().await;
    }

    /// Whether every built-in has been loaded (or has failed to): until then a built-in
    /// component missing from the listing may still be compiling.
    pub fn builtins_loaded(&self) -> bool {
        self.builtins_done.load(Ordering::SeqCst)
    }

    /// The runtime graders run in.
    pub fn runtime(&self) -> &Arc<GraderRuntime> {
        &self.runtime
    }

    /// The serving version of a grader: a file in the directory wins over a built-in of the
    /// same name.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedGrader>> {
        self.snapshot
            .load()
            .graders
            .get(name)
            .cloned()
            .or_else(|| self.builtins.load().graders.get(name).cloned())
    }

    /// Why the newest file of this name did not load, if it did not.
    pub fn load_error(&self, name: &str) -> Option<String> {
        let snapshot = self.snapshot.load();
        let builtins = self.builtins.load();
        snapshot
            .failures
            .get(name)
            .or_else(|| builtins.failures.get(name))
            .map(|f| f.error.clone())
    }

    /// Every component and definition type, for `GET /api/graders`.
    pub fn list(&self) -> GraderListing {
        let snapshot = self.snapshot.load();
        let builtins = self.builtins.load();
        let mut names: Vec<&String> = snapshot
            .graders
            .keys()
            .chain(snapshot.failures.keys())
            .chain(builtins.graders.keys())
            .chain(builtins.failures.keys())
            .collect();
        names.sort();
        names.dedup();
        let components = names
            .into_iter()
            .map(|name| {
                let serving = snapshot
                    .graders
                    .get(name)
                    .or_else(|| builtins.graders.get(name));
                let failure = snapshot
                    .failures
                    .get(name)
                    .or_else(|| builtins.failures.get(name));
                let from_file =
                    snapshot.graders.contains_key(name) || snapshot.failures.contains_key(name);
                ComponentListing {
                    name: name.clone(),
                    contract_version: serving.map(|g| g.contract_version.clone()),
                    world: serving.map(|g| g.world),
                    sha256: serving.map(|g| g.sha256.clone()),
                    generation: serving.map(|g| g.generation),
                    source: if from_file {
                        "file".into()
                    } else {
                        "builtin".into()
                    },
                    description: serving.map(|g| g.description.clone()),
                    sdk_version: serving.map(|g| g.sdk_version.clone()),
                    load_error: failure.map(|f| f.error.clone()),
                }
            })
            .collect();
        let definitions = crate::graders::kinds::KINDS
            .iter()
            .map(|(kind, component)| DefinitionKind {
                kind,
                component: *component,
                available: component.is_some_and(|c| self.get(c).is_some()),
            })
            .collect();
        GraderListing {
            components,
            definitions,
            builtins_loaded: self.builtins_loaded(),
        }
    }

    /// Rereads the directory and publishes what changed. Safe to call at any time; rescans
    /// run one at a time.
    pub async fn rescan(&self) {
        let _one_at_a_time = self.rescan_lock.lock().await;
        let Some(dir) = self.graders_dir.clone() else {
            return;
        };
        let current = self.snapshot.load_full();
        let files = match wasm_files(&dir) {
            Ok(files) => files,
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot read the graders directory");
                return;
            }
        };
        let mut next = Snapshot::default();
        let limit = self.runtime.limits().max_component_bytes;
        for (name, path) in files {
            let bytes = match read_capped(&path, limit) {
                Ok(bytes) => bytes,
                Err(error) => {
                    self.record_failure(&mut next, &current, &name, &path, String::new(), error);
                    continue;
                }
            };
            let sha256 = component::sha256_hex(&bytes);
            if let Some(serving) = current.graders.get(&name).filter(|g| g.sha256 == sha256) {
                next.graders.insert(name, serving.clone());
                continue;
            }
            if let Some(failed) = current.failures.get(&name).filter(|f| f.sha256 == sha256) {
                next.failures.insert(name.clone(), failed.clone());
                if let Some(previous) = current.graders.get(&name) {
                    next.graders.insert(name, previous.clone());
                }
                continue;
            }
            let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
            let source = GraderSource::File(path.clone());
            match component::load(
                &self.runtime,
                &self.cache,
                &name,
                Arc::new(bytes),
                source,
                generation,
            )
            .await
            {
                Ok(loaded) => {
                    tracing::info!(grader = %Untrusted(&name), sha256 = %loaded.sha256, generation, "grader loaded");
                    next.graders.insert(name, Arc::new(loaded));
                }
                Err(error) => self.record_failure(&mut next, &current, &name, &path, sha256, error),
            }
        }
        for name in current.graders.keys() {
            if !next.graders.contains_key(name) && !next.failures.contains_key(name) {
                tracing::info!(grader = %Untrusted(name), "grader file removed; unloaded");
            }
        }
        self.snapshot.store(Arc::new(next));
    }

    fn record_failure(
        &self,
        next: &mut Snapshot,
        current: &Snapshot,
        name: &str,
        path: &Path,
        sha256: String,
        error: LoadError,
    ) {
        tracing::error!(
            grader = %Untrusted(name),
            path = %Untrusted(path.display()),
            error = %Untrusted(&error),
            "grader failed to load; the previous version, if any, keeps serving"
        );
        next.failures.insert(
            name.to_string(),
            LoadFailure {
                path: path.to_path_buf(),
                sha256,
                error: error.to_string(),
            },
        );
        if let Some(previous) = current.graders.get(name) {
            next.graders.insert(name.to_string(), previous.clone());
        }
    }

    /// Starts the watcher: debounced events wake one loader task, which rescans.
    fn watch(self: &Arc<Self>) {
        let Some(dir) = self.graders_dir.clone() else {
            return;
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let debouncer = notify_debouncer_full::new_debouncer(
            WATCH_DEBOUNCE,
            None,
            move |result: notify_debouncer_full::DebounceEventResult| {
                if result.is_ok() {
                    // A full channel already holds a wake-up; one rescan sees every change.
                    let _ = tx.try_send(());
                }
            },
        );
        let mut debouncer = match debouncer {
            Ok(debouncer) => debouncer,
            Err(error) => {
                tracing::error!(%error, "cannot watch the graders directory; changes need a restart");
                return;
            }
        };
        if let Err(error) = debouncer.watch(&dir, notify::RecursiveMode::NonRecursive) {
            tracing::error!(dir = %dir.display(), %error, "cannot watch the graders directory; changes need a restart");
            return;
        }
        *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(debouncer);
        let weak: Weak<Registry> = Arc::downgrade(self);
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                let Some(registry) = weak.upgrade() else {
                    break;
                };
                registry.rescan().await;
            }
        });
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Stops the watcher thread, which ends the loader task.
        if let Ok(mut watcher) = self.watcher.lock() {
            watcher.take();
        }
    }
}

/// `(name, path)` of every `*.wasm` regular file directly in `dir`; dotfiles are skipped
/// (editors and `write temp + rename` deployments use them for partial files).
fn wasm_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file_name.starts_with('.') || !path.is_file() {
            continue;
        }
        let Some(stem) = file_name.strip_suffix(".wasm") else {
            continue;
        };
        if stem.is_empty() {
            continue;
        }
        files.push((stem.to_string(), path));
    }
    files.sort();
    Ok(files)
}

/// Reads a file, refusing it (before reading) when it is over `limit` bytes.
fn read_capped(path: &Path, limit: usize) -> Result<Vec<u8>, LoadError> {
    let size = std::fs::metadata(path)
        .map_err(|e| LoadError::Io(e.to_string()))?
        .len();
    if size > limit as u64 {
        return Err(LoadError::TooLarge { size, limit });
    }
    std::fs::read(path).map_err(|e| LoadError::Io(e.to_string()))
}
