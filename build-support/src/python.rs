//! Builds the `python` grader component (`graders/python/`): CPython compiled to WebAssembly by
//! componentize-py, running `graders/python/app.py`, exporting `flywheel:grader/grading` of
//! `wit/grader.wit` (world `grader`).
//!
//! The build needs `python3` with `venv` and `pip` and, the first time, PyPI: it creates a
//! virtual environment under the target directory, installs the pinned componentize-py into it
//! and runs it. The output is cached by a hash of its inputs (app, WIT, componentize-py version,
//! flags), so later builds cost a hash. Nothing is downloaded at run time: the component is a
//! file the binary embeds or the tests read.
//!
//! When python3, venv or pip is missing (or PyPI unreachable), [`build_python_grader`] returns
//! [`PythonUnavailable`] with the reason; callers report the grader as unavailable and the rest
//! of the workspace builds as usual. Set `FLYWHEEL_PYTHON` to choose the interpreter, or
//! `FLYWHEEL_NO_PYTHON_GRADER=1` to skip the build.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::python_tools::PythonUnavailable;
use crate::python_tools::{Fnv1a, run};

/// The componentize-py release the component is built with (pinned: its output bundles
/// CPython, so another version means another interpreter).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// Where the grader's Python module lives, relative to the workspace.
pub const PYTHON_GRADER_DIR: &str = "graders/python";

/// The stand-in modules (`socket`, `subprocess`, …) of the grader, under its directory.
const STANDINS_DIR: &str = "standins";

/// The module componentize-py wraps (`graders/python/app.py`).
const APP_MODULE: &str = "app";

/// Builds (or finds in the cache) the Python grader component and returns the path of its
/// `.wasm`. `work_dir` holds the virtual environment and the cached outputs; pass a directory
/// under the target directory (see [`python_work_dir`]). Prints `cargo:rerun-if-*` lines for its
/// inputs.
pub fn build_python_grader(
    workspace: &Path,
    work_dir: &Path,
) -> Result<PathBuf, PythonUnavailable> {
    let python = std::env::var("FLYWHEEL_PYTHON").unwrap_or_else(|_| "python3".into());
    build_with(workspace, work_dir, &python)
}

fn build_with(
    workspace: &Path,
    work_dir: &Path,
    system_python: &str,
) -> Result<PathBuf, PythonUnavailable> {
    let app_dir = workspace.join(PYTHON_GRADER_DIR);
    let wit_dir = workspace.join("wit");
    // Files, not the directory: componentize-py may leave `__pycache__` there, which would
    // make every build rerun this.
    for file in input_files(&app_dir, &wit_dir)? {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    println!("cargo:rerun-if-env-changed=FLYWHEEL_PYTHON");
    println!("cargo:rerun-if-env-changed=FLYWHEEL_NO_PYTHON_GRADER");
    if std::env::var_os("FLYWHEEL_NO_PYTHON_GRADER").is_some_and(|v| v != "0" && !v.is_empty()) {
        return Err(PythonUnavailable(
            "FLYWHEEL_NO_PYTHON_GRADER is set, so it was not built".into(),
        ));
    }
    let key = input_hash(&app_dir, &wit_dir)?;
    let output = work_dir.join(format!("python-grader-{key:016x}.wasm"));
    if output.is_file() {
        return Ok(output);
    }
    std::fs::create_dir_all(work_dir)
        .map_err(|e| PythonUnavailable(format!("cannot create {}: {e}", work_dir.display())))?;
    let python = venv_python(work_dir, system_python)?;
    let packages = crate::python_packages::bundled_packages(&app_dir, work_dir, &python)?;
    let tmp = work_dir.join(format!(".python-grader-{}.wasm", std::process::id()));
    let mut cmd = Command::new(&python);
    cmd.arg("-c")
        .arg("import sys, componentize_py; sys.argv[0] = 'componentize-py'; componentize_py.script()")
        .arg("-d")
        .arg(&wit_dir)
        .arg("-w")
        .arg("grader")
        .arg("componentize")
        .arg("--stub-wasi")
        .arg("-p")
        .arg(&app_dir)
        .arg("-p")
        .arg(&packages)
        .arg(APP_MODULE)
        .arg("-o")
        .arg(&tmp)
        .current_dir(work_dir)
        // componentize-py otherwise adds the site-packages of whatever venv is active.
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTHONPATH")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run(&mut cmd, "componentize-py componentize")?;
    std::fs::rename(&tmp, &output)
        .map_err(|e| PythonUnavailable(format!("cannot move the built component: {e}")))?;
    remove_stale_outputs(work_dir, &output);
    Ok(output)
}

/// The default work directory: `<target>/python-grader`, beside the shared build cache.
pub fn python_work_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("python-grader"),
        _ => workspace.join("target").join("python-grader"),
    }
}

/// The Python of the work directory's venv holding componentize-py, made when missing.
/// It is run as `python -c …` rather than through the `componentize-py` script, because a
/// venv's scripts carry the absolute path it was created at and this venv is renamed.
fn venv_python(work_dir: &Path, system: &str) -> Result<PathBuf, PythonUnavailable> {
    let venv = work_dir.join(format!("venv-{COMPONENTIZE_PY_VERSION}"));
    let python = venv.join("bin").join("python");
    if venv.join(".installed").is_file() {
        return Ok(python);
    }
    // Made in a directory of its own and renamed into place, so two build scripts running at
    // once never share a half-made venv.
    let staging = work_dir.join(format!(".venv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    run(
        Command::new(system).arg("-m").arg("venv").arg(&staging),
        &format!("`{system} -m venv` (install python3 with venv and pip)"),
    )?;
    run(
        Command::new(staging.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}")),
        &format!("pip install componentize-py=={COMPONENTIZE_PY_VERSION} (needs PyPI)"),
    )?;
    std::fs::write(staging.join(".installed"), COMPONENTIZE_PY_VERSION)
        .map_err(|e| PythonUnavailable(format!("cannot write to {}: {e}", staging.display())))?;
    if !venv.join(".installed").is_file() {
        // A venv left half-made by an interrupted build.
        let _ = std::fs::remove_dir_all(&venv);
    }
    if std::fs::rename(&staging, &venv).is_err() {
        // Another build script won the race; its venv is complete once it is in place.
        let _ = std::fs::remove_dir_all(&staging);
        if !venv.join(".installed").is_file() {
            return Err(PythonUnavailable(format!(
                "cannot move the venv into {}",
                venv.display()
            )));
        }
    }
    Ok(python)
}

/// Removes components built from earlier inputs (each is about 20 MB).
fn remove_stale_outputs(work_dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let stale = path != keep
            && path.extension().is_some_and(|ext| ext == "wasm")
            && path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python-grader-"));
        if stale {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The `.py` files of the app and of its stand-in modules (`standins/`), its pinned packages and
/// the `.wit` files of the contract, sorted.
fn input_files(app_dir: &Path, wit_dir: &Path) -> Result<Vec<PathBuf>, PythonUnavailable> {
    let mut all = Vec::new();
    let standins = app_dir.join(STANDINS_DIR);
    for dir in [app_dir, &standins, wit_dir] {
        if dir == standins && !dir.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| PythonUnavailable(format!("cannot read {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|ext| ext == "py" || ext == "wit")
                    || p.file_name()
                        .is_some_and(|n| n == crate::python_packages::PACKAGES_FILE)
            })
            .collect();
        files.sort();
        all.extend(files);
    }
    Ok(all)
}

/// FNV-1a over the inputs that decide the output.
fn input_hash(app_dir: &Path, wit_dir: &Path) -> Result<u64, PythonUnavailable> {
    let mut hasher = Fnv1a::new();
    let mut feed = |bytes: &[u8]| hasher.feed(bytes);
    feed(COMPONENTIZE_PY_VERSION.as_bytes());
    feed(b"--stub-wasi grader app packages");
    for file in input_files(app_dir, wit_dir)? {
        let bytes = std::fs::read(&file)
            .map_err(|e| PythonUnavailable(format!("cannot read {}: {e}", file.display())))?;
        feed(
            file.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        feed(&(bytes.len() as u64).to_le_bytes());
        feed(&bytes);
    }
    Ok(hasher.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> PathBuf {
        crate::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")))
    }

    #[test]
    fn a_missing_interpreter_makes_the_grader_unavailable_with_a_clear_reason() {
        let work = std::env::temp_dir().join(format!("flywheel-py-missing-{}", std::process::id()));
        let error = build_with(&workspace(), &work, "/nonexistent/python3")
            .expect_err("no interpreter, no component");
        let text = error.to_string();
        assert!(
            text.starts_with("the python grader is unavailable"),
            "{text}"
        );
        assert!(text.contains("install python3"), "{text}");
        let _ = std::fs::remove_dir_all(&work);
    }

    #[test]
    fn a_missing_app_directory_is_reported_not_a_panic() {
        let work = std::env::temp_dir().join(format!("flywheel-py-noapp-{}", std::process::id()));
        let error = build_with(&work, &work, "python3").expect_err("no app");
        assert!(error.to_string().contains("cannot read"), "{error}");
    }

    #[test]
    fn the_input_hash_follows_the_app_source() {
        let root = workspace();
        let app = root.join(PYTHON_GRADER_DIR);
        let wit = root.join("wit");
        let a = input_hash(&app, &wit).expect("inputs readable");
        assert_eq!(a, input_hash(&app, &wit).expect("inputs readable"));
        assert_ne!(a, input_hash(&wit, &wit).expect("inputs readable"));
    }
}
