/**
 * `PromptOptimizer`: the interface AutoDev's request spells (export a dataset, import an
 * optimized prompt, list versions, start an A/B test) plus what an agent calls at run time
 * (resolve, record runs, report outcomes, annotate), each one typed call of Flywheel's API.
 * Request and answer types are the generated OpenAPI schemas; an error answer throws a
 * `FlywheelError` with the API's code.
 *
 * @module
 */

import type { Client } from "openapi-fetch";

import { type DatasetExport, parseExport } from "./dataset.ts";
import { errorFromAnswer } from "./errors.ts";
import type { components, paths } from "./generated/openapi.ts";
import { type ClientOptions, IDEMPOTENT_HEADER, sent, settings, typedClient } from "./http.ts";

type Schemas = components["schemas"];
/** One version of a prompt, with its figures (`tasksExecuted`, `successRate`, `avgTokens`). */
export type PromptVersion = Schemas["PromptVersion"];
/** The version a task must use, its template and variables, and its A/B arm. */
export type ResolvedPrompt = Schemas["ResolvedPrompt"];
/** An imported version with its diff against the active one. */
export type ImportedVersion = Schemas["ImportedVersion"];
/** An A/B test and its latest analysis. */
export type ABTest = Schemas["AbTest"];
/** One run as an agent records it. */
export type RunInput = Schemas["RunInput"];
/** Per run recorded: its id and whether this call stored it. */
export type RecordedRun = Schemas["RecordedRun"];
/** The outcome of a task. */
export type OutcomeInput = Schemas["OutcomeInput"];
/** Per outcome reported: how many runs it updated. */
export type OutcomeApplied = Schemas["OutcomeApplied"];
/** A person's annotation of a run. */
export type Annotation = Schemas["AnnotationRequest"];
/** A run's annotation once set. */
export type CurrentAnnotation = Schemas["CurrentAnnotation"];
/** The settings of an A/B test beyond its two versions and split. */
export type ABTestOptions = Omit<Schemas["StartAbTest"], "versionA" | "versionB" | "trafficSplit">;

/** Options of `exportDataset`. */
export interface ExportOptions {
  /** Refuse (`not_enough_rows`) when fewer rows are annotated [default: the server's
   * `PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION`]. */
  minRows?: number;
  /** Put each run's annotation in its row [default: true]. */
  includeAnnotations?: boolean;
  /** The prompt version whose runs to export [default: the active version]. */
  version?: number;
  /** Only runs rated so. */
  rating?: "good" | "bad";
  /** Only runs recorded at or after this time (RFC 3339). */
  from?: string;
  /** Only runs recorded before this time (RFC 3339). */
  to?: string;
}

/** Options of `importOptimizedPrompt`. */
export interface ImportOptions {
  /** Notes stored with the version [default: `imported by PromptOptimizer`]. */
  notes?: string;
  /** Accept a template whose variables differ from the active version's. */
  allowVariableChanges?: boolean;
}

/** Options of `resolve`. */
export interface ResolveOptions {
  /** The logical task a retry or sub-task belongs to: one logical task sees one A/B arm. */
  rootTaskId?: string;
}

/** What a call of openapi-fetch answers, reduced to what `unwrap` reads. */
interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Sent with requests that may be retried on any failure (see `http.ts`). */
const IDEMPOTENT = { [IDEMPOTENT_HEADER]: "1" };

/**
 * AutoDev's client of Flywheel. The token needs the role of the calls made: `agent` for resolve,
 * recordRuns and reportOutcomes, `annotator` for annotate and exportDataset, `admin` for
 * importOptimizedPrompt and startABTest (`read` suffices for listPromptVersions).
 */
export class PromptOptimizer {
  /** The typed client of every route, for what this class does not wrap. */
  readonly client: Client<paths>;

  /** Settings from `options`, else `FLYWHEEL_URL` and `FLYWHEEL_TOKEN`. */
  constructor(options: ClientOptions = {}) {
    this.client = typedClient(settings(options));
  }

  /** The runs of one version of a prompt (the active one unless `options.version`) as the
   * request's dataset, with the OpenAI eval JSONL the API wrote. */
  async exportDataset(promptId: string, options: ExportOptions = {}): Promise<DatasetExport> {
    const version = options.version ?? (await this.activeVersion(promptId));
    const answer = await this.client.POST("/api/prompts/{id}/export", {
      params: { path: { id: promptId } },
      headers: IDEMPOTENT,
      body: {
        format: "openai-jsonl",
        version,
        minRows: options.minRows,
        includeAnnotations: options.includeAnnotations,
        rating: options.rating,
        from: options.from,
        to: options.to,
      },
      parseAs: "text",
    });
    const jsonl = unwrap(answer as Answer<string>, "POST");
    return {
      promptId,
      version,
      rows: parseExport(jsonl),
      jsonl,
      redaction: answer.response.headers.get("x-flywheel-redaction"),
    };
  }

  /** Stores an optimized prompt's template as a new, inactive version (deploy it, or A/B test
   * it against the active one). Refused with `variables_changed` when its variables differ from
   * the active version's, unless `allowVariableChanges`. */
  async importOptimizedPrompt(
    promptId: string,
    newVersion: string,
    options: ImportOptions = {},
  ): Promise<ImportedVersion> {
    return unwrap(
      await this.client.POST("/api/prompts/{id}/import", {
        params: { path: { id: promptId } },
        body: {
          content: newVersion,
          notes: options.notes ?? "imported by PromptOptimizer",
          allowVariableChanges: options.allowVariableChanges ?? false,
        },
      }),
      "POST",
    );
  }

  /** Every version of a prompt, oldest first. */
  async listPromptVersions(promptId: string): Promise<PromptVersion[]> {
    return unwrap(
      await this.client.GET("/api/prompts/{id}/versions", { params: { path: { id: promptId } } }),
      "GET",
    );
  }

  /** Starts an A/B test: `trafficSplit` of the tasks (strictly between 0 and 1) get
   * `versionB`, the others `versionA`. Versions are numbers, or their decimal strings. */
  async startABTest(
    promptId: string,
    versionA: string | number,
    versionB: string | number,
    trafficSplit: number,
    options: ABTestOptions = {},
  ): Promise<ABTest> {
    return unwrap(
      await this.client.POST("/api/prompts/{id}/ab-test", {
        params: { path: { id: promptId } },
        body: {
          ...options,
          versionA: versionNumber(versionA, "versionA"),
          versionB: versionNumber(versionB, "versionB"),
          trafficSplit,
        },
      }),
      "POST",
    );
  }

  /** The version and template a task must use (its A/B arm's while a test runs). */
  async resolve(promptId: string, taskId: string, options: ResolveOptions = {}): Promise<ResolvedPrompt> {
    return unwrap(
      await this.client.GET("/api/prompts/{id}/resolve", {
        params: {
          path: { id: promptId },
          query: { task_id: taskId, root_task_id: options.rootTaskId },
        },
      }),
      "GET",
    );
  }

  /** Records runs (1 to 1,000, all or nothing). Safe to retry: `(promptId, taskId, attempt)`
   * identifies a run, and a run recorded before answers `created: false`. */
  async recordRuns(runs: RunInput[]): Promise<RecordedRun[]> {
    const answer = unwrap(
      await this.client.POST("/api/runs", { headers: IDEMPOTENT, body: { runs } }),
      "POST",
    );
    return answer.runs;
  }

  /** Reports the outcomes of tasks (1 to 1,000): each updates every run of its task, and runs
   * recorded later take it too. */
  async reportOutcomes(outcomes: OutcomeInput[]): Promise<OutcomeApplied[]> {
    const answer = unwrap(await this.client.PATCH("/api/runs/outcomes", { body: { outcomes } }), "PATCH");
    return answer.outcomes;
  }

  /** Annotates a run (rating, critique, failure mode of the prompt's taxonomy), replacing any
   * earlier annotation. */
  async annotate(runId: string, annotation: Annotation): Promise<CurrentAnnotation> {
    return unwrap(
      await this.client.PUT("/api/runs/{id}/annotation", {
        params: { path: { id: runId } },
        body: annotation,
      }),
      "PUT",
    );
  }

  private async activeVersion(promptId: string): Promise<number> {
    const versions = await this.listPromptVersions(promptId);
    const active = versions.find((v) => v.isActive);
    if (active === undefined) {
      throw new Error(`prompt ${promptId} has no active version: pass options.version`);
    }
    return active.version;
  }
}

/** The answer's data, or the `FlywheelError` of an error answer. */
function unwrap<T>(answer: Answer<T>, method: string): T {
  const { response } = answer;
  if (!response.ok || answer.error !== undefined) {
    const { url, attempts } = sent(response);
    throw errorFromAnswer(response.status, answer.error, method, url, attempts);
  }
  return answer.data as T;
}

function versionNumber(version: string | number, name: string): number {
  const n = typeof version === "number" ? version : /^\s*\d+\s*$/.test(version) ? Number(version) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new TypeError(`${name} must be a version number ≥ 1, got ${JSON.stringify(version)}`);
  }
  return n;
}
