//! The check of a definition against the loaded components, and its resolution: every
//! component it names must be loaded and accept its config (the component's own
//! `validate-config`), and a [`Resolved`] tree pins each to the version serving now, so a whole
//! run grades with one version even if the graders directory changes meanwhile.
//!
//! Validation of one definition is bounded as a whole: its sub-graders' `validate-config` calls
//! run [`VALIDATION_CONCURRENCY`] at a time, and all of them together must finish within
//! [`validation_deadline`] (each call is also bounded by the grader timeout), so a `multi` cannot
//! hold a request for the sum of its parts' time limits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt, TryStreamExt};

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

/// How many sub-graders of one definition run `validate-config` at once. Enough that a `multi`
/// at its cap (32) validates in four rounds, few enough that one request does not take every
/// slot of the grader runtime (its own concurrency limit still applies on top).
pub const VALIDATION_CONCURRENCY: usize = 8;

/// A definition's whole validation may take this many grader timeouts: one round of slow
/// sub-graders fits with room to spare, while a definition of many slow parts is refused instead
/// of holding its request for the sum of their limits (32 × 2 s by default).
pub const VALIDATION_TIMEOUT_FACTOR: u32 = 3;

/// The time limit of validating one definition: the grader timeout × [`VALIDATION_TIMEOUT_FACTOR`]
/// (6 s with the default 2 s grader timeout, well within the default request time limit).
pub fn validation_deadline(runtime: &GraderRuntime) -> Duration {
    runtime.limits().timeout * VALIDATION_TIMEOUT_FACTOR
}

impl Definition {
    /// Checks that every component is loaded and accepts its config (its own
    /// `validate-config`), all within [`validation_deadline`].
    pub async fn validate(&self, registry: &Registry) -> Result<(), DefinitionError> {
        let runtime = registry.runtime();
        let leaves: Vec<(String, &str, &str)> = match self {
            Definition::Component {
                component, config, ..
            } => vec![(String::new(), component.as_str(), config.as_str())],
            Definition::Multi { graders, .. } => graders
                .iter()
                .filter_map(|(key, sub)| match sub {
                    Definition::Component {
                        component, config, ..
                    } => Some((
                        format!("graders.{key}"),
                        component.as_str(),
                        config.as_str(),
                    )),
                    // Refused by `parse` already; `resolve` names it again.
                    Definition::Multi { .. } => None,
                })
                .collect(),
        };
        // Boxed and collected first: a stream holding the mapping closure makes the handler's
        // future fail rustc's "Send for every lifetime" check (rust-lang/rust#64552).
        let checks: Vec<BoxFuture<'_, Result<(), DefinitionError>>> = leaves
            .into_iter()
            .map(|(prefix, component, config)| {
                async move { validate_leaf(registry, runtime, &prefix, component, config).await }
                    .boxed()
            })
            .collect();
        validate_within(validation_deadline(runtime), checks).await
    }
}

/// Runs `checks` [`VALIDATION_CONCURRENCY`] at a time and answers the first refusal in their
/// order (so the error named does not depend on which finished first), or a refusal of the whole
/// definition when they have not all finished within `deadline`.
pub async fn validate_within<F>(
    deadline: Duration,
    checks: impl IntoIterator<Item = F>,
) -> Result<(), DefinitionError>
where
    F: Future<Output = Result<(), DefinitionError>>,
{
    let all = stream::iter(checks)
        .buffered(VALIDATION_CONCURRENCY)
        .try_for_each(|()| async { Ok(()) });
    match tokio::time::timeout(deadline, all).await {
        Ok(result) => result,
        Err(_) => Err(DefinitionError::at(
            ".",
            format!(
                "validating the definition's graders took longer than its limit of {} ms \
                 (the grader timeout × {VALIDATION_TIMEOUT_FACTOR}); use fewer or faster graders",
                deadline.as_millis()
            ),
        )),
    }
}

impl Definition {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Barrier;

    #[tokio::test]
    async fn sub_graders_are_checked_concurrently_up_to_the_bound() {
        // Each check waits until VALIDATION_CONCURRENCY of them are running at once: checked one
        // after another (as before) the first never finishes and the deadline refuses.
        let barrier = Arc::new(Barrier::new(VALIDATION_CONCURRENCY));
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let checks = (0..2 * VALIDATION_CONCURRENCY).map(|_| {
            let barrier = barrier.clone();
            let (running, most) = (&running, &most);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                barrier.wait().await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        });
        validate_within(Duration::from_secs(60), checks)
            .await
            .expect("the checks meet each other at the barrier");
        assert_eq!(most.load(Ordering::SeqCst), VALIDATION_CONCURRENCY);
    }

    #[tokio::test]
    async fn checks_past_the_deadline_refuse_the_definition_naming_the_limit() {
        let checks = (0..3).map(|i| async move {
            if i == 1 {
                std::future::pending::<()>().await;
            }
            Ok(())
        });
        let e = validate_within(Duration::from_millis(50), checks)
            .await
            .expect_err("a check that never ends is cut off");
        assert_eq!(e.field, ".");
        assert!(e.message.contains("limit of 50 ms"), "{}", e.message);
    }

    #[tokio::test]
    async fn the_first_refusal_in_key_order_is_answered() {
        let checks = (0..4).map(|i| async move {
            if i == 3 {
                return Err(DefinitionError::at("graders.d.config", "bad"));
            }
            if i == 1 {
                // Finishes after `d`, yet `b` comes first in the definition.
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                return Err(DefinitionError::at("graders.b.config", "bad"));
            }
            Ok(())
        });
        let e = validate_within(Duration::from_secs(60), checks)
            .await
            .expect_err("refused");
        assert_eq!(e.field, "graders.b.config");
    }
}
