//! OpenAI's `text_similarity` with `evaluation_metric: "cosine"` as a Flywheel model-grader
//! component: the rendered `input` and `reference` are embedded through the host's `llm.embed`
//! (one call, two texts) and the score is the cosine similarity of the two vectors.
//!
//! The other text_similarity metrics are computed by the pure `text-similarity` component; the
//! host routes a definition here only for `cosine`, because a pure grader cannot embed.
//!
//! Config: the OpenAI JSON (`type`, `name`, `input`, `reference`, `evaluation_metric`,
//! `pass_threshold`), plus Flywheel's optional `model` (the embeddings model; the host's default
//! when absent) and `endpoint`. Two zero vectors (empty texts) score 0.

use grader_sdk::llm;
use grader_sdk::template::Template;
use grader_sdk::{Grade, GradeError, Grader, Item, Sample};
use serde::Deserialize;

/// The OpenAI `text_similarity` JSON, for `cosine`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `text_similarity` when present.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The grader's display name.
    #[serde(default)]
    pub name: Option<String>,
    /// OpenAI's id of a stored criterion; accepted, unused.
    #[serde(default)]
    pub id: Option<String>,
    /// Template of the text under test.
    pub input: String,
    /// Template of the text to compare with.
    pub reference: String,
    /// Must be `cosine`.
    pub evaluation_metric: String,
    /// Rows scoring at least this pass.
    #[serde(default)]
    pub pass_threshold: Option<f64>,
    /// The embeddings model (Flywheel extension).
    #[serde(default)]
    pub model: Option<String>,
    /// A named model endpoint configured on the host (Flywheel extension).
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// Cosine similarity; 0 when either vector is zero or their lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}

/// The cosine `text_similarity` grader.
pub struct CosineSimilarity;

impl Grader for CosineSimilarity {
    const DESCRIPTION: &'static str = "OpenAI text_similarity (cosine): cosine similarity of the embeddings of input and reference";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), String> {
        if config.evaluation_metric != "cosine" {
            return Err(format!(
                "`evaluation_metric`: this grader computes `cosine` only, not `{}`",
                config.evaluation_metric
            ));
        }
        Template::parse(&config.input).map_err(|e| format!("`input`: {e}"))?;
        Template::parse(&config.reference).map_err(|e| format!("`reference`: {e}"))?;
        if let Some(t) = config.pass_threshold
            && !(-1.0..=1.0).contains(&t)
        {
            return Err(format!("`pass_threshold`: {t} is outside [-1, 1]"));
        }
        Ok(())
    }

    fn grade(config: &Config, sample: &Sample, item: &Item) -> Result<Grade, GradeError> {
        let render = |field: &str, text: &str| {
            Template::parse(text)
                .map_err(|e| GradeError::config(format!("`{field}`: {e}")))?
                .render(sample, item)
                .map_err(|e| GradeError::input(format!("`{field}`: {e}")))
        };
        let texts = vec![
            render("input", &config.input)?,
            render("reference", &config.reference)?,
        ];
        let vectors = llm::embed(config.model.as_deref(), &texts)
            .map_err(|e| GradeError::failed(e.to_string()))?;
        let [a, b] = vectors.as_slice() else {
            return Err(GradeError::failed(format!(
                "the embeddings endpoint returned {} vectors for 2 texts",
                vectors.len()
            )));
        };
        if a.len() != b.len() {
            return Err(GradeError::failed(format!(
                "the embeddings have different lengths ({} and {})",
                a.len(),
                b.len()
            )));
        }
        let score = cosine(a, b);
        Ok(Grade::new(score)
            .with_metric("cosine", score)
            .with_threshold(config.pass_threshold))
    }
}

grader_sdk::export!(CosineSimilarity);

#[cfg(test)]
mod tests {
    use super::*;
    use grader_sdk::llm::LlmError;
    use grader_sdk::run;

    const CONFIG: &str = r#"{"type":"text_similarity","name":"c","input":"{{sample.output_text}}","reference":"{{item.ref}}","evaluation_metric":"cosine","pass_threshold":0.9}"#;

    #[test]
    fn the_score_is_the_cosine_of_the_two_embeddings() {
        llm::set_embed_mock(|_, texts| {
            assert_eq!(texts, ["a b", "a c"]);
            Ok(vec![vec![1.0, 0.0], vec![1.0, 1.0]])
        });
        let g =
            run::grade::<CosineSimilarity>(CONFIG, r#"{"output_text":"a b"}"#, r#"{"ref":"a c"}"#)
                .expect("graded");
        assert!(
            (g.score - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9,
            "{}",
            g.score
        );
        assert_eq!(g.passed, Some(false));
    }

    #[test]
    fn zero_vectors_and_failures() {
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
        llm::set_embed_mock(|_, _| Err(LlmError::NotConfigured("none".into())));
        let e = run::grade::<CosineSimilarity>(CONFIG, r#"{"output_text":"x"}"#, r#"{"ref":"y"}"#)
            .unwrap_err();
        assert!(
            matches!(&e, GradeError::Failed(m) if m.contains("not configured")),
            "{e:?}"
        );
        llm::set_embed_mock(|_, _| Ok(vec![vec![1.0]]));
        assert!(
            run::grade::<CosineSimilarity>(CONFIG, r#"{"output_text":"x"}"#, r#"{"ref":"y"}"#)
                .is_err()
        );
    }

    #[test]
    fn only_cosine_is_accepted() {
        let e = run::validate_config::<CosineSimilarity>(&CONFIG.replace("cosine", "bleu"))
            .unwrap_err();
        assert!(e.contains("evaluation_metric"), "{e}");
        let e = run::validate_config::<CosineSimilarity>(&CONFIG.replace("0.9", "2")).unwrap_err();
        assert!(e.contains("pass_threshold"), "{e}");
    }
}
