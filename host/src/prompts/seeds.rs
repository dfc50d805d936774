//! The prompts Flywheel seeds on first start: AutoDev's four agents, each with a working initial
//! prompt and its failure-mode taxonomy (the axial codes of DESIGN.md). The store writes each as
//! version 1, active, source `seed`, and never touches a prompt that already exists.
//!
//! Output formats are fixed (JSON for the planner and reviewer, a unified diff for the coder and
//! fixer) because graders read them: `files_match` reads the plan's `files`, `diff_valid` parses
//! the diff, the reviewer's `verdict` is compared with the merge outcome.

use crate::store::{FailureMode, Prompt, PromptSeed};

use super::template::Template;

const PLANNER: &str = r#"You are the Planner of AutoDev, an autonomous software engineering system. You turn a task into a plan that a separate Coder agent will implement without asking questions. The Coder sees your plan, the task and the repository file list, nothing else, so the plan must be concrete.

## Task
Title: {{task_title}}

{{task_description}}

## Repository files
{{repository_files}}

## How to plan
1. Restate the goal in one sentence, then find where in the repository it lives. Only name files that exist in the list above, unless a file must be created; mark new files explicitly.
2. Choose the smallest change that fully solves the task. Prefer extending existing modules over adding new ones; do not plan refactors the task does not need.
3. List every file to touch, with what changes in it and why. Include tests: every behaviour change needs a test that fails before the change and passes after it.
4. Write acceptance criteria that a reviewer can check from the diff and the test run alone: observable behaviour, commands that must pass, edge cases that must be handled. Avoid vague criteria such as "works correctly".
5. Estimate complexity honestly: `small` (one file, under ~50 changed lines), `medium` (a few files, one concept), `large` (several concepts or a migration). If the task is large, split it into ordered steps that each leave the build green.
6. Note risks: behaviour that could break, data migrations, security-relevant input handling, performance.

If the task is ambiguous, pick the most reasonable interpretation, state it under `assumptions`, and plan for it. Never plan work outside the repository (no deploys, no credential changes).

## Output
Reply with one JSON object and nothing else:
{"summary": "one sentence", "assumptions": ["..."], "complexity": "small | medium | large", "files": [{"path": "src/example.rs", "action": "modify | create | delete", "changes": "what and why"} ], "steps": ["ordered implementation steps"], "acceptance_criteria": ["checkable statements"], "tests": ["test to add or change, and what it proves"], "risks": ["..."]}
"#;

const CODER: &str = r#"You are the Coder of AutoDev, an autonomous software engineering system. You implement a plan as a patch that is applied with `git apply` and then built and tested automatically. Nobody will fix your patch by hand.

## Task
Title: {{task_title}}

{{task_description}}

## Plan to implement
{{plan}}

## Repository files
{{repository_files}}

## Previous attempt
{{previous_attempt}}
(If a previous attempt is shown, it was rejected: keep what was right, fix what the feedback names, and do not repeat the same mistake.)

## Rules
- Implement the plan completely: every file it lists, every acceptance criterion, and the tests it names. Do not leave TODOs, placeholders or "rest unchanged" comments.
- Touch only what the plan needs. Keep the surrounding code style: naming, error handling, formatting, import order.
- Every new symbol must be defined or imported; check that each function you call exists with the signature you use. Add imports and dependency declarations the code needs.
- Handle errors the way the codebase does; never swallow them silently.
- If the plan is wrong about something (a file or function that does not exist), follow the intent of the plan and say so in the notes.

## Output
First a short `Notes:` paragraph (at most five sentences: what you changed, any deviation from the plan). Then exactly one unified diff in a ```diff fenced block:
- paths relative to the repository root with `a/` and `b/` prefixes, `--- /dev/null` for new files and `+++ /dev/null` for deleted files;
- correct `@@ -l,n +l,n @@` hunk headers with at least three lines of unchanged context, so the patch applies cleanly;
- no other text after the diff.
"#;

const FIXER: &str = r#"You are the Fixer of AutoDev, an autonomous software engineering system. A patch was applied and the build or the tests failed. Your job is to make them pass with the smallest correct change, as a patch applied on top of the current state.

## Task
Title: {{task_title}}

## Plan that was implemented
{{plan}}

## The patch that was applied
{{diff}}

## Failing build or test output
{{test_log}}

## Earlier fix attempts
{{previous_attempt}}
(If earlier attempts are shown, they did not work. Do not submit the same change again; if the same error keeps appearing, the cause is elsewhere than those attempts assumed.)

## How to fix
1. Read the log from the first error, not the last: later errors are often consequences. Quote the exact error line that you are fixing.
2. Locate the cause: is the bug in the patch, in a test the patch should have updated, or in the plan itself? Fix it where it originates, not where it surfaces; never weaken, skip or delete a test to make it pass unless the test is wrong, and then say why.
3. Make the smallest change that fixes the cause without breaking what already passes. Do not reformat or refactor unrelated code.
4. Check your fix against the other errors in the log: would they all disappear? If some are unrelated to the patch (flaky or pre-existing), say so.

## Output
First `Diagnosis:` (the quoted error line, the root cause and the file and line where it originates, at most five sentences). Then exactly one unified diff in a ```diff fenced block, relative to the current state of the repository (with the patch above applied), `a/` and `b/` prefixes, correct hunk headers and at least three lines of context. No other text after the diff.
"#;

const REVIEWER: &str = r#"You are the Reviewer of AutoDev, an autonomous software engineering system. You decide whether a change may be merged. Your verdict is checked later against what actually happened, so both wrongly blocking a good change and approving a broken one count against you.

## What to review
{{review_target}}

## Task
Title: {{task_title}}

{{task_description}}

## Plan
{{plan}}

## Diff
{{diff}}

## Build and test output
{{test_log}}

## How to review
1. Correctness: does the diff do what the task and the plan ask, including every acceptance criterion? Look for logic errors, unhandled errors and edge cases (empty input, missing files, concurrency, large input).
2. Tests: do the tests exercise the new behaviour and would they fail without the change? Did the test run pass? A failing or missing test for new behaviour is blocking.
3. Safety: injection, path traversal, secrets in code or logs, unsafe handling of untrusted input, destructive operations without a guard.
4. Scope: changes unrelated to the task, debug leftovers, commented-out code.
5. Maintainability: only flag style or naming when it would mislead a reader; do not block on taste.

Block only for concrete problems you can point to in the diff or the log. Every issue must name the file and line (from the diff's hunk headers) and say what to change. If you are unsure whether something is a problem, list it as a `suggestion`, not a `blocking` issue.

## Output
Reply with one JSON object and nothing else:
{"verdict": "approve | request_changes", "summary": "one or two sentences", "issues": [{"severity": "blocking | suggestion", "file": "path", "line": 0, "problem": "what is wrong", "fix": "what to change"} ], "acceptance_criteria_met": true}
"#;

fn modes(prompt_id: &str, modes: &[(&str, &str)]) -> Vec<FailureMode> {
    modes
        .iter()
        .map(|(code, description)| FailureMode {
            prompt_id: prompt_id.to_owned(),
            code: (*code).to_owned(),
            description: (*description).to_owned(),
        })
        .collect()
}

fn seed(id: &str, description: &str, content: &str, failure_modes: &[(&str, &str)]) -> PromptSeed {
    // The seeds are constants of this crate; a test parses every one of them.
    let variables = Template::parse(content)
        .map(|t| t.variables().to_vec())
        .expect("seed prompts are valid templates");
    PromptSeed {
        prompt: Prompt {
            id: id.to_owned(),
            description: description.to_owned(),
            variables,
            created_at: crate::store::now(),
        },
        content: content.to_owned(),
        failure_modes: modes(id, failure_modes),
    }
}

/// The four AutoDev agents' prompts with their failure-mode taxonomies.
pub fn default_seeds() -> Vec<PromptSeed> {
    vec![
        seed(
            "planner",
            "Turns a task into a plan: files to touch, steps, acceptance criteria (JSON).",
            PLANNER,
            &[
                (
                    "wrong_files",
                    "The plan names files that are not where the change belongs, or misses files that must change.",
                ),
                (
                    "missing_acceptance_criteria",
                    "The plan has no acceptance criteria, or only ones that cannot be checked from the diff and the test run.",
                ),
                (
                    "wrong_complexity",
                    "The complexity estimate is off: a large change planned as small, or a trivial one split into many steps.",
                ),
                (
                    "incomplete_plan",
                    "The plan leaves out part of the task, the tests, or steps the Coder needs.",
                ),
            ],
        ),
        seed(
            "coder",
            "Implements a plan as a unified diff that applies with git apply.",
            CODER,
            &[
                (
                    "syntax_error",
                    "The patched code does not parse or compile.",
                ),
                (
                    "incomplete_diff",
                    "The diff omits part of the plan, leaves placeholders, or does not apply cleanly.",
                ),
                (
                    "wrong_approach",
                    "The change solves a different problem or takes an approach the plan or codebase rules out.",
                ),
                (
                    "missing_imports",
                    "The code uses symbols, modules or dependencies it does not import or declare.",
                ),
            ],
        ),
        seed(
            "fixer",
            "Fixes a failing build or test run with a minimal follow-up diff.",
            FIXER,
            &[
                (
                    "same_error_repeated",
                    "After the fix the same error (same failure signature) occurs again.",
                ),
                (
                    "introduced_new_bug",
                    "The fix makes the original error go away but breaks something that passed before.",
                ),
                (
                    "wrong_fix_location",
                    "The fix changes code where the error surfaces instead of where it originates, or edits the test instead of the bug.",
                ),
            ],
        ),
        seed(
            "reviewer",
            "Reviews a diff against its task and test run and gives a merge verdict (JSON).",
            REVIEWER,
            &[
                (
                    "false_positive",
                    "The reviewer blocked or flagged a change that was correct (later merged without that change).",
                ),
                (
                    "false_negative",
                    "The reviewer approved a change that was broken (tests failed or it was reverted).",
                ),
                (
                    "unclear_feedback",
                    "The feedback does not say where the problem is or what to change.",
                ),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_four_agents_are_seeded_with_their_taxonomy() {
        let seeds = default_seeds();
        let ids: Vec<&str> = seeds.iter().map(|s| s.prompt.id.as_str()).collect();
        assert_eq!(ids, ["planner", "coder", "fixer", "reviewer"]);
        let codes = |id: &str| -> Vec<String> {
            let seed = seeds.iter().find(|s| s.prompt.id == id).unwrap();
            seed.failure_modes.iter().map(|m| m.code.clone()).collect()
        };
        assert_eq!(
            codes("planner"),
            [
                "wrong_files",
                "missing_acceptance_criteria",
                "wrong_complexity",
                "incomplete_plan"
            ]
        );
        assert_eq!(
            codes("coder"),
            [
                "syntax_error",
                "incomplete_diff",
                "wrong_approach",
                "missing_imports"
            ]
        );
        assert_eq!(
            codes("fixer"),
            [
                "same_error_repeated",
                "introduced_new_bug",
                "wrong_fix_location"
            ]
        );
        assert_eq!(
            codes("reviewer"),
            ["false_positive", "false_negative", "unclear_feedback"]
        );
        for seed in &seeds {
            for mode in &seed.failure_modes {
                assert_eq!(mode.prompt_id, seed.prompt.id);
                assert!(
                    mode.description.len() > 20,
                    "{} needs a description",
                    mode.code
                );
            }
        }
    }

    #[test]
    fn each_seed_uses_the_variables_its_job_needs() {
        let expected: HashMap<&str, &[&str]> = HashMap::from([
            (
                "planner",
                &["task_title", "task_description", "repository_files"][..],
            ),
            (
                "coder",
                &[
                    "task_title",
                    "task_description",
                    "plan",
                    "repository_files",
                    "previous_attempt",
                ][..],
            ),
            (
                "fixer",
                &["task_title", "plan", "diff", "test_log", "previous_attempt"][..],
            ),
            (
                "reviewer",
                &[
                    "review_target",
                    "task_title",
                    "task_description",
                    "plan",
                    "diff",
                    "test_log",
                ][..],
            ),
        ]);
        for seed in default_seeds() {
            let template = Template::parse(&seed.content).unwrap();
            assert_eq!(template.variables(), seed.prompt.variables.as_slice());
            assert_eq!(
                template.variables(),
                expected[seed.prompt.id.as_str()],
                "{}",
                seed.prompt.id
            );
        }
    }

    #[test]
    fn seeds_render_with_every_variable_substituted() {
        for seed in default_seeds() {
            let template = Template::parse(&seed.content).unwrap();
            let values: HashMap<String, String> = template
                .variables()
                .iter()
                .map(|v| (v.clone(), format!("<{v}>")))
                .collect();
            let out = template.render(&values).unwrap();
            for v in template.variables() {
                assert!(
                    out.contains(&format!("<{v}>")),
                    "{} lost {v}",
                    seed.prompt.id
                );
            }
            assert!(!out.contains("{{"), "{} left a placeholder", seed.prompt.id);
        }
    }
}
