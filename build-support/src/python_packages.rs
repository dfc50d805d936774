//! The pure-Python packages bundled into the `python` grader (`graders/python/packages.txt`):
//! downloads the pinned wheels with pip (hashes checked), unpacks their Python files and data
//! into a directory of their own and marks it, so `graders/python/app.py` compiles them into
//! the interpreter snapshot. Native `.so` files are never unpacked: the grader runs the
//! packages' pure-Python code (rapidfuzz's fallback, PyYAML without libyaml).
//!
//! The result is cached by the hash of `packages.txt`, so PyPI is needed once per pin change.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::python_tools::{PythonUnavailable, fnv1a, run};

/// The pinned requirements, relative to the grader's directory.
pub const PACKAGES_FILE: &str = "packages.txt";

/// The file that marks the unpacked directory (`app.py` looks for it on `sys.path`).
const MARKER: &str = "flywheel-packages.txt";

/// Fixed wheel selection: one wheel per package whatever the building machine, so the hashes
/// in `packages.txt` hold everywhere (only its `.py` files are used).
const PIP_PLATFORM: [&str; 8] = [
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
];

/// Unpacks the wheels' files except native code and packaging metadata (licences are kept).
const UNPACK: &str = r#"
import pathlib, sys, zipfile
out = pathlib.Path(sys.argv[1])
for wheel in sorted(pathlib.Path(sys.argv[2]).glob("*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith((".so", ".pyd", ".pyi")) or "/__pyinstaller/" in "/" + name:
                continue
            if ".dist-info/" in name and "licen" not in name.lower():
                continue
            z.extract(name, out)
"#;

/// Downloads and unpacks the bundled packages (or finds them unpacked) and returns the
/// directory to put on componentize-py's path.
pub(crate) fn bundled_packages(
    app_dir: &Path,
    work_dir: &Path,
    python: &Path,
) -> Result<PathBuf, PythonUnavailable> {
    let requirements = app_dir.join(PACKAGES_FILE);
    let text = std::fs::read(&requirements)
        .map_err(|e| PythonUnavailable(format!("cannot read {}: {e}", requirements.display())))?;
    let dir = work_dir.join(format!("packages-{:016x}", fnv1a(&text)));
    if dir.join(MARKER).is_file() {
        return Ok(dir);
    }
    let staging = work_dir.join(format!(".packages-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let wheels = staging.join("wheels");
    let site = staging.join("site");
    run(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--require-hashes",
                "--only-binary=:all:",
            ])
            .args(PIP_PLATFORM)
            .arg("-d")
            .arg(&wheels)
            .arg("-r")
            .arg(&requirements),
        "pip download of graders/python/packages.txt (needs PyPI)",
    )?;
    run(
        Command::new(python)
            .arg("-c")
            .arg(UNPACK)
            .arg(&site)
            .arg(&wheels),
        "unpacking the bundled packages",
    )?;
    std::fs::write(site.join(MARKER), &text)
        .map_err(|e| PythonUnavailable(format!("cannot write to {}: {e}", site.display())))?;
    if !dir.join(MARKER).is_file() {
        // Left half-made by an interrupted build (another build's finished one is kept).
        let _ = std::fs::remove_dir_all(&dir);
    }
    if std::fs::rename(&site, &dir).is_err() && !dir.join(MARKER).is_file() {
        return Err(PythonUnavailable(format!(
            "cannot move the bundled packages into {}",
            dir.display()
        )));
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(dir)
}
