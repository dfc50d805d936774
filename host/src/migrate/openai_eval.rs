//! `flywheel migrate openai-eval` / `POST /api/migrate/openai-eval`: an OpenAI eval definition,
//! its items JSONL and optionally a run's output items become a prompt's grader definitions, a
//! dataset and recorded runs with their grader results.
//!
//! # What becomes what
//!
//! - `eval.json`: the body of `POST /v1/evals` or the `Eval` object OpenAI returns (its
//!   `data_source_config` has `item_schema`, or `schema.properties.item`). Only `custom` data
//!   sources carry rows. Each `testing_criteria[i]` becomes a stored grader definition of the
//!   prompt, named by its `name` (characters a grader name cannot hold become `_`), without
//!   OpenAI's `id`; it is checked like any definition ([`crate::grading::stored`]: its shape,
//!   then its component's own `validate-config`: `python` in the sandbox, `score_model` and
//!   `label_model` against the configured model endpoint). A name the prompt already uses is a
//!   problem: a migration never replaces a definition.
//! - `items.jsonl`: a line `{"item": {...}, "sample"?: {...}}` per row, each `item` checked
//!   against the `item_schema`; the file becomes a new version of the dataset (named by
//!   `dataset`, else after the eval), with ids and splits exactly as an upload of the same
//!   file ([`crate::datasets`]), so exporting the dataset gives the same lines back.
//! - `output_items.jsonl` (from `GET /v1/evals/{id}/runs/{run}/output_items`, a line per
//!   `eval.run.output_item`): each becomes a recorded production run of the prompt's active
//!   version, `input` = `datasource_item`, `output` = the text of `sample.output`'s assistant
//!   messages, model and tokens from `sample`, task id `openai-eval:<eval>:<datasource_item_id>`
//!   (attempt 1, so migrating the same file again records nothing twice). Its `results` become
//!   the run's grader results under the graders' names (a result is matched to its criterion by
//!   name, by OpenAI's criterion id, or by that id's `<name>-<uuid>` form); the runs are marked
//!   graded so the automatic grader does not grade them again. An output item whose sample
//!   errored or has no text has nothing to record and is a problem.
//!
//! # All or nothing
//!
//! Every input is read and checked before anything is written, and every problem is reported
//! (up to [`MAX_PROBLEMS`]). Then the writes: grader definitions, the dataset version (one
//! transaction), the runs (one transaction), their grader results (one transaction). Should
//! the database fail between two of them, the definitions and the dataset already written
//! are removed again; runs, once committed, are left (they are production data, and migrating
//! again completes them without duplicates).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::datasets::{self, CreateDataset, DatasetError};
use crate::graders::Definition;
use crate::graders::registry::Registry;
use crate::grading::stored;
use crate::prompts::create::CreatePrompt;
use crate::prompts::{PromptError, PromptRegistry};
use crate::runs::parse_runs;
use crate::store::{
    DatasetVersion, GradedRun, GraderVerdict, NewGraderDefinition, NewRun, Store, StoreError,
};

/// Problems listed at most; beyond, the count says how many more.
pub const MAX_PROBLEMS: usize = 200;

/// The body of `POST /api/migrate/openai-eval`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MigrateOpenaiEval {
    /// The prompt the graders, dataset and runs belong to: an existing one, or with `newPrompt`
    /// the id of the prompt to create [default with `newPrompt`: from the eval's name].
    #[serde(default)]
    pub prompt_id: String,
    /// Create the prompt (it must not exist yet): id `promptId`, else from the eval's name;
    /// its description names the eval; its first version, active, is `promptContent`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_prompt: bool,
    /// With `newPrompt`, the first version's template [default: a line `name: {{name}}` per
    /// property of the eval's `item_schema`, to replace by an import once the real prompt is
    /// at hand].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_content: Option<String>,
    /// The eval definition (`eval.json`): the body of OpenAI's `POST /v1/evals` or an `Eval`.
    #[schema(value_type = Object)]
    pub eval: Value,
    /// The text of the items JSONL file.
    pub items: String,
    /// The text of the output items JSONL file of one eval run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_items: Option<String>,
    /// The dataset's name [default: from the eval's name].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

/// One thing that cannot be migrated, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// `eval.testing_criteria[2].operation`, `items.jsonl:7`, `output_items.jsonl:3.results[0]`.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

/// What a migration wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Migrated {
    /// The prompt.
    pub prompt_id: String,
    /// The grader definitions created, by name.
    pub graders: Vec<String>,
    /// The dataset version created.
    pub dataset: DatasetVersion,
    /// Output items recorded as runs (0 without output items).
    pub runs: usize,
    /// Of those, runs recorded by this migration (the others were recorded by an earlier one).
    pub runs_created: usize,
    /// Grader results stored on the runs.
    pub grader_results: usize,
}

/// Why nothing was migrated.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The inputs hold problems; nothing was written.
    #[error("{} problem(s); nothing was migrated{}", .problems.len(), more_text(*.more))]
    Refused {
        /// The problems, in input order.
        problems: Vec<Problem>,
        /// Problems found beyond [`MAX_PROBLEMS`].
        more: usize,
    },
    /// The grader components are still loading; retry shortly.
    #[error("the grader components are still loading; retry shortly")]
    Loading,
    /// The store refused or failed (`NotFound` for an unknown prompt).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn more_text(more: usize) -> String {
    if more == 0 {
        String::new()
    } else {
        format!(" ({more} more not listed)")
    }
}

/// Collects problems.
#[derive(Default)]
struct Problems {
    list: Vec<Problem>,
    more: usize,
}

impl Problems {
    fn add(&mut self, at: impl Into<String>, message: impl Into<String>) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(Problem {
                at: at.into(),
                message: message.into(),
            });
        } else {
            self.more += 1;
        }
    }
}

/// A testing criterion ready to store.
struct Grader {
    name: String,
    definition: Value,
}

/// Everything checked, ready to write.
struct Plan {
    /// The prompt to create first, with `newPrompt`.
    prompt: Option<CreatePrompt>,
    graders: Vec<Grader>,
    dataset: String,
    runs: Vec<NewRun>,
    /// Per run: its verdicts.
    verdicts: Vec<Vec<GraderVerdict>>,
}

/// Migrates an OpenAI eval into `request.prompt_id`, by `actor`: checks everything, then
/// writes everything (see the module's docs).
pub async fn migrate(
    store: &Arc<dyn Store>,
    registry: &Registry,
    request: MigrateOpenaiEval,
    actor: &str,
) -> Result<Migrated, MigrateError> {
    let mut request = request;
    let mut problems = Problems::default();
    let prompt = if request.new_prompt {
        new_prompt(store, &mut request, &mut problems).await?
    } else if request.prompt_id.is_empty() {
        problems.add(
            "promptId",
            "missing: name an existing prompt, or set newPrompt to create one",
        );
        None
    } else {
        store.get_prompt(&request.prompt_id).await?;
        None
    };
    let mut plan = check(store, registry, &request, problems).await?;
    plan.prompt = prompt;
    write(store, request, plan, actor).await
}

/// Longest prompt id.
const MAX_PROMPT_ID_CHARS: usize = 50;

/// A prompt id from the eval's name: lowercase, every run of other characters one `-`,
/// starting with a letter, at most 50 characters; `None` when nothing is left.
fn prompt_id_from(name: &str) -> Option<String> {
    let mut id = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            id.push(c);
        } else if !id.is_empty() && !id.ends_with('-') {
            id.push('-');
        }
    }
    let id: String = id
        .trim_start_matches(|c: char| !c.is_ascii_lowercase())
        .chars()
        .take(MAX_PROMPT_ID_CHARS)
        .collect();
    let id = id.trim_end_matches('-').to_owned();
    (!id.is_empty()).then_some(id)
}

/// The first version's template when none is given: a line per item property the template
/// language can name, so rendering a row shows what the item holds.
fn placeholder_content(eval: &Value) -> String {
    let config = eval.get("data_source_config");
    let schema = config.and_then(|c| c.get("item_schema")).or_else(|| {
        config
            .and_then(|c| c.get("schema"))
            .and_then(|s| s.pointer("/properties/item"))
    });
    let names: Vec<&String> = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| {
            p.keys()
                .filter(|k| {
                    let mut chars = k.chars();
                    chars
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return "Migrated from an OpenAI eval: replace this template with the prompt's text.\n"
            .to_owned();
    }
    names
        .iter()
        .map(|name| format!("{name}: {{{{{name}}}}}\n"))
        .collect()
}

/// With `newPrompt`: fixes the id (`promptId`, else from the eval's name) and checks that the
/// prompt can be created: a prompt of that id already existing is a conflict, never a merge.
async fn new_prompt(
    store: &Arc<dyn Store>,
    request: &mut MigrateOpenaiEval,
    problems: &mut Problems,
) -> Result<Option<CreatePrompt>, MigrateError> {
    let name = request.eval.get("name").and_then(Value::as_str);
    if request.prompt_id.is_empty() {
        match name.and_then(prompt_id_from) {
            Some(id) => request.prompt_id = id,
            None => {
                problems.add(
                    "promptId",
                    "the eval's name gives no prompt id (a-z, 0-9, `_`, `-`, starting with a letter): name the prompt",
                );
                return Ok(None);
            }
        }
    }
    match store.get_prompt(&request.prompt_id).await {
        Ok(_) => {
            problems.add(
                "promptId",
                format!(
                    "prompt {} already exists: migrate into it without newPrompt, or name another",
                    request.prompt_id
                ),
            );
            return Ok(None);
        }
        Err(StoreError::NotFound(_)) => {}
        Err(other) => return Err(other.into()),
    }
    let eval_id = request.eval.get("id").and_then(Value::as_str);
    let description = match (name, eval_id) {
        (Some(name), Some(id)) => format!("Migrated from OpenAI eval {name:?} ({id})"),
        (Some(name), None) => format!("Migrated from OpenAI eval {name:?}"),
        (None, Some(id)) => format!("Migrated from OpenAI eval {id}"),
        (None, None) => "Migrated from an OpenAI eval".to_owned(),
    };
    let prompt = CreatePrompt {
        id: request.prompt_id.clone(),
        description: description.chars().take(1000).collect(),
        variables: None,
        failure_modes: Vec::new(),
        content: request
            .prompt_content
            .clone()
            .unwrap_or_else(|| placeholder_content(&request.eval)),
    };
    // The registry's own checks, without writing: the same refusals as `POST /api/prompts`.
    if let Err(error) = crate::prompts::create::check(&prompt) {
        problems.add(
            if request.prompt_content.is_some() {
                "promptContent"
            } else {
                "promptId"
            },
            error.to_string(),
        );
        return Ok(None);
    }
    Ok(Some(prompt))
}

async fn check(
    store: &Arc<dyn Store>,
    registry: &Registry,
    request: &MigrateOpenaiEval,
    mut problems: Problems,
) -> Result<Plan, MigrateError> {
    let eval = &request.eval;
    if !eval.is_object() {
        problems.add("eval", "the eval definition must be a JSON object");
    }
    let item_schema = item_schema(eval, &mut problems);
    let (graders, aliases) = criteria(store, registry, request, &mut problems).await?;
    let dataset = dataset_name(request, &mut problems);
    if let Some(name) = &dataset {
        match store.get_dataset(name).await {
            Ok(existing) if existing.prompt_id != request.prompt_id => problems.add(
                "dataset",
                format!(
                    "dataset {name} belongs to prompt {}, not {}",
                    existing.prompt_id, request.prompt_id
                ),
            ),
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    check_items(&request.items, item_schema.as_ref(), &mut problems);
    let eval_key = eval
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| dataset.clone())
        .unwrap_or_default();
    let (runs, verdicts) = match &request.output_items {
        Some(text) => output_items(text, request, &eval_key, &aliases, &mut problems),
        None => (Vec::new(), Vec::new()),
    };
    if !problems.list.is_empty() {
        return Err(MigrateError::Refused {
            problems: problems.list,
            more: problems.more,
        });
    }
    Ok(Plan {
        prompt: None,
        graders,
        dataset: dataset.unwrap_or_default(),
        runs,
        verdicts,
    })
}

/// The item schema of a `custom` data source, compiled.
fn item_schema(eval: &Value, problems: &mut Problems) -> Option<jsonschema::Validator> {
    let config = eval.get("data_source_config");
    let Some(config) = config.and_then(Value::as_object) else {
        problems.add("eval.data_source_config", "missing or not an object");
        return None;
    };
    match config.get("type").and_then(Value::as_str) {
        Some("custom") => {}
        other => {
            problems.add(
                "eval.data_source_config.type",
                format!(
                    "{other:?}: only a custom data source has rows to migrate (logs and stored_completions lived in OpenAI's storage)"
                ),
            );
            return None;
        }
    }
    // A create request has `item_schema`; a returned Eval has `schema` with `item` inside.
    let schema = config.get("item_schema").or_else(|| {
        config
            .get("schema")
            .and_then(|s| s.pointer("/properties/item"))
    });
    let Some(schema) = schema else {
        problems.add(
            "eval.data_source_config.item_schema",
            "missing (neither item_schema nor schema.properties.item)",
        );
        return None;
    };
    match jsonschema::validator_for(schema) {
        Ok(validator) => Some(validator),
        Err(e) => {
            problems.add(
                "eval.data_source_config.item_schema",
                format!("not a usable JSON schema: {e}"),
            );
            None
        }
    }
}

/// The testing criteria as grader definitions, each checked like any stored definition, and
/// the grader name of every named criterion (valid or not) by each name OpenAI's results may
/// use for it, so a result of a refused criterion is not reported a second time.
async fn criteria(
    store: &Arc<dyn Store>,
    registry: &Registry,
    request: &MigrateOpenaiEval,
    problems: &mut Problems,
) -> Result<(Vec<Grader>, HashMap<String, String>), MigrateError> {
    let mut aliases = HashMap::new();
    let Some(list) = request
        .eval
        .get("testing_criteria")
        .and_then(Value::as_array)
    else {
        problems.add("eval.testing_criteria", "missing or not an array");
        return Ok((Vec::new(), aliases));
    };
    // A prompt still to create (or not named) has no grader yet.
    let existing: Vec<String> = match store.list_graders(Some(&request.prompt_id)).await {
        Ok(list) => list.into_iter().map(|g| g.name).collect(),
        Err(StoreError::NotFound(_)) if request.new_prompt || request.prompt_id.is_empty() => {
            Vec::new()
        }
        Err(other) => return Err(other.into()),
    };
    let mut graders: Vec<Grader> = Vec::new();
    for (index, criterion) in list.iter().enumerate() {
        let at = format!("eval.testing_criteria[{index}]");
        let Some(object) = criterion.as_object() else {
            problems.add(at, "a testing criterion must be a JSON object");
            continue;
        };
        let Some(given) = object.get("name").and_then(Value::as_str) else {
            problems.add(
                format!("{at}.name"),
                "missing: a criterion's name names its grader",
            );
            continue;
        };
        let name = grader_name(given);
        aliases.insert(given.to_owned(), name.clone());
        if let Some(id) = object.get("id").and_then(Value::as_str) {
            aliases.insert(id.to_owned(), name.clone());
        }
        if stored::check_name(&name).is_err() {
            problems.add(
                format!("{at}.name"),
                format!("{given:?} cannot name a grader"),
            );
            continue;
        }
        if existing.contains(&name) {
            problems.add(
                format!("{at}.name"),
                format!(
                    "prompt {} already has a grader {name}; a migration never replaces one (delete or rename it first)",
                    request.prompt_id
                ),
            );
            continue;
        }
        if graders.iter().any(|g| g.name == name) {
            problems.add(
                format!("{at}.name"),
                format!("a second criterion named {name}"),
            );
            continue;
        }
        let mut definition = object.clone();
        definition.remove("id");
        let definition = Value::Object(definition);
        let parsed = match Definition::parse(&definition) {
            Ok(parsed) => parsed,
            Err(e) => {
                problems.add(join(&at, &e.field), e.message);
                continue;
            }
        };
        if let Err(e) = parsed.validate(registry).await {
            let component = e.field == "component" || e.field.ends_with(".component");
            if component && !registry.builtins_loaded() {
                return Err(MigrateError::Loading);
            }
            problems.add(join(&at, &e.field), e.message);
            continue;
        }
        graders.push(Grader { name, definition });
    }
    Ok((graders, aliases))
}

fn join(at: &str, field: &str) -> String {
    if field.is_empty() || field == "." {
        at.to_owned()
    } else {
        format!("{at}.{field}")
    }
}

/// A criterion's name as a grader name: characters outside `[A-Za-z0-9_.-]` become `_`.
pub fn grader_name(given: &str) -> String {
    given
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(stored::MAX_NAME_CHARS)
        .collect()
}

/// The dataset's name: given, or the eval's name in lower case with other characters as `-`.
fn dataset_name(request: &MigrateOpenaiEval, problems: &mut Problems) -> Option<String> {
    let name = match &request.dataset {
        Some(name) => name.clone(),
        None => {
            let from_eval: String = request
                .eval
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("openai-eval")
                .to_lowercase()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                        c
                    } else {
                        '-'
                    }
                })
                .take(datasets::MAX_NAME_CHARS)
                .collect();
            let trimmed = from_eval.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if trimmed.is_empty() {
                "openai-eval".to_owned()
            } else {
                trimmed.to_owned()
            }
        }
    };
    match datasets::check_name(&name) {
        Ok(()) => Some(name),
        Err(e) => {
            problems.add("dataset", e.to_string());
            None
        }
    }
}

/// Every line of the items file: a row, its item valid against the schema.
fn check_items(text: &str, schema: Option<&jsonschema::Validator>, problems: &mut Problems) {
    let mut rows = 0usize;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("items.jsonl:{}", index + 1);
        rows += 1;
        let (item, _) = match datasets::parse_jsonl(line) {
            Ok(mut parsed) => parsed.remove(0),
            Err(e) => {
                // `jsonl:1` is this line; the rest names the field.
                let field = e.field.strip_prefix("jsonl:1").unwrap_or_default();
                problems.add(format!("{at}{field}"), e.message);
                continue;
            }
        };
        if let Some(schema) = schema {
            for error in schema.iter_errors(&Value::Object(item)) {
                let path = error.instance_path().to_string();
                problems.add(
                    format!("{at}.item{}", path.replace('/', ".")),
                    format!("does not match the eval's item_schema: {error}"),
                );
            }
        }
    }
    if rows == 0 {
        problems.add("items.jsonl", "holds no row");
    } else if rows > datasets::MAX_ROWS {
        problems.add(
            "items.jsonl",
            format!(
                "{rows} rows; a dataset version holds at most {}",
                datasets::MAX_ROWS
            ),
        );
    }
}

/// The output items as runs and their verdicts.
fn output_items(
    text: &str,
    request: &MigrateOpenaiEval,
    eval_key: &str,
    aliases: &HashMap<String, String>,
    problems: &mut Problems,
) -> (Vec<NewRun>, Vec<Vec<GraderVerdict>>) {
    let by_alias: HashMap<&str, &str> = aliases
        .iter()
        .map(|(alias, name)| (alias.as_str(), name.as_str()))
        .collect();
    let mut runs = Vec::new();
    let mut verdicts = Vec::new();
    let mut task_ids: BTreeMap<String, usize> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = index + 1;
        let at = format!("output_items.jsonl:{line_no}");
        let item: Value = match serde_json::from_str(line) {
            Ok(item) => item,
            Err(e) => {
                problems.add(at, format!("not JSON: {e}"));
                continue;
            }
        };
        match output_item(&item, &at, request, eval_key, line_no, &by_alias, problems) {
            Some((run, run_verdicts)) => {
                if let Some(first) = task_ids.insert(run.task_id.clone(), line_no) {
                    problems.add(
                        at,
                        format!(
                            "datasource_item_id repeats line {first}'s (task {})",
                            run.task_id
                        ),
                    );
                    continue;
                }
                runs.push(run);
                verdicts.push(run_verdicts);
            }
            None => continue,
        }
    }
    if runs.is_empty() && problems.list.is_empty() {
        problems.add("output_items.jsonl", "holds no output item");
    }
    (runs, verdicts)
}

/// One output item as a run and its verdicts; `None` when it has problems (reported).
fn output_item(
    item: &Value,
    at: &str,
    request: &MigrateOpenaiEval,
    eval_key: &str,
    line_no: usize,
    by_alias: &HashMap<&str, &str>,
    problems: &mut Problems,
) -> Option<(NewRun, Vec<GraderVerdict>)> {
    let Some(object) = item.as_object() else {
        problems.add(at, "an output item must be a JSON object");
        return None;
    };
    let Some(input) = object.get("datasource_item").and_then(Value::as_object) else {
        problems.add(format!("{at}.datasource_item"), "missing or not an object");
        return None;
    };
    let sample = object.get("sample").and_then(Value::as_object);
    if let Some(error) = sample.and_then(|s| s.get("error")).filter(|e| !e.is_null()) {
        problems.add(
            format!("{at}.sample.error"),
            format!("the sample errored ({error}); there is no output to record"),
        );
        return None;
    }
    let Some(output) = sample.and_then(output_text) else {
        problems.add(
            format!("{at}.sample.output"),
            "no assistant message with text: nothing to record as the run's output",
        );
        return None;
    };
    let key = match object.get("datasource_item_id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => object
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("line-{line_no}"), str::to_owned),
    };
    let usage = sample.and_then(|s| s.get("usage"));
    let mut run = json!({
        "promptId": request.prompt_id,
        "taskId": format!("openai-eval:{eval_key}:{key}"),
        "attempt": 1,
        "input": input,
        "output": output,
    });
    if let Some(model) = sample
        .and_then(|s| s.get("model"))
        .filter(|m| m.is_string())
    {
        run["model"] = model.clone();
    }
    if let Some(tokens) = usage
        .and_then(|u| u.get("prompt_tokens"))
        .filter(|t| t.is_i64())
    {
        run["tokensIn"] = tokens.clone();
    }
    if let Some(tokens) = usage
        .and_then(|u| u.get("completion_tokens"))
        .filter(|t| t.is_i64())
    {
        run["tokensOut"] = tokens.clone();
    }
    let run = match parse_runs(run) {
        Ok((mut runs, _)) => runs.remove(0),
        Err(e) => {
            problems.add(at, format!("cannot be a run: {e}"));
            return None;
        }
    };
    let mut verdicts = Vec::new();
    let results = object.get("results").and_then(Value::as_array);
    for (index, result) in results.into_iter().flatten().enumerate() {
        let result_at = format!("{at}.results[{index}]");
        let name = result
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(grader) = criterion_of(name, by_alias) else {
            problems.add(
                result_at,
                format!("result {name:?} matches no testing criterion of the eval"),
            );
            continue;
        };
        let score = result.get("score").and_then(Value::as_f64);
        let passed = result.get("passed").and_then(Value::as_bool);
        if score.is_none() && passed.is_none() {
            problems.add(
                result_at,
                "a result needs a numeric score or a boolean passed",
            );
            continue;
        }
        verdicts.push(GraderVerdict {
            grader: grader.to_owned(),
            grader_id: None,
            score,
            passed,
            label: None,
            reasoning: None,
            error: None,
            error_message: None,
            prompt_tokens: None,
            completion_tokens: None,
            duration_us: None,
        });
    }
    Some((run, verdicts))
}

/// The grader a result names: by criterion name or id, or by an id of the form
/// `<name>-<uuid>` (how OpenAI ids its stored criteria).
fn criterion_of<'a>(name: &str, by_alias: &HashMap<&str, &'a str>) -> Option<&'a str> {
    if let Some(grader) = by_alias.get(name) {
        return Some(grader);
    }
    // `<name>-<uuid>`: a hyphenated uuid is 36 characters.
    let split = name.len().checked_sub(37)?;
    if !name.is_char_boundary(split) || name.as_bytes()[split] != b'-' {
        return None;
    }
    Uuid::parse_str(&name[split + 1..]).ok()?;
    by_alias.get(&name[..split]).copied()
}

/// The text of a sample's assistant messages, joined by newlines.
fn output_text(sample: &Map<String, Value>) -> Option<String> {
    let messages = sample.get("output")?.as_array()?;
    let mut parts = Vec::new();
    for message in messages {
        if message.get("role").and_then(Value::as_str) != Some("assistant") {
            continue;
        }
        match message.get("content") {
            Some(Value::String(text)) => parts.push(text.clone()),
            Some(Value::Array(items)) => {
                for item in items {
                    if let Some(text) = item.get("text").and_then(Value::as_str) {
                        parts.push(text.to_owned());
                    } else if let Some(text) = item.as_str() {
                        parts.push(text.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("\n"))
}

async fn write(
    store: &Arc<dyn Store>,
    request: MigrateOpenaiEval,
    plan: Plan,
    actor: &str,
) -> Result<Migrated, MigrateError> {
    if let Some(prompt) = plan.prompt {
        // First, so the graders, dataset and runs have their prompt. Should a later write
        // fail, the prompt stays (a store cannot remove a prompt): it is empty but for its
        // first version, and migrating again into it (without newPrompt) completes it.
        PromptRegistry::new(store.clone(), std::time::Duration::ZERO)
            .create_prompt(prompt, actor)
            .await
            .map_err(|error| match error {
                PromptError::Store(error) => MigrateError::Store(error),
                other => MigrateError::Store(StoreError::InvalidState(other.to_string())),
            })?;
    }
    let dataset_existed = store.get_dataset(&plan.dataset).await.is_ok();
    let mut created = Vec::new();
    let result = async {
        for grader in &plan.graders {
            store
                .put_grader(NewGraderDefinition {
                    prompt_id: request.prompt_id.clone(),
                    name: grader.name.clone(),
                    definition: grader.definition.clone(),
                    enabled: true,
                    created_by: Some(actor.to_owned()),
                })
                .await?;
            created.push(grader.name.clone());
        }
        let version = datasets::create(
            store,
            CreateDataset {
                prompt_id: request.prompt_id.clone(),
                name: plan.dataset.clone(),
                jsonl: Some(request.items.clone()),
                ..CreateDataset::default()
            },
            actor,
        )
        .await
        .map_err(|e| match e {
            DatasetError::Store(e) => e,
            // Checked before; a refusal here is a bug, not the caller's input.
            other => StoreError::InvalidState(other.to_string()),
        })?;
        Ok::<_, StoreError>(version)
    }
    .await;
    let dataset = match result {
        Ok(version) => version,
        Err(error) => {
            undo(store, &request.prompt_id, &created, None).await;
            return Err(error.into());
        }
    };
    let recorded = if plan.runs.is_empty() {
        Vec::new()
    } else {
        match store.record_runs(&plan.runs).await {
            Ok(recorded) => recorded,
            Err(error) => {
                let dataset = (!dataset_existed).then_some(plan.dataset.as_str());
                undo(store, &request.prompt_id, &created, dataset).await;
                return Err(error.into());
            }
        }
    };
    let graded: Vec<GradedRun> = recorded
        .iter()
        .zip(plan.verdicts)
        .enumerate()
        .filter(|(_, (_, verdicts))| !verdicts.is_empty())
        .map(|(index, (run, verdicts))| GradedRun {
            data_id: run.id,
            prompt_id: request.prompt_id.clone(),
            outcome_at: None,
            row_index: index as i64,
            verdicts,
        })
        .collect();
    let grader_results = graded.iter().map(|g| g.verdicts.len()).sum();
    if !graded.is_empty() {
        store.record_auto_grades(&graded).await?;
    }
    Ok(Migrated {
        prompt_id: request.prompt_id,
        graders: created,
        dataset,
        runs: recorded.len(),
        runs_created: recorded.iter().filter(|r| r.created).count(),
        grader_results,
    })
}

/// Removes what a failed migration wrote before it failed (best effort: the database that
/// failed may refuse this too; what stays is logged).
async fn undo(store: &Arc<dyn Store>, prompt: &str, graders: &[String], dataset: Option<&str>) {
    for name in graders {
        if let Err(e) = store.delete_grader(prompt, name).await {
            tracing::error!(prompt, grader = %name, error = %e, "migration failed; its grader could not be removed");
        }
    }
    if let Some(name) = dataset
        && let Err(e) = store.delete_dataset(name).await
    {
        tracing::error!(prompt, dataset = %name, error = %e, "migration failed; its dataset could not be removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_id_comes_from_the_eval_name() {
        assert_eq!(
            prompt_id_from("Arithmetic QA (v2)!").as_deref(),
            Some("arithmetic-qa-v2")
        );
        assert_eq!(
            prompt_id_from("  42 ways_to go ").as_deref(),
            Some("ways_to-go")
        );
        assert_eq!(prompt_id_from("***"), None);
        assert_eq!(prompt_id_from("123"), None);
        let long = "a".repeat(80);
        assert_eq!(prompt_id_from(&long).map(|id| id.len()), Some(50));
        assert_eq!(
            prompt_id_from(&format!("{} tail", "b".repeat(49))).as_deref(),
            Some("b".repeat(49).as_str()),
            "never ends with a dash"
        );
    }

    #[test]
    fn the_placeholder_template_names_the_item_properties_it_can() {
        let eval = json!({"data_source_config": {"type": "custom", "item_schema": {
            "type": "object", "properties": {"question": {}, "odd name": {}, "n_2": {}}}}});
        let content = placeholder_content(&eval);
        assert!(content.contains("question: {{question}}\n"), "{content}");
        assert!(content.contains("n_2: {{n_2}}\n"), "{content}");
        assert!(!content.contains("odd name"), "{content}");
        let returned = json!({"data_source_config": {"type": "custom", "schema": {
            "properties": {"item": {"properties": {"q": {}}}}}}});
        assert_eq!(placeholder_content(&returned), "q: {{q}}\n");
        assert!(placeholder_content(&json!({})).contains("replace this template"));
    }

    #[test]
    fn criterion_names_become_grader_names() {
        assert_eq!(
            grader_name("Match output to human label"),
            "Match_output_to_human_label"
        );
        assert_eq!(grader_name("exact-1.0"), "exact-1.0");
    }

    #[test]
    fn results_match_criteria_by_name_id_or_name_dash_uuid() {
        let mut by_alias = HashMap::new();
        by_alias.insert("Match label", "Match_label");
        by_alias.insert("crit-7", "Match_label");
        assert_eq!(criterion_of("Match label", &by_alias), Some("Match_label"));
        assert_eq!(criterion_of("crit-7", &by_alias), Some("Match_label"));
        assert_eq!(
            criterion_of(
                "Match label-c4fdf789-2fa5-407f-8a41-a6f4f9afd482",
                &by_alias
            ),
            Some("Match_label")
        );
        assert_eq!(
            criterion_of("Other-c4fdf789-2fa5-407f-8a41-a6f4f9afd482", &by_alias),
            None
        );
        assert_eq!(criterion_of("nope", &by_alias), None);
    }

    #[test]
    fn output_text_joins_the_assistant_messages() {
        let sample = json!({"output": [
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": "skip"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "two"}]},
        ]});
        assert_eq!(
            output_text(sample.as_object().unwrap()),
            Some("one\ntwo".to_owned())
        );
        assert_eq!(
            output_text(json!({"output": []}).as_object().unwrap()),
            None
        );
    }
}
