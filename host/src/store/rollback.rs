//! The rule of what a rollback returns to, computed from the deploy history. Both backends call
//! it inside their write transaction, so the rule lives once and is tested without a database.
//!
//! History is read as an undo stack: a deploy from version X pushes X, a rollback pops. The top
//! is the version that was active before the current one was deployed. Rolling back twice
//! therefore goes two deploys back instead of toggling between the last two versions.

use super::DeployAction;

/// The version a rollback must re-activate, given the history oldest first as
/// `(from_version, action)`; `None` when there is nothing to undo.
pub(crate) fn rollback_target(
    history: impl IntoIterator<Item = (Option<i64>, DeployAction)>,
) -> Option<i64> {
    let mut undo: Vec<i64> = Vec::new();
    for (from, action) in history {
        match action {
            // The first activation of a prompt (from = None) has nothing to return to.
            DeployAction::Deploy => undo.extend(from),
            DeployAction::Rollback => {
                undo.pop();
            }
        }
    }
    undo.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeployAction::{Deploy, Rollback};

    #[test]
    fn empty_history_has_nothing_to_roll_back_to() {
        assert_eq!(rollback_target([]), None);
    }

    #[test]
    fn first_activation_alone_has_nothing_to_roll_back_to() {
        assert_eq!(rollback_target([(None, Deploy)]), None);
    }

    #[test]
    fn rollback_returns_to_the_version_active_before_the_last_deploy() {
        assert_eq!(
            rollback_target([(None, Deploy), (Some(1), Deploy)]),
            Some(1)
        );
        assert_eq!(
            rollback_target([(None, Deploy), (Some(1), Deploy), (Some(2), Deploy)]),
            Some(2)
        );
    }

    #[test]
    fn repeated_rollbacks_walk_back_through_deploys_then_stop() {
        let mut history = vec![(None, Deploy), (Some(1), Deploy), (Some(2), Deploy)];
        history.push((Some(3), Rollback)); // 3 -> 2
        assert_eq!(rollback_target(history.clone()), Some(1));
        history.push((Some(2), Rollback)); // 2 -> 1
        assert_eq!(rollback_target(history), None);
    }

    #[test]
    fn a_deploy_after_a_rollback_can_itself_be_rolled_back() {
        // 1 -> 2, rollback to 1, 1 -> 3: undoing returns to 1.
        let history = [
            (None, Deploy),
            (Some(1), Deploy),
            (Some(2), Rollback),
            (Some(1), Deploy),
        ];
        assert_eq!(rollback_target(history), Some(1));
    }
}
