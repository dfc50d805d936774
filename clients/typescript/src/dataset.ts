/**
 * The request's `PromptOptimizationDataset`, read from the export the API writes (OpenAI eval
 * JSONL, a line `{"item": {...}, "sample": {"output_text": ...}}` per row). The export's `item`
 * holds the run's input variables with its outcome (`tests_passed`, `pr_merged`,
 * `expected_files`, `failure_signature`) and its annotation (`rating`, `output_feedback`,
 * `failure_mode`) added under keys the variables do not already use; this module splits them
 * back apart. The JSONL itself is the wire format, a document the Platform reads as it is; these
 * types are the request's own shape, not a copy of an API schema.
 *
 * @module
 */

/** One row of the dataset: the prompt's input, the model's output, annotation, ground truth. */
export interface PromptOptimizationRow {
  /** Variables passed to the prompt; values that are not strings are given as JSON. */
  input: Record<string, string>;
  /** The model's response ("" when the run recorded none). */
  output: string;
  /** The annotation's rating. The request has it required; it is absent on rows nobody rated
   * (exports with `minRows: 0`) and on every row with `includeAnnotations: false`. */
  rating?: "good" | "bad";
  /** Text critique. */
  outputFeedback?: string;
  /** Axial code, such as `wrong_files`. */
  failureMode?: string;
  /** Files the task should have changed. */
  expectedFiles?: string[];
  /** Whether the task's tests passed. */
  testsPassed?: boolean;
  /** Whether the task's pull request was merged. */
  prMerged?: boolean;
}

/** The request's dataset for optimizing one version of a prompt. */
export interface PromptOptimizationDataset {
  /** The prompt, such as `planner`. */
  promptId: string;
  /** The prompt version whose runs the rows are. */
  version: number;
  /** The rows, newest run first. */
  rows: PromptOptimizationRow[];
}

/** What `exportDataset` answers: the dataset, and the JSONL file as the API wrote it (secrets
 * redacted), ready to upload to the Platform. */
export interface DatasetExport extends PromptOptimizationDataset {
  /** The OpenAI eval JSONL body. */
  jsonl: string;
  /** The server's `X-Flywheel-Redaction` header (`on; patterns=<N>`). */
  redaction: string | null;
}

const OUTCOME_KEYS = ["tests_passed", "pr_merged", "expected_files", "failure_signature"] as const;
const ANNOTATION_KEYS = ["rating", "output_feedback", "failure_mode"] as const;

/**
 * Parses an export body into rows. The outcome and annotation keys are read as such; a prompt
 * whose variables use one of those names is ambiguous in the export itself (the variable's value
 * wins there), so such a variable is read as the annotation or outcome it names.
 */
export function parseExport(jsonl: string): PromptOptimizationRow[] {
  const rows: PromptOptimizationRow[] = [];
  const lines = jsonl.split("\n");
  for (const [index, line] of lines.entries()) {
    if (line.trim() === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (e) {
      throw new Error(`export line ${index + 1} is not JSON: ${(e as Error).message}`);
    }
    const { item, sample } = parsed as { item?: unknown; sample?: unknown };
    if (!isObject(item)) {
      throw new Error(`export line ${index + 1} has no "item" object`);
    }
    const row: PromptOptimizationRow = { input: {}, output: "" };
    const outputText = isObject(sample) ? sample.output_text : undefined;
    if (typeof outputText === "string") row.output = outputText;
    for (const [key, value] of Object.entries(item)) {
      if (!isReserved(key)) {
        row.input[key] = typeof value === "string" ? value : JSON.stringify(value);
      }
    }
    const take = (key: string) => item[key];
    const rating = take("rating");
    if (rating === "good" || rating === "bad") row.rating = rating;
    const feedback = take("output_feedback");
    if (typeof feedback === "string") row.outputFeedback = feedback;
    const failureMode = take("failure_mode");
    if (typeof failureMode === "string") row.failureMode = failureMode;
    const expectedFiles = take("expected_files");
    if (Array.isArray(expectedFiles) && expectedFiles.every((f) => typeof f === "string")) {
      row.expectedFiles = expectedFiles;
    }
    const testsPassed = take("tests_passed");
    if (typeof testsPassed === "boolean") row.testsPassed = testsPassed;
    const prMerged = take("pr_merged");
    if (typeof prMerged === "boolean") row.prMerged = prMerged;
    rows.push(row);
  }
  return rows;
}

function isReserved(key: string): boolean {
  return (OUTCOME_KEYS as readonly string[]).includes(key) || (ANNOTATION_KEYS as readonly string[]).includes(key);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
