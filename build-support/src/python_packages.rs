//! The pure-Python packages bundled into the `python` grader (`graders/python/packages.txt`):
//! downloads the pinned wheels with pip (hashes checked), unpacks their Python files and data
//! into a directory of their own and marks it, so `graders/python/app.py` compiles them into
//! the interpreter snapshot. Native `.so` files are never unpacked: the grader runs the
//! packages' pure-Python code (rapidfuzz's fallback, PyYAML without libyaml). A package that
//! publishes only an sdist (rouge-score) is named in `packages.txt` by a `--no-binary` line and
//! its package directories are taken from the sdist (pip reads its metadata; nothing is built).
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

/// Unpacks the wheels' files except native code and packaging metadata (licences are kept), and
/// the package directories of the sdists (rouge-score publishes no wheel): their root's files
/// (`setup.py`, `PKG-INFO`) and `*.egg-info` are left out.
const UNPACK: &str = r#"
import pathlib, sys, tarfile, zipfile
out = pathlib.Path(sys.argv[1])
def skipped(name):
    return name.endswith((".so", ".pyd", ".pyi")) or "/__pyinstaller/" in "/" + name
for archive in sorted(pathlib.Path(sys.argv[2]).iterdir()):
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if skipped(name):
                    continue
                if ".dist-info/" in name and "licen" not in name.lower():
                    continue
                z.extract(name, out)
    elif archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as t:
            for member in t.getmembers():
                parts = member.name.split("/")
                if not member.isfile() or len(parts) < 3 or skipped(member.name):
                    continue
                if parts[1].endswith(".egg-info") or any(p in ("", ".", "..") for p in parts[1:]):
                    continue
                target = out.joinpath(*parts[1:])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(t.extractfile(member).read())
    else:
        sys.exit("unexpected download %s" % archive.name)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The `name==version` pins of `packages.txt` (comments and option lines skipped).
    fn pins(text: &str) -> Vec<(&str, &str)> {
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('-'))
            .filter_map(|line| {
                let requirement = line.split_whitespace().next()?;
                requirement.split_once("==")
            })
            .collect()
    }

    #[test]
    fn every_bundled_package_has_its_licence_committed() {
        let workspace = crate::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
        let app_dir = workspace.join(crate::python::PYTHON_GRADER_DIR);
        let text = std::fs::read_to_string(app_dir.join(PACKAGES_FILE)).expect("packages.txt");
        let pins = pins(&text);
        assert!(pins.len() >= 15, "{pins:?}");
        assert!(pins.contains(&("sympy", "1.14.0")), "{pins:?}");
        let mut expected: Vec<String> = pins.iter().map(|(n, v)| format!("{n}-{v}.txt")).collect();
        expected.sort();
        let mut committed: Vec<String> = std::fs::read_dir(app_dir.join("licenses"))
            .expect("graders/python/licenses")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        committed.sort();
        assert_eq!(committed, expected, "run scripts/python-package-licenses");
        for (name, version) in pins {
            let licence = app_dir
                .join("licenses")
                .join(format!("{name}-{version}.txt"));
            let body = std::fs::read_to_string(&licence).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run scripts/python-package-licenses)",
                    licence.display()
                )
            });
            assert!(
                body.starts_with(&format!("Licence of {name} {version},"))
                    && body.to_lowercase().contains("licen"),
                "{}",
                licence.display()
            );
        }
    }

    #[test]
    fn pins_skip_comments_and_options() {
        let text = "# a comment\n--no-binary x\nfoo==1.2 --hash=sha256:ab\n\nbar-baz==0.1\n";
        assert_eq!(pins(text), vec![("foo", "1.2"), ("bar-baz", "0.1")]);
    }
}
