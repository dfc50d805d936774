//! The check of a definition against the loaded components, and its resolution: every
//! component it names must be loaded and accept its config (the component's own
//! `validate-config`), and a [`Resolved`] tree pins each to the version serving now, so a whole
//! run grades with one version even if the graders directory changes meanwhile.

use std::sync::Arc;

use super::tree::{Definition, DefinitionError, join};
use crate::graders::component::LoadedGrader;
use crate::graders::engine::GraderRuntime;
use crate::graders::formula::Expr;
use crate::graders::outcome::Outcome;
use crate::graders::registry::Registry;

/// A definition with every component pinned to one loaded version.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// One component.
    Component {
        /// The pinned grader.
        grader: Arc<LoadedGrader>,
        /// Its config.
        config: String,
    },
    /// Sub-graders and a formula.
    Multi {
        /// (variable, grader, config).
        parts: Vec<(String, Arc<LoadedGrader>, String)>,
        /// `calculate_output`.
        formula: Expr,
    },
}

impl Resolved {
    /// Whether grading with it asks a model (some component imports the host's `llm`): such
    /// definitions spend tokens and are left out of automatic grading.
    pub fn needs_model(&self) -> bool {
        use crate::graders::component::World;
        match self {
            Resolved::Component { grader, .. } => grader.world == World::ModelGrader,
            Resolved::Multi { parts, .. } => parts
                .iter()
                .any(|(_, grader, _)| grader.world == World::ModelGrader),
        }
    }
}

impl Definition {
    /// Checks that every component is loaded and accepts its config (its own
    /// `validate-config`).
    pub async fn validate(&self, registry: &Registry) -> Result<(), DefinitionError> {
        let runtime = registry.runtime();
        match self {
            Definition::Component {
                component, config, ..
            } => validate_leaf(registry, runtime, "", component, config).await,
            Definition::Multi { graders, .. } => {
                for (key, sub) in graders {
                    if let Definition::Component {
                        component, config, ..
                    } = sub
                    {
                        validate_leaf(
                            registry,
                            runtime,
                            &format!("graders.{key}"),
                            component,
                            config,
                        )
                        .await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Pins the serving version of every component, so a whole run grades with one version
    /// even if the graders directory changes meanwhile.
    pub fn resolve(&self, registry: &Registry) -> Result<Resolved, DefinitionError> {
        match self {
            Definition::Component {
                component, config, ..
            } => Ok(Resolved::Component {
                grader: pin(registry, "", component)?,
                config: config.clone(),
            }),
            Definition::Multi {
                graders, formula, ..
            } => {
                let mut parts = Vec::new();
                for (key, sub) in graders {
                    let Definition::Component {
                        component, config, ..
                    } = sub
                    else {
                        return Err(DefinitionError::at(
                            format!("graders.{key}.type"),
                            "a multi grader cannot contain another multi grader",
                        ));
                    };
                    parts.push((
                        key.clone(),
                        pin(registry, &format!("graders.{key}"), component)?,
                        config.clone(),
                    ));
                }
                Ok(Resolved::Multi {
                    parts,
                    formula: formula.clone(),
                })
            }
        }
    }
}

fn pin(
    registry: &Registry,
    prefix: &str,
    component: &str,
) -> Result<Arc<LoadedGrader>, DefinitionError> {
    registry.get(component).ok_or_else(|| {
        let why = registry
            .load_error(component)
            .map(|e| format!(" (its last load failed: {e})"))
            .unwrap_or_default();
        DefinitionError::at(
            join(prefix, "component"),
            format!("component `{component}` is not loaded{why}"),
        )
    })
}

async fn validate_leaf(
    registry: &Registry,
    runtime: &GraderRuntime,
    prefix: &str,
    component: &str,
    config: &str,
) -> Result<(), DefinitionError> {
    let grader = pin(registry, prefix, component)?;
    match grader.validate_config(runtime, config).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(DefinitionError::at(
            if prefix.is_empty() {
                "config".to_string()
            } else {
                join(prefix, "config")
            },
            message,
        )),
        Err(outcome) => Err(DefinitionError::at(
            join(prefix, "component"),
            format!(
                "`{component}` failed to validate its config: {}",
                describe(&outcome)
            ),
        )),
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Trap { kind, message, .. } => format!("{}: {message}", kind.name()),
        Outcome::Refused { message }
        | Outcome::InvalidRow { message }
        | Outcome::BudgetExhausted { message } => message.clone(),
        Outcome::GraderError { message, .. } => message.clone(),
        Outcome::Graded { .. } => "graded".to_string(),
    }
}
