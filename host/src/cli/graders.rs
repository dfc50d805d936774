//! `flywheel graders list`, `flywheel graders new <name>` and `flywheel grade`.
//!
//! These work locally: they load the built-in graders and `FLYWHEEL_GRADERS_DIR` into this
//! process's grader runtime (compiled components are cached in `<cache-dir>/components` (`FLYWHEEL_CACHE_DIR`, default `<data-dir>/cache`)),
//! exactly as `flywheel serve` does, without a database or a server.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::config::Settings;
use crate::config::args::{GraderArgs, LogArgs, ModelArgs, Overlay, StorageArgs};
use crate::graders::definition::Definition;
use crate::graders::{Registry, RegistryOptions};
use crate::grading::file::{RowReport, Summary, grade_rows};

/// `flywheel graders`.
#[derive(Debug, Args)]
pub struct GradersArgs {
    /// Which graders command.
    #[command(subcommand)]
    pub command: GradersCommand,
    /// The data directory (default home of the graders directory and compile cache).
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Grader components and limits.
    #[command(flatten)]
    pub graders: GraderArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

impl GradersArgs {
    /// The setting groups `flywheel graders` reads from its flags.
    pub fn groups(&self) -> Vec<&dyn Overlay> {
        vec![&self.storage, &self.graders, &self.log]
    }
}

/// The graders commands.
#[derive(Debug, Subcommand)]
pub enum GradersCommand {
    /// List the grader components (built-ins and FLYWHEEL_GRADERS_DIR) with their contract
    /// version, world, hash and load error, and the definition types.
    List {
        /// Print JSON (the components and definition types of GET /api/graders) instead of a
        /// table.
        #[arg(long)]
        json: bool,
    },
    /// Create a grader crate from the SDK template. It depends on `grader-sdk` by version
    /// (the SDK for this host's grader contract); build it with
    /// `cargo build --release --target wasm32-wasip2`.
    New {
        /// Package name: lowercase letters, digits and `-`, starting with a letter.
        name: String,
        /// Directory to create the crate in [default: ./<name>].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Build against this local grader-sdk directory (a Flywheel checkout's `grader-sdk`, or
        /// an unpacked SDK package) instead of crates.io: written as a `[patch.crates-io]`
        /// override in the new crate's Cargo.toml.
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
}

/// `flywheel grade`.
#[derive(Debug, Args)]
pub struct GradeArgs {
    /// A grader definition (OpenAI `string_check`, `text_similarity`, `score_model`,
    /// `label_model`, `multi`, or `{"type":"wasm","component":…,"config":…}`) given inline as
    /// JSON (starting with `{`) or as a JSON file, or the name of a loaded component. Model
    /// graders call OPENAI_BASE_URL (or the definition's `endpoint`).
    #[arg(long)]
    pub grader: String,
    /// OpenAI eval rows, one `{"item":…,"sample":…}` JSON object per line.
    #[arg(long)]
    pub data: PathBuf,
    /// Print one JSON result per row (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// The data directory (default home of the graders directory and compile cache).
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Grader components and limits.
    #[command(flatten)]
    pub graders: GraderArgs,
    /// Model endpoints of model graders.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

impl GradeArgs {
    /// The setting groups `flywheel grade` reads from its flags.
    pub fn groups(&self) -> Vec<&dyn Overlay> {
        vec![&self.storage, &self.graders, &self.model, &self.log]
    }
}

/// Runs `flywheel graders …`.
pub async fn run(args: GradersArgs, settings: Settings) -> anyhow::Result<()> {
    match args.command {
        GradersCommand::List { json } => list(&settings, json).await,
        GradersCommand::New {
            name,
            dir,
            sdk_path,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            scaffold(&name, &dir, sdk_path.as_deref())?;
            println!(
                "created {} (build it with `cargo build --release --target wasm32-wasip2`)",
                dir.display()
            );
            match sdk_path {
                Some(path) => println!(
                    "it builds against the grader-sdk in {} ([patch.crates-io] in its Cargo.toml)",
                    path.display()
                ),
                None => println!(
                    "it depends on grader-sdk {} from crates.io; to build against a local SDK, \
                     pass --sdk-path or see the [patch.crates-io] comment in its Cargo.toml",
                    sdk_requirement()
                ),
            }
            Ok(())
        }
    }
}

pub(crate) async fn load_registry(settings: &Settings) -> anyhow::Result<Arc<Registry>> {
    let llm = crate::server::model_client(settings)?;
    let runtime = crate::server::grader_runtime(settings, llm)?;
    let options = RegistryOptions {
        graders_dir: Some(settings.graders_dir.clone()).filter(|d| d.is_dir()),
        cache_dir: Some(settings.cache_dir.join("components")),
        builtins: crate::graders::builtin::builtins(),
        watch: false,
    };
    Ok(Registry::start(runtime, options).await)
}

async fn list(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let registry = load_registry(settings).await?;
    let listing = registry.list();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &listing)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:<9} {:<13} {:<8} {:<12} STATUS",
        "NAME", "CONTRACT", "WORLD", "SOURCE", "SHA256"
    )?;
    for c in &listing.components {
        let world = match c.world {
            Some(crate::graders::World::Grader) => "grader",
            Some(crate::graders::World::ModelGrader) => "model-grader",
            None => "-",
        };
        let status = match &c.load_error {
            Some(error) if c.sha256.is_some() => format!("serving; newest file failed: {error}"),
            Some(error) => format!("not loaded: {error}"),
            None => "ok".to_string(),
        };
        let sha = c
            .sha256
            .as_deref()
            .map(|s| &s[..12.min(s.len())])
            .unwrap_or("-");
        writeln!(
            out,
            "{:<20} {:<9} {:<13} {:<8} {:<12} {status}",
            c.name,
            c.contract_version.as_deref().unwrap_or("-"),
            world,
            c.source,
            sha
        )?;
    }
    writeln!(out)?;
    writeln!(out, "definition types:")?;
    for d in &listing.definitions {
        let runs = d
            .component
            .map(|c| format!(" → component {c}"))
            .unwrap_or_default();
        let available = if d.available || d.component.is_none() {
            ""
        } else {
            " (not available)"
        };
        writeln!(out, "  {}{runs}{available}", d.kind)?;
    }
    Ok(())
}

/// Runs `flywheel grade`.
pub async fn grade(args: GradeArgs, settings: Settings) -> anyhow::Result<()> {
    let registry = load_registry(&settings).await?;
    let definition = definition_from_arg(&args.grader)?;
    definition
        .validate(&registry)
        .await
        .context("invalid grader definition")?;
    let resolved = definition
        .resolve(&registry)
        .context("invalid grader definition")?;
    let file = std::fs::File::open(&args.data)
        .with_context(|| format!("opening {}", args.data.display()))?;
    let total = std::io::BufReader::new(std::fs::File::open(&args.data)?)
        .lines()
        .count() as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {elapsed_precise}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let lines = std::io::BufReader::new(file).lines();
    let (reports, summary) = grade_rows(&resolved, registry.runtime(), lines, &mut |done| {
        bar.set_position(done as u64)
    })
    .await;
    bar.finish_and_clear();
    print_results(&reports, &summary, args.json)
}

/// What `--grader` names: inline JSON (it starts with `{`, which no file or component name
/// does in practice, and a component name cannot), a definition file, or a component.
fn definition_from_arg(grader: &str) -> anyhow::Result<Definition> {
    if grader.trim_start().starts_with('{') {
        Definition::from_json(grader).context("invalid inline grader definition (--grader)")
    } else if Path::new(grader).is_file() {
        let text = std::fs::read_to_string(grader).with_context(|| format!("reading {grader}"))?;
        Definition::from_json(&text)
            .with_context(|| format!("invalid grader definition in {grader}"))
    } else if grader.ends_with(".json") {
        bail!("grader definition file {grader} does not exist");
    } else {
        Ok(Definition::Component {
            name: None,
            component: grader.to_owned(),
            config: "{}".into(),
        })
    }
}

fn print_results(reports: &[RowReport], summary: &Summary, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        for report in reports {
            serde_json::to_writer(&mut out, report)?;
            writeln!(out)?;
        }
        eprintln!("{}", summary.line());
    } else {
        writeln!(out, "{}", summary.line())?;
    }
    Ok(())
}

/// The template files, embedded so the binary scaffolds without the source tree.
const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../grader-sdk/template/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../grader-sdk/template/src/lib.rs.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../grader-sdk/template/.gitignore.tmpl"),
    ),
];

/// The `grader-sdk` version requirement a new crate gets: the SDK versions that implement this
/// host's contract. The SDK's minor follows the contract's (its `CONTRACT_VERSION` docs), so
/// contract `0.1.0` means `grader-sdk = "0.1"`, exactly the range [`supported_range`] accepts.
///
/// [`supported_range`]: crate::graders::component::supported_range
pub fn sdk_requirement() -> String {
    crate::graders::component::supported_range()
        .trim_end_matches(".x")
        .to_owned()
}

/// The tail of the new crate's Cargo.toml: an active `[patch.crates-io]` for `--sdk-path`, or
/// the same table commented out, showing how to add it later.
fn sdk_override(sdk: Option<&str>) -> String {
    match sdk {
        Some(path) => format!(
            "\n# Build against this local grader-sdk instead of the one on crates.io (written by\n\
             # `flywheel graders new --sdk-path`). Delete the table to use the published SDK.\n\
             [patch.crates-io]\n\
             grader-sdk = {{ path = \"{path}\" }}\n"
        ),
        None => {
            "\n# To build against a local grader-sdk (a Flywheel checkout, or an SDK not yet on\n\
                 # crates.io) instead of the published one, uncomment and point `path` at it.\n\
                 # [patch.crates-io]\n\
                 # grader-sdk = { path = \"../flywheel/grader-sdk\" }\n"
                .to_owned()
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// Writes a new grader crate into `dir` from the SDK template; with `sdk_path`, it builds
/// against that local SDK instead of crates.io.
pub fn scaffold(name: &str, dir: &Path, sdk_path: Option<&Path>) -> anyhow::Result<()> {
    if !valid_name(name) {
        bail!(
            "`{name}` is not a valid grader name: use lowercase letters, digits and `-`, starting with a letter"
        );
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", dir.display());
    }
    let sdk = sdk_path.map(local_sdk).transpose()?;
    let crate_name = name.replace('-', "_");
    let contract = crate::graders::CONTRACT_VERSION;
    let sdk_override = sdk_override(sdk.as_deref());
    for (path, text) in TEMPLATE {
        let rendered = text
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &crate_name)
            .replace("{{contract}}", contract)
            .replace("{{sdk_requirement}}", &sdk_requirement())
            .replace("{{sdk_override}}", &sdk_override);
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, rendered)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// The absolute, `/`-separated path of a local grader-sdk directory, checked to hold one.
fn local_sdk(path: &Path) -> anyhow::Result<String> {
    let sdk = std::fs::canonicalize(path)
        .with_context(|| format!("grader-sdk not found at {}", path.display()))?;
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap_or_default();
    if !manifest
        .lines()
        .any(|l| l.trim() == r#"name = "grader-sdk""#)
    {
        bail!(
            "{} is not a grader-sdk directory (its Cargo.toml does not name the package grader-sdk)",
            path.display()
        );
    }
    Ok(sdk.to_string_lossy().replace('\\', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("exact-answer"));
        assert!(valid_name("g2"));
        assert!(!valid_name("Exact"));
        assert!(!valid_name("2g"));
        assert!(!valid_name("a_b"));
        assert!(!valid_name("a-"));
        assert!(!valid_name(""));
        assert!(!valid_name("../x"));
    }

    #[test]
    fn grader_argument_is_inline_json_a_file_or_a_component() {
        let inline = r#"{"type":"string_check","name":"s","input":"{{sample.output_text}}","reference":"{{item.answer}}","operation":"eq"}"#;
        let from_inline = definition_from_arg(&format!("  {inline}")).expect("inline JSON");
        // A string_check definition runs on the string-check component with itself as config.
        match &from_inline {
            Definition::Component {
                name,
                component,
                config,
            } => {
                assert_eq!(
                    (name.as_deref(), component.as_str()),
                    (Some("s"), "string-check")
                );
                assert!(config.contains("\"operation\":\"eq\""), "{config}");
            }
            other => panic!("{other:?}"),
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("grader.json");
        std::fs::write(&file, inline).expect("written");
        let from_file = definition_from_arg(file.to_str().expect("utf-8")).expect("file");
        assert_eq!(format!("{from_file:?}"), format!("{from_inline:?}"));
        match definition_from_arg("echo").expect("component") {
            Definition::Component {
                name,
                component,
                config,
            } => assert_eq!(
                (name, component.as_str(), config.as_str()),
                (None, "echo", "{}")
            ),
            other => panic!("{other:?}"),
        }
        let err = definition_from_arg(r#"{"type":"string_check""#).unwrap_err();
        assert!(format!("{err:#}").contains("inline"), "{err:#}");
        let err = definition_from_arg(r#"{"type":"string_check","name":"s"}"#).unwrap_err();
        assert!(format!("{err:#}").contains("inline"), "{err:#}");
        let missing = dir.path().join("missing.json");
        let err = definition_from_arg(missing.to_str().expect("utf-8")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    /// The grader-sdk of this source tree.
    fn workspace_sdk() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("grader-sdk")
    }

    #[test]
    fn scaffold_fills_every_placeholder_and_depends_on_the_sdk_by_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("exact-answer");
        scaffold("exact-answer", &target, None).expect("scaffolds");
        for (path, _) in TEMPLATE {
            let text = std::fs::read_to_string(target.join(path)).expect("written");
            assert!(!text.contains("{{"), "{path} still has a placeholder");
        }
        let manifest = std::fs::read_to_string(target.join("Cargo.toml")).expect("written");
        assert!(manifest.contains("name = \"exact-answer\""));
        assert!(manifest.contains("\ngrader-sdk = \"0.1\"\n"), "{manifest}");
        // Without --sdk-path nothing points into a source tree: the override is a comment.
        assert!(!manifest.contains("\n[patch"), "{manifest}");
        assert!(manifest.contains("\n# [patch.crates-io]\n"), "{manifest}");
        assert!(
            scaffold("exact-answer", &target, None).is_err(),
            "refuses a non-empty directory"
        );
        assert!(scaffold("Bad", &dir.path().join("bad"), None).is_err());
    }

    #[test]
    fn sdk_path_becomes_a_patch_of_the_versioned_dependency() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("g");
        scaffold("g", &target, Some(&workspace_sdk())).expect("scaffolds");
        let manifest = std::fs::read_to_string(target.join("Cargo.toml")).expect("written");
        let sdk = std::fs::canonicalize(workspace_sdk()).expect("sdk");
        let patch = format!(
            "\n[patch.crates-io]\ngrader-sdk = {{ path = \"{}\" }}\n",
            sdk.display()
        );
        assert!(manifest.contains(&patch), "{manifest}");
        assert!(manifest.contains("\ngrader-sdk = \"0.1\"\n"), "{manifest}");

        // A directory that is not the SDK is refused before anything is written.
        let err = scaffold("h", &dir.path().join("h"), Some(dir.path())).unwrap_err();
        assert!(
            err.to_string().contains("not a grader-sdk directory"),
            "{err}"
        );
        let err = scaffold("h", &dir.path().join("h"), Some(&dir.path().join("none")));
        assert!(err.unwrap_err().to_string().contains("not found"));
        assert!(!dir.path().join("h").exists());
    }

    #[test]
    fn the_sdk_requirement_matches_the_sdk_and_the_contract() {
        // The requirement comes from the host's contract; the SDK in this tree must satisfy it,
        // or `graders new` would write a crate no published SDK version builds.
        assert_eq!(sdk_requirement(), "0.1");
        let manifest = include_str!("../../../grader-sdk/Cargo.toml");
        let version = manifest
            .lines()
            .find_map(|l| l.strip_prefix("version = \""))
            .and_then(|v| v.strip_suffix('"'))
            .expect("grader-sdk has its own version");
        assert!(
            crate::graders::component::compatible(version),
            "grader-sdk {version} does not implement contract {}",
            crate::graders::CONTRACT_VERSION
        );
        assert!(version.starts_with(&format!("{}.", sdk_requirement())));
    }
}
