//! The component's four exports as plain Rust functions over JSON text, generic over a
//! [`Grader`]. [`crate::export!`] wires them to the WIT exports; tests call them directly to
//! exercise exactly what the host will, natively:
//!
//! ```
//! # use grader_sdk::{Grader, Grade, GradeError, Sample, Item};
//! # struct Always;
//! # impl Grader for Always {
//! #     const DESCRIPTION: &'static str = "always 1";
//! #     type Config = serde_json::Value;
//! #     fn grade(_: &Self::Config, _: &Sample, _: &Item) -> Result<Grade, GradeError> { Ok(Grade::new(1.0)) }
//! # }
//! let grade = grader_sdk::run::grade::<Always>("{}", r#"{"output_text":"x"}"#, "{}").unwrap();
//! assert_eq!(grade.score, 1.0);
//! ```

use crate::{Grade, GradeError, Grader, Item, Sample};

/// The SDK version compiled into every component; the host reads it through `info`.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The contract version this SDK implements (the WIT package version).
///
/// The SDK's own version follows it: SDK `0.M.x` implements contract `0.M.*` (for `1.0` and
/// later, the same major), which is the range a host accepts for contract `0.M.0`. So the
/// requirement `grader-sdk = "0.M"` that `flywheel graders new` writes picks an SDK the host
/// loads; the tests below keep the three in step.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// What `info` returns: the SDK version and the grader's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// [`SDK_VERSION`].
    pub sdk_version: String,
    /// [`Grader::DESCRIPTION`].
    pub description: String,
}

/// The `info` export.
pub fn info<G: Grader>() -> Info {
    Info {
        sdk_version: SDK_VERSION.to_owned(),
        description: G::DESCRIPTION.to_owned(),
    }
}

/// Parses and validates a config: the `validate-config` export, with a typed error.
pub fn parse_config<G: Grader>(config: &str) -> Result<G::Config, GradeError> {
    let mut deserializer = serde_json::Deserializer::from_str(config);
    let parsed: G::Config = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            GradeError::InvalidConfig(inner.to_string())
        } else {
            GradeError::InvalidConfig(format!("`{path}`: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| GradeError::InvalidConfig(format!("trailing text after the config: {e}")))?;
    G::validate(&parsed).map_err(GradeError::InvalidConfig)?;
    Ok(parsed)
}

/// The `validate-config` export.
pub fn validate_config<G: Grader>(config: &str) -> Result<(), String> {
    parse_config::<G>(config).map(drop).map_err(|e| match e {
        GradeError::InvalidConfig(message) => message,
        other => other.to_string(),
    })
}

/// The `grade` export.
pub fn grade<G: Grader>(config: &str, sample: &str, item: &str) -> Result<Grade, GradeError> {
    let config = parse_config::<G>(config)?;
    let sample = Sample::parse(sample)?;
    let item = Item::parse(item)?;
    G::grade(&config, &sample, &item).and_then(check_score)
}

/// The `grade-batch` export: the config is parsed once; a row that does not parse gets its own
/// error without stopping the others.
pub fn grade_batch<G: Grader, S: AsRef<str>>(
    config: &str,
    rows: &[(S, S)],
) -> Vec<Result<Grade, GradeError>> {
    let config = match parse_config::<G>(config) {
        Ok(config) => config,
        Err(e) => return rows.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut results: Vec<Result<Grade, GradeError>> = Vec::with_capacity(rows.len());
    let mut parsed = Vec::with_capacity(rows.len());
    let mut slots = Vec::with_capacity(rows.len());
    for (sample, item) in rows {
        match Sample::parse(sample.as_ref()).and_then(|s| Ok((s, Item::parse(item.as_ref())?))) {
            Ok(row) => {
                slots.push(results.len());
                parsed.push(row);
                results.push(Err(GradeError::failed("not graded")));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    let graded = G::grade_batch(&config, &parsed);
    if graded.len() != parsed.len() {
        let message = format!(
            "grade_batch returned {} results for {} rows",
            graded.len(),
            parsed.len()
        );
        for slot in slots {
            results[slot] = Err(GradeError::failed(message.clone()));
        }
        return results;
    }
    for (slot, result) in slots.into_iter().zip(graded) {
        results[slot] = result.and_then(check_score);
    }
    results
}

/// A NaN or infinite score would poison means and thresholds downstream; refuse it here.
fn check_score(grade: Grade) -> Result<Grade, GradeError> {
    if !grade.score.is_finite() {
        return Err(GradeError::failed(format!(
            "score is not a finite number ({})",
            grade.score
        )));
    }
    if let Some(metric) = grade.metrics.iter().find(|m| !m.value.is_finite()) {
        return Err(GradeError::failed(format!(
            "metric `{}` is not a finite number ({})",
            metric.name, metric.value
        )));
    }
    Ok(grade)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        threshold: f64,
        #[serde(default)]
        mode: Mode,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Length,
        Nan,
        Short,
    }

    struct LengthGrader;
    impl Grader for LengthGrader {
        const DESCRIPTION: &'static str = "length of output_text";
        type Config = Config;
        fn validate(config: &Config) -> Result<(), String> {
            if config.threshold < 0.0 {
                return Err("`threshold` must not be negative".into());
            }
            Ok(())
        }
        fn grade(config: &Config, sample: &Sample, _item: &Item) -> Result<Grade, GradeError> {
            let text = sample.require_output_text()?;
            match config.mode {
                Mode::Nan => Ok(Grade::new(f64::NAN)),
                _ => Ok(Grade::new(text.len() as f64).with_threshold(Some(config.threshold))),
            }
        }
        fn grade_batch(config: &Config, rows: &[(Sample, Item)]) -> Vec<Result<Grade, GradeError>> {
            let mut out: Vec<_> = rows
                .iter()
                .map(|(s, i)| Self::grade(config, s, i))
                .collect();
            if matches!(config.mode, Mode::Short) {
                out.pop();
            }
            out
        }
    }

    /// `major.minor` of a `major.minor.patch` version.
    fn major_minor(version: &str) -> (u64, u64) {
        let mut parts = version
            .split('.')
            .map(|p| p.parse::<u64>().expect("numeric version"));
        (parts.next().expect("major"), parts.next().expect("minor"))
    }

    #[test]
    fn the_contract_version_is_the_wit_package_version() {
        // The WIT inside this crate (`wit/`, shipped by `cargo package`) is what the bindings
        // were generated from.
        let wit = include_str!("../wit/grader.wit");
        let package = format!("package flywheel:grader@{CONTRACT_VERSION};");
        assert!(
            wit.lines().any(|line| line.trim() == package),
            "wit/grader.wit does not declare `{package}`"
        );
    }

    #[test]
    fn the_sdk_version_is_compatible_with_its_contract() {
        let (sdk, contract) = (major_minor(SDK_VERSION), major_minor(CONTRACT_VERSION));
        if contract.0 == 0 {
            assert_eq!(
                sdk, contract,
                "SDK {SDK_VERSION} for contract {CONTRACT_VERSION}"
            );
        } else {
            assert_eq!(
                sdk.0, contract.0,
                "SDK {SDK_VERSION} for contract {CONTRACT_VERSION}"
            );
        }
    }

    #[test]
    fn info_reports_the_sdk_version() {
        let info = info::<LengthGrader>();
        assert_eq!(info.sdk_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.description, "length of output_text");
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = validate_config::<LengthGrader>(r#"{"threshold": "high"}"#).unwrap_err();
        assert!(err.contains("`threshold`"), "{err}");
        let err =
            validate_config::<LengthGrader>(r#"{"threshold": 1, "mode": "fast"}"#).unwrap_err();
        assert!(err.contains("`mode`") && err.contains("fast"), "{err}");
        let err = validate_config::<LengthGrader>(r#"{}"#).unwrap_err();
        assert!(err.contains("threshold"), "{err}");
        let err = validate_config::<LengthGrader>(r#"{"threshold": 1, "extra": 1}"#).unwrap_err();
        assert!(err.contains("extra"), "{err}");
        let err = validate_config::<LengthGrader>(r#"{"threshold": -1}"#).unwrap_err();
        assert!(err.contains("must not be negative"), "{err}");
        assert!(validate_config::<LengthGrader>("not json").is_err());
        assert!(validate_config::<LengthGrader>(r#"{"threshold": 1} x"#).is_err());
        assert_eq!(
            validate_config::<LengthGrader>(r#"{"threshold": 1}"#),
            Ok(())
        );
    }

    #[test]
    fn grade_parses_everything_and_checks_the_score() {
        let g = grade::<LengthGrader>(r#"{"threshold": 3}"#, r#"{"output_text":"abcd"}"#, "{}")
            .unwrap();
        assert_eq!((g.score, g.passed), (4.0, Some(true)));
        let err = grade::<LengthGrader>(r#"{"threshold": 3}"#, "{", "{}").unwrap_err();
        assert!(matches!(err, GradeError::InvalidInput(_)));
        let err = grade::<LengthGrader>(r#"{"threshold": 3, "mode": "nan"}"#, r#""x""#, "{}")
            .unwrap_err();
        assert!(
            matches!(err, GradeError::Failed(ref m) if m.contains("finite")),
            "{err}"
        );
        let err = grade::<LengthGrader>(r#"{"threshold": "x"}"#, r#""x""#, "{}").unwrap_err();
        assert!(matches!(err, GradeError::InvalidConfig(_)));
    }

    #[test]
    fn batch_keeps_order_and_isolates_bad_rows() {
        let rows = [
            (r#"{"output_text":"a"}"#, "{}"),
            ("{", "{}"),
            (r#"{"output_text":"abcdef"}"#, "[]"),
            (r#"{"output_text":"abcdef"}"#, "{}"),
        ];
        let out = grade_batch::<LengthGrader, _>(r#"{"threshold": 3}"#, &rows);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].as_ref().unwrap().passed, Some(false));
        assert!(matches!(out[1], Err(GradeError::InvalidInput(_))));
        assert!(matches!(out[2], Err(GradeError::InvalidInput(_))));
        assert_eq!(out[3].as_ref().unwrap().score, 6.0);
    }

    #[test]
    fn batch_with_bad_config_fails_every_row() {
        let rows = [("\"a\"", "{}"), ("\"b\"", "{}")];
        let out = grade_batch::<LengthGrader, _>("{}", &rows);
        assert!(
            out.iter()
                .all(|r| matches!(r, Err(GradeError::InvalidConfig(_))))
        );
    }

    #[test]
    fn batch_override_with_wrong_length_is_reported() {
        let rows = [("\"a\"", "{}"), ("\"b\"", "{}")];
        let out = grade_batch::<LengthGrader, _>(r#"{"threshold": 1, "mode": "short"}"#, &rows);
        assert!(out.iter().all(
            |r| matches!(r, Err(GradeError::Failed(m)) if m.contains("1 results for 2 rows"))
        ));
    }
}
