//! The registry of loaded graders: the built-ins plus every `*.wasm` of the graders directory
//! (`FLYWHEEL_GRADERS_DIR`), watched and swapped atomically.
//!
//! Watch → debounce (~200 ms, `notify-debouncer-full`) → one task that rescans the directory:
//! files are hashed, so an unchanged file costs a read and a hash; each new or changed file is
//! loaded by a task of its own (compiled off the async runtime, `info()` on the guest threads),
//! so a slow or broken file never delays another, and is published the moment it is ready: it
//! replaces the old version only once it loaded (a broken file is reported and the previous
//! version keeps serving), and only if no newer version of the file was seen meanwhile; a
//! deleted file is unloaded. The directory is scanned at start without waiting for the
//! built-ins to compile. The map is published through `ArcSwap`: callers take an
//! `Arc<LoadedGrader>` and finish on it whatever happens to the directory meanwhile.

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

#[derive(Default, Clone)]
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
    /// The sha256 each file name is being loaded for (the newest version a scan saw): a load
    /// that ends after its file changed again, or was deleted, is dropped. Held while the
    /// snapshot is read, changed and stored, so two publishers never lose each other's change.
    loading: Mutex<HashMap<String, String>>,
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
            loading: Mutex::new(HashMap::new()),
            watcher: Mutex::new(None),
        });
        (registry, options.builtins, options.watch)
    }

    async fn load(self: &Arc<Self>, builtins: Vec<BuiltinBytes>, watch: bool) {
        // The directory exists from the start, so operators can deploy into it while the
        // built-ins still compile.
        if let Some(dir) = &self.graders_dir
            && let Err(error) = std::fs::create_dir_all(dir)
        {
            tracing::warn!(dir = %dir.display(), %error, "cannot create the graders directory");
        }
        // Watch before the first scan, so a file written in between is seen by one or the other.
        if watch {
            self.watch();
        }
        // The directory's files load in tasks of their own while the built-ins compile here: a
        // file dropped at first start does not wait for the ~20 MB Python interpreter.
        let files = self.scan().await;
        self.load_builtins(builtins).await;
        for load in files {
            // A load task ends by publishing; a panic in one is logged by tokio and lost only
            // for its own file.
            let _ = load.await;
        }
    }

    async fn load_builtins(&self, mut builtins: Vec<BuiltinBytes>) {
        // Smallest first, each published as soon as it is ready: the string checks are live in
        // milliseconds while the ~20 MB Python interpreter still compiles (seconds, once per
        // compile cache).
        builtins.sort_by_key(|(_, bytes)| bytes.len());
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

    /// Rereads the directory and publishes what changed, once every file it found new or
    /// changed has loaded (or failed to). Safe to call at any time.
    pub async fn rescan(self: &Arc<Self>) {
        for load in self.scan().await {
            let _ = load.await;
        }
    }

    /// Rereads the directory: unloads deleted files at once, and starts a load task for each
    /// new or changed file (one not already loading at the same bytes), returned so a caller
    /// may wait for them. Scans run one at a time; loads do not hold the scan.
    async fn scan(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let _one_at_a_time = self.rescan_lock.lock().await;
        let Some(dir) = self.graders_dir.clone() else {
            return Vec::new();
        };
        let files = match wasm_files(&dir) {
            Ok(files) => files,
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot read the graders directory");
                return Vec::new();
            }
        };
        let limit = self.runtime.limits().max_component_bytes;
        let read: Vec<(String, PathBuf, Result<Vec<u8>, LoadError>)> = files
            .into_iter()
            .map(|(name, path)| {
                let bytes = read_capped(&path, limit);
                (name, path, bytes)
            })
            .collect();
        let mut loads = Vec::new();
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot.load_full();
        let mut next = Snapshot::clone(&current);
        let present: std::collections::HashSet<&str> =
            read.iter().map(|(name, _, _)| name.as_str()).collect();
        // Deleted files: unloaded now, and a load still running for one is dropped when it ends.
        for name in current.graders.keys() {
            if !present.contains(name.as_str()) {
                tracing::info!(grader = %Untrusted(name), "grader file removed; unloaded");
            }
        }
        next.graders
            .retain(|name, _| present.contains(name.as_str()));
        next.failures
            .retain(|name, _| present.contains(name.as_str()));
        loading.retain(|name, _| present.contains(name.as_str()));
        for (name, path, bytes) in read {
            let bytes = match bytes {
                Ok(bytes) => bytes,
                Err(error) => {
                    loading.remove(&name);
                    record_failure(&mut next, &name, &path, String::new(), error);
                    continue;
                }
            };
            let sha256 = component::sha256_hex(&bytes);
            if next.graders.get(&name).is_some_and(|g| g.sha256 == sha256) {
                // Back to the serving bytes: a failure or a load of other bytes is moot.
                next.failures.remove(&name);
                loading.remove(&name);
                continue;
            }
            if next.failures.get(&name).is_some_and(|f| f.sha256 == sha256) {
                loading.remove(&name);
                continue;
            }
            if loading.get(&name) == Some(&sha256) {
                continue;
            }
            loading.insert(name.clone(), sha256.clone());
            let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
            loads.push(self.spawn_load(name, path, bytes, sha256, generation));
        }
        self.snapshot.store(Arc::new(next));
        loads
    }

    /// Loads one file in a task of its own and publishes the result if the file still holds
    /// these bytes when it ends.
    fn spawn_load(
        self: &Arc<Self>,
        name: String,
        path: PathBuf,
        bytes: Vec<u8>,
        sha256: String,
        generation: u64,
    ) -> tokio::task::JoinHandle<()> {
        let runtime = self.runtime.clone();
        let cache = self.cache.clone();
        // Weak: a registry dropped meanwhile (its watcher stopped) publishes nothing.
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            let source = GraderSource::File(path.clone());
            let loaded =
                component::load(&runtime, &cache, &name, Arc::new(bytes), source, generation).await;
            if let Some(registry) = registry.upgrade() {
                registry.publish(&name, &path, &sha256, loaded);
            }
        })
    }

    /// Publishes what loading `name` at `sha256` gave, unless a newer version of the file was
    /// seen (or it was deleted) while it loaded.
    fn publish(
        &self,
        name: &str,
        path: &Path,
        sha256: &str,
        loaded: Result<LoadedGrader, LoadError>,
    ) {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if loading.get(name).map(String::as_str) != Some(sha256) {
            tracing::debug!(grader = %Untrusted(name), "a newer version of the file was seen while this one loaded; dropped");
            return;
        }
        loading.remove(name);
        let mut next = Snapshot::clone(&self.snapshot.load());
        match loaded {
            Ok(loaded) => {
                tracing::info!(grader = %Untrusted(name), sha256 = %loaded.sha256, generation = loaded.generation, "grader loaded");
                next.failures.remove(name);
                next.graders.insert(name.to_string(), Arc::new(loaded));
            }
            Err(error) => record_failure(&mut next, name, path, sha256.to_string(), error),
        }
        self.snapshot.store(Arc::new(next));
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
                // Starts the loads and lets them publish on their own: the next change is
                // seen while they run.
                drop(registry.scan().await);
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

/// Records that the newest file of `name` did not load; the previous version, if any, keeps
/// serving (its entry in `next.graders` is left as it is).
fn record_failure(next: &mut Snapshot, name: &str, path: &Path, sha256: String, error: LoadError) {
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
