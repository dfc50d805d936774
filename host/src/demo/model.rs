//! The demo's model: a tiny OpenAI-compatible `POST /v1/chat/completions` on 127.0.0.1, built
//! for `flywheel demo` alone. It plays two parts, both deterministic:
//!
//! - **the planner's model**: it reads the files a task names (the backticked paths of the
//!   prompt's `## Task` section) and answers a JSON plan of them. Like a real model it sometimes
//!   wanders: for a share of tasks (chosen by a hash of the task text, so the same task always
//!   gets the same answer) it also plans [`DISTRACTORS`], files the task does not touch. Told
//!   [`CAREFUL_INSTRUCTION`] (the improved prompt's new rule), it wanders far less often.
//! - **the judge** of the seeded `plan_completeness` model grader (a request with a structured
//!   output schema): 5 when the plan names exactly the task's files, else 2.
//! - **the reflection model** of `flywheel optimize` (a request that shows the current template
//!   between `Current template:` fences, as [`crate::optimizer::reflection::request`] writes
//!   it): when the failing examples' critiques or failure modes point at plans that add shared
//!   files ([`DISTRACTORS`], `wrong_files`), it proposes the template with
//!   [`CAREFUL_INSTRUCTION`]; otherwise it proposes a rewording that changes nothing the
//!   planner's model cares about, as a reflection model guessing without evidence would.
//!
//! Why not `tests/fake-model`: that is a scriptable test server (queued answers, errors, stalls,
//! recorded requests) in a test-only crate the binary must not depend on; the demo needs none of
//! that, only answers whose quality depends on the prompt, which is this module's whole job.

use std::net::SocketAddr;

use anyhow::Context;
use axum::{Json, Router, routing::post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The rule the improved planner prompt adds; the model follows it when it is in the prompt.
pub const CAREFUL_INSTRUCTION: &str = "Plan only the files the task itself names in backticks (and their tests); never add shared files such as `src/lib.rs` or `src/config.rs` \"for completeness\".";

/// Files a wandering plan adds although the task does not touch them.
pub const DISTRACTORS: [&str; 2] = ["src/lib.rs", "src/config.rs"];

/// Percent of tasks on which the model wanders without / with the careful instruction.
const WANDER_PERCENT: (u64, u64) = (55, 8);

/// The model name it reports.
pub const MODEL: &str = "demo-model";

/// The running model server; stopped when dropped.
pub struct DemoModel {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DemoModel {
    /// Binds 127.0.0.1 on a free port and serves in the background.
    pub async fn start() -> anyhow::Result<DemoModel> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the demo model on 127.0.0.1")?;
        let addr = listener
            .local_addr()
            .context("reading the model's address")?;
        let router = Router::new().route("/v1/chat/completions", post(chat));
        let task = tokio::spawn(async move {
            // The demo ends by dropping the model; an error here only means it stopped.
            let _ = axum::serve(listener, router).await;
        });
        Ok(DemoModel { addr, task })
    }

    /// The base URL to configure as `OPENAI_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for DemoModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn chat(Json(body): Json<Value>) -> Json<Value> {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let text = |m: &Value| m["content"].as_str().unwrap_or_default().to_owned();
    let prompt: String = messages.iter().map(text).collect::<Vec<_>>().join("\n");
    let judging = body.get("response_format").is_some();
    let user = messages.iter().rev().find(|m| m["role"] == "user");
    let user = user.map(text).unwrap_or_default();
    let answer = if judging {
        judge(&user)
    } else if let Some(current) = reflection_template(&user) {
        reflect(current, &user)
    } else {
        plan(&user).to_string()
    };
    let prompt_tokens = tokens_of(&prompt);
    let completion_tokens = tokens_of(&answer);
    Json(json!({
        "id": "demo-completion",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": answer },
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    }))
}

/// About four characters a token, as OpenAI's tokenizers average on English and code.
pub fn tokens_of(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// The planner's answer to a rendered planner prompt.
pub fn plan(prompt: &str) -> Value {
    let task = section(prompt, "## Task", "## Repository files");
    let mut files = backticked_paths(task);
    let careful = prompt.contains(CAREFUL_INSTRUCTION);
    let limit = if careful {
        WANDER_PERCENT.1
    } else {
        WANDER_PERCENT.0
    };
    if fnv1a(task.as_bytes()) % 100 < limit {
        files.extend(DISTRACTORS.iter().map(|f| (*f).to_owned()));
    }
    let title = task
        .lines()
        .find_map(|l| l.strip_prefix("Title: "))
        .unwrap_or("the task");
    json!({
        "summary": format!("Implement: {title}"),
        "assumptions": [],
        "complexity": if files.len() > 2 { "medium" } else { "small" },
        "files": files.iter().map(|f| json!({
            "path": f,
            "action": "modify",
            "changes": format!("the change {title} needs in {f}")
        })).collect::<Vec<_>>(),
        "steps": ["change the code", "add the test", "run the tests"],
        "acceptance_criteria": ["the new test passes", "the existing tests pass"],
        "tests": ["a test of the new behaviour"],
        "risks": []
    })
}

/// The opening of a reflection request's template (see
/// [`crate::optimizer::reflection::request`]) and what follows its closing fence.
const REFLECTION_OPEN: &str = "Current template:\n```\n";
const REFLECTION_CLOSE: &str = "\n```\n\nTemplate variables it must keep";

/// The current template of a reflection request; `None` for any other request.
fn reflection_template(user: &str) -> Option<&str> {
    let rest = user.strip_prefix(REFLECTION_OPEN)?;
    rest.find(REFLECTION_CLOSE).map(|end| &rest[..end])
}

/// The reflection model's answer: the revised template in one ``` block.
fn reflect(current: &str, request: &str) -> String {
    let examples = request.split_once("Failing examples:").map_or("", |s| s.1);
    let points_to_shared_files = examples.contains("Failure mode: wrong_files")
        || examples
            .lines()
            .filter(|l| l.starts_with("Critique: "))
            .any(|l| DISTRACTORS.iter().any(|f| l.contains(f)));
    let revised = if points_to_shared_files && !current.contains(CAREFUL_INSTRUCTION) {
        with_careful_rule(current)
    } else {
        // No evidence for the rule: a guess that leaves the planner's behaviour as it was.
        format!("{current}\nRead the task twice before you plan.")
    };
    format!("The failures share one cause; the revised template:\n```\n{revised}\n```")
}

/// `template` with [`CAREFUL_INSTRUCTION`] added: to the first step of the seeded planner's
/// "How to plan" when it has it, else as the template's first line.
pub fn with_careful_rule(template: &str) -> String {
    match template.find(SECOND_STEP) {
        Some(at) => format!(
            "{}\n   {CAREFUL_INSTRUCTION}{}",
            &template[..at],
            &template[at..]
        ),
        None => format!("{CAREFUL_INSTRUCTION}\n\n{template}"),
    }
}

/// Where the seeded planner's "How to plan" begins its second step.
pub const SECOND_STEP: &str = "\n2. Choose the smallest change";

/// The judge's answer for `plan_completeness`: `{"steps", "result"}`.
fn judge(user: &str) -> String {
    let task = section(user, "Task description:", "The planner's plan:");
    let wanted = backticked_paths(task);
    let planned = planned_files(section(user, "The planner's plan:", "\u{0}"));
    let exact = !wanted.is_empty() && planned == wanted;
    let (result, conclusion) = if exact {
        (
            5,
            "the plan names exactly the files the task needs, with tests",
        )
    } else {
        (
            2,
            "the plan touches files the task does not need, so the coder must guess",
        )
    };
    json!({
        "steps": [{ "description": "Files: compared the plan's files with the task", "conclusion": conclusion }],
        "result": result
    })
    .to_string()
}

/// The files of a plan's JSON (`files[].path`), in order; none when it is not a plan.
pub fn planned_files(plan: &str) -> Vec<String> {
    serde_json::from_str::<Value>(plan.trim())
        .ok()
        .and_then(|v| {
            v["files"].as_array().map(|files| {
                files
                    .iter()
                    .filter_map(|f| f["path"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The text between `start` and `end` (to the end when `end` is missing; empty when `start` is).
fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let Some(begin) = text.find(start) else {
        return "";
    };
    let rest = &text[begin + start.len()..];
    rest.find(end).map_or(rest, |stop| &rest[..stop])
}

/// Backticked spans that look like paths (hold a `/` or a `.`), without duplicates, in order.
pub fn backticked_paths(text: &str) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        let looks_like_path = span.contains('/') || span.contains('.');
        if i % 2 == 1 && looks_like_path && !span.contains(' ') && !paths.iter().any(|p| p == span)
        {
            paths.push(span.to_owned());
        }
    }
    paths
}

/// FNV-1a, 64 bits: a stable hash, the same on every platform and release.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(careful: bool, n: usize) -> String {
        format!(
            "Intro {}\n## Task\nTitle: Fix parsing (#{n})\n\nFix it in `src/parse.rs`; test in `tests/parse.rs`.\n\n## Repository files\n`src/lib.rs`\n",
            if careful { CAREFUL_INSTRUCTION } else { "" }
        )
    }

    #[test]
    fn plans_name_the_task_files_and_the_careful_rule_makes_fewer_plans_wander() {
        let wandering = |careful: bool| {
            (0..200)
                .filter(|n| planned_files(&plan(&prompt(careful, *n)).to_string()).len() > 2)
                .count()
        };
        let first = planned_files(&plan(&prompt(false, 1)).to_string());
        assert_eq!(&first[..2], ["src/parse.rs", "tests/parse.rs"]);
        let (loose, careful) = (wandering(false), wandering(true));
        assert!((80..140).contains(&loose), "{loose} of 200 wandered");
        assert!(careful < 35, "{careful} of 200 wandered with the rule");
    }

    #[test]
    fn the_judge_scores_exact_plans_high_and_wandering_ones_low() {
        let user = |files: &[&str]| {
            let plan =
                json!({ "files": files.iter().map(|f| json!({"path": f})).collect::<Vec<_>>() });
            format!(
                "Task: t\n\nTask description:\nIn `a/b.rs` and `t/b.rs`.\n\nThe planner's plan:\n{plan}"
            )
        };
        let score =
            |answer: String| serde_json::from_str::<Value>(&answer).unwrap()["result"].clone();
        assert_eq!(score(judge(&user(&["a/b.rs", "t/b.rs"]))), 5);
        assert_eq!(score(judge(&user(&["a/b.rs", "t/b.rs", "src/lib.rs"]))), 2);
        assert_eq!(score(judge("not a plan")), 2);
    }

    #[test]
    fn the_reflection_proposes_the_careful_rule_only_when_the_failures_point_to_it() {
        let request = |examples: &str| {
            format!(
                "{REFLECTION_OPEN}Plan {{{{task}}}}.{SECOND_STEP} of it.{REFLECTION_CLOSE}: {{{{task}}}}\n\nFailing examples:\n{examples}"
            )
        };
        let proposed = |user: &str| {
            let current = reflection_template(user).expect("a reflection request");
            crate::optimizer::reflection::parse_answer(&reflect(current, user)).expect("a block")
        };
        let pointed = request("### Example 1\nCritique: Also plans src/lib.rs for nothing.\n");
        assert_eq!(
            proposed(&pointed),
            format!("Plan {{{{task}}}}.\n   {CAREFUL_INSTRUCTION}{SECOND_STEP} of it.")
        );
        let coded = request("### Example 1\nFailure mode: wrong_files\n");
        assert!(proposed(&coded).contains(CAREFUL_INSTRUCTION));
        let elsewhere = request("### Example 1\nCritique: Too long.\nFailure mode: verbose\n");
        assert!(!proposed(&elsewhere).contains(CAREFUL_INSTRUCTION));
        assert!(proposed(&elsewhere).starts_with("Plan {{task}}."));
        // A task prompt is not a reflection request.
        assert_eq!(reflection_template("## Task\nTitle: x"), None);
    }
}
