//! The parsed definition tree ([`Definition`]: one component with its config, or a `multi`
//! of them with a formula) and the error that refuses a definition, naming the field.

use std::collections::BTreeMap;

use crate::graders::formula::Expr;

/// A definition was refused; `field` is its path in the JSON (`graders.name.operation`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DefinitionError {
    /// The path of the offending field (`.` for the whole definition).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl DefinitionError {
    pub(super) fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        DefinitionError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A parsed definition.
#[derive(Debug, Clone)]
pub enum Definition {
    /// One component with its config (JSON text).
    Component {
        /// The definition's `name`, when given.
        name: Option<String>,
        /// The component that runs it.
        component: String,
        /// The config passed to every call, as JSON text.
        config: String,
    },
    /// Several graders combined by a formula.
    Multi {
        /// The definition's `name`.
        name: Option<String>,
        /// The sub-graders by variable name.
        graders: BTreeMap<String, Definition>,
        /// The parsed `calculate_output`.
        formula: Expr,
    },
}

impl Definition {
    /// The components this definition needs, in order.
    pub fn components(&self) -> Vec<&str> {
        match self {
            Definition::Component { component, .. } => vec![component.as_str()],
            Definition::Multi { graders, .. } => {
                graders.values().flat_map(|g| g.components()).collect()
            }
        }
    }
}

/// `prefix.field`, or `field` at the top.
pub(super) fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}
