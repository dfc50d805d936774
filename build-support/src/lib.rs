//! Build-script helper: compiles workspace component crates for `wasm32-wasip2`.
//!
//! Build scripts (`host/build.rs`, `tests/build.rs`) call [`build_components`] to get `.wasm`
//! files for guest crates of this workspace. The guests are compiled by a nested
//! `cargo build --profile wasm --target wasm32-wasip2` with a target directory of its own, so
//! the nested cargo never waits on the lock of the outer build, and with the outer build's
//! `CARGO_*`/`RUSTFLAGS` environment removed, because flags meant for the host (coverage
//! instrumentation, a host `--target`, a linker) break a wasm build.
//!
//! It does not decide which crates are guests: callers name them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust target every grader component is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The cargo profile guests are built with (declared in the workspace `Cargo.toml`).
pub const WASM_PROFILE: &str = "wasm";

/// One built component.
#[derive(Debug, Clone)]
pub struct BuiltComponent {
    /// The cargo package name, such as `echo-v1`.
    pub package: String,
    /// Where the `.wasm` component was written.
    pub wasm: PathBuf,
}

/// Why the guest build failed.
#[derive(Debug)]
pub enum BuildError {
    /// The `wasm32-wasip2` standard library is not installed.
    TargetMissing(String),
    /// The nested cargo could not be started.
    Spawn(std::io::Error),
    /// The nested cargo failed; its stderr follows.
    Failed(String),
    /// A crate directory has no readable `Cargo.toml` package name.
    BadCrate(PathBuf),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::TargetMissing(stderr) => write!(
                f,
                "the {WASM_TARGET} target is not installed: run `rustup target add {WASM_TARGET}`\n{stderr}"
            ),
            BuildError::Spawn(e) => write!(f, "cannot run cargo for the {WASM_TARGET} build: {e}"),
            BuildError::Failed(stderr) => write!(f, "building guest components failed:\n{stderr}"),
            BuildError::BadCrate(dir) => {
                write!(f, "{} has no package name in its Cargo.toml", dir.display())
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// The workspace root, found from a build script's `CARGO_MANIFEST_DIR` (a member crate).
pub fn workspace_root(manifest_dir: &Path) -> PathBuf {
    let mut dir = manifest_dir;
    while let Some(parent) = dir.parent() {
        let candidate = parent.join("Cargo.toml");
        if std::fs::read_to_string(&candidate).is_ok_and(|text| text.contains("[workspace]")) {
            return parent.to_path_buf();
        }
        dir = parent;
    }
    manifest_dir.to_path_buf()
}

/// Every crate directory directly under `dir` (those holding a `Cargo.toml`), sorted.
pub fn crate_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The `name` of the `[package]` in `<crate_dir>/Cargo.toml`.
pub fn package_name(crate_dir: &Path) -> Result<String, BuildError> {
    let text = std::fs::read_to_string(crate_dir.join("Cargo.toml"))
        .map_err(|_| BuildError::BadCrate(crate_dir.to_path_buf()))?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package && let Some(rest) = line.strip_prefix("name") {
            let value = rest.trim_start().strip_prefix('=').map(str::trim);
            if let Some(name) = value.and_then(|v| v.strip_prefix('"')?.strip_suffix('"')) {
                return Ok(name.to_string());
            }
        }
    }
    Err(BuildError::BadCrate(crate_dir.to_path_buf()))
}

/// Whether the crate declares itself a model grader (`[package.metadata.flywheel]`
/// `world = "model-grader"`): it enables grader-sdk's `model` feature, which switches the
/// component's world, so it must not share a cargo invocation with pure graders (cargo unifies
/// the features of one invocation and the pure graders would import `llm` too).
pub fn is_model_grader(crate_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(crate_dir.join("Cargo.toml")) else {
        return false;
    };
    let mut in_metadata = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_metadata = line == "[package.metadata.flywheel]";
            continue;
        }
        if in_metadata
            && let Some(rest) = line.strip_prefix("world")
            && rest.trim_start().strip_prefix('=').map(str::trim) == Some("\"model-grader\"")
        {
            return true;
        }
    }
    false
}

/// Builds the crates in `crate_dirs` (members of the workspace at `workspace`) for
/// `wasm32-wasip2`, and tells cargo to rerun the calling build script when their sources or the
/// WIT contract change. Pure graders are built in one nested cargo run and model graders (see
/// [`is_model_grader`]) in another, so features never leak from one group into the other.
pub fn build_components(
    workspace: &Path,
    crate_dirs: &[PathBuf],
) -> Result<Vec<BuiltComponent>, BuildError> {
    let (model, pure): (Vec<PathBuf>, Vec<PathBuf>) = crate_dirs
        .iter()
        .cloned()
        .partition(|dir| is_model_grader(dir));
    let mut built = build_group(workspace, &pure)?;
    built.extend(build_group(workspace, &model)?);
    Ok(built)
}

/// Builds one group of crates in one nested cargo run.
fn build_group(
    workspace: &Path,
    crate_dirs: &[PathBuf],
) -> Result<Vec<BuiltComponent>, BuildError> {
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    let mut packages = Vec::new();
    for dir in crate_dirs {
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        packages.push(package_name(dir)?);
    }
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let target_dir = wasm_target_dir(workspace);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .arg("build")
        .arg("--profile")
        .arg(WASM_PROFILE)
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--target-dir")
        .arg(&target_dir);
    for package in &packages {
        cmd.arg("-p").arg(package);
    }
    clean_env(&mut cmd);
    let output = cmd.output().map_err(BuildError::Spawn)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if stderr.contains("may not be installed") || stderr.contains("can't find crate for `core`")
        {
            return Err(BuildError::TargetMissing(stderr));
        }
        return Err(BuildError::Failed(stderr));
    }
    let out = target_dir.join(WASM_TARGET).join(WASM_PROFILE);
    Ok(packages
        .into_iter()
        .map(|package| {
            let wasm = out.join(format!("{}.wasm", package.replace('-', "_")));
            BuiltComponent { package, wasm }
        })
        .collect())
}

/// The nested build's own target directory: beside the outer one when `CARGO_TARGET_DIR` is
/// set (so a shared build cache stays shared), else `<workspace>/target/wasm-build`.
fn wasm_target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("wasm-build"),
        _ => workspace.join("target").join("wasm-build"),
    }
}

/// Removes what the outer cargo set for the host build. The jobserver (`CARGO_MAKEFLAGS`) and
/// the registry settings stay, so the nested build shares the outer job limit and the cache.
fn clean_env(cmd: &mut Command) {
    const KEEP: &[&str] = &["CARGO_HOME", "CARGO_MAKEFLAGS", "CARGO_NET_OFFLINE"];
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let drop = (key.starts_with("CARGO_")
            && !KEEP.contains(&key)
            && !key.starts_with("CARGO_REGISTRIES_")
            && !key.starts_with("CARGO_HTTP_")
            && !key.starts_with("CARGO_NET_"))
            || matches!(
                key,
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
                    | "NUM_JOBS"
                    | "RUSTC_LINKER"
                    | "LLVM_PROFILE_FILE"
            );
        if drop {
            cmd.env_remove(key);
        }
    }
}

mod python;
mod python_packages;
mod python_tools;
pub use python::{
    COMPONENTIZE_PY_VERSION, PYTHON_GRADER_DIR, PythonUnavailable, build_python_grader,
    python_work_dir,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_graders_are_told_apart_by_their_metadata() {
        let workspace = workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
        let graders = workspace.join("graders");
        for model in ["score-model", "label-model", "cosine-similarity"] {
            assert!(is_model_grader(&graders.join(model)), "{model}");
        }
        for pure in [
            "string-check",
            "text-similarity",
            "files-match",
            "diff-valid",
        ] {
            assert!(!is_model_grader(&graders.join(pure)), "{pure}");
        }
        assert!(!is_model_grader(&graders.join("no-such-crate")));
    }
}
