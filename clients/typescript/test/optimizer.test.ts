/**
 * Every method of `PromptOptimizer` against a live `flywheel serve` (a real SQLite file): the
 * happy path, then the refusals a caller must be able to tell apart by their code.
 */

import { describe, expect, test } from "bun:test";

import { FlywheelError, PromptOptimizer, type RunInput } from "../src/index.ts";
import { TOKENS, freshPrompt, liveServer, optimizer, rejectsWith } from "./support.ts";

const server = liveServer();

function run(promptId: string, taskId: string, extra: Partial<RunInput> = {}): RunInput {
  return {
    promptId,
    taskId,
    input: { task: `task ${taskId}`, repo: "autodev" },
    output: `plan for ${taskId}`,
    model: "gpt-test",
    tokensIn: 100,
    tokensOut: 20,
    latencyMs: 300,
    ...extra,
  };
}

describe("PromptOptimizer", () => {
  test("listPromptVersions lists a prompt's versions, the active one marked", async () => {
    const prompt = await freshPrompt(server().url);
    const versions = await optimizer(server().url, "read").listPromptVersions(prompt);
    expect(versions.map((v) => [v.version, v.isActive, v.content])).toEqual([[1, true, "Plan {{task}} in {{repo}}."]]);
  });

  test("resolve hands a task the active version and its variables", async () => {
    const prompt = await freshPrompt(server().url);
    const resolved = await optimizer(server().url, "agent").resolve(prompt, "task-1");
    expect(resolved.promptId).toBe(prompt);
    expect(resolved.version).toBe(1);
    expect(resolved.taskId).toBe("task-1");
    expect(resolved.content).toBe("Plan {{task}} in {{repo}}.");
    expect([...resolved.variables].sort()).toEqual(["repo", "task"]);
    expect(resolved.arm).toBeUndefined();
  });

  test("recordRuns, reportOutcomes and annotate feed exportDataset", async () => {
    const url = server().url;
    const prompt = await freshPrompt(url);
    const agent = optimizer(url, "agent");
    const annotator = optimizer(url, "annotator");

    const runs = [run(prompt, "t1"), run(prompt, "t2"), run(prompt, "t3")];
    const recorded = await agent.recordRuns(runs);
    expect(recorded.map((r) => r.created)).toEqual([true, true, true]);
    // A retried post stores nothing twice.
    const again = await agent.recordRuns(runs);
    expect(again.map((r) => [r.id, r.created])).toEqual(recorded.map((r) => [r.id, false]));

    const applied = await agent.reportOutcomes([
      { taskId: "t1", testsPassed: true, prMerged: true, expectedFiles: ["src/a.ts"] },
      { taskId: "t2", testsPassed: false, prMerged: false },
      { taskId: "no-run-yet", testsPassed: true },
    ]);
    expect(applied).toEqual([
      { taskId: "t1", runsUpdated: 1 },
      { taskId: "t2", runsUpdated: 1 },
      { taskId: "no-run-yet", runsUpdated: 0 },
    ]);

    const [r1, r2] = recorded;
    const good = await annotator.annotate(r1!.id, { rating: "good", outputFeedback: "clear plan" });
    expect(good.rating).toBe("good");
    const bad = await annotator.annotate(r2!.id, { rating: "bad", failureMode: "wrong_files" });
    expect(bad.failureMode).toBe("wrong_files");

    const dataset = await annotator.exportDataset(prompt, { minRows: 2 });
    expect(dataset.promptId).toBe(prompt);
    expect(dataset.version).toBe(1);
    expect(dataset.redaction).toStartWith("on");
    expect(dataset.jsonl.trim().split("\n")).toHaveLength(3);
    const byTask = new Map(dataset.rows.map((row) => [row.input.task, row]));
    expect(byTask.get("task t1")).toEqual({
      input: { task: "task t1", repo: "autodev" },
      output: "plan for t1",
      rating: "good",
      outputFeedback: "clear plan",
      expectedFiles: ["src/a.ts"],
      testsPassed: true,
      prMerged: true,
    });
    expect(byTask.get("task t2")).toEqual({
      input: { task: "task t2", repo: "autodev" },
      output: "plan for t2",
      rating: "bad",
      failureMode: "wrong_files",
      testsPassed: false,
      prMerged: false,
    });
    expect(byTask.get("task t3")).toEqual({ input: { task: "task t3", repo: "autodev" }, output: "plan for t3" });

    const bare = await annotator.exportDataset(prompt, { minRows: 0, includeAnnotations: false });
    expect(bare.rows).toHaveLength(3);
    expect(bare.rows.filter((row) => row.rating !== undefined || row.failureMode !== undefined)).toEqual([]);
  });

  test("importOptimizedPrompt stores an inactive version with its diff", async () => {
    const url = server().url;
    const prompt = await freshPrompt(url);
    const admin = optimizer(url, "admin");
    const imported = await admin.importOptimizedPrompt(prompt, "Plan {{task}} in {{repo}}.\nList the files first.");
    expect(imported.version.version).toBe(2);
    expect(imported.version.isActive).toBe(false);
    expect(imported.version.source).toBe("import");
    expect(imported.comparedWith).toBe(1);
    expect(imported.diff).toContain("+ List the files first.");
    const versions = await admin.listPromptVersions(prompt);
    expect(versions.map((v) => [v.version, v.isActive])).toEqual([
      [1, true],
      [2, false],
    ]);
  });

  test("startABTest splits tasks between two versions", async () => {
    const url = server().url;
    const prompt = await freshPrompt(url);
    const admin = optimizer(url, "admin");
    await admin.importOptimizedPrompt(prompt, "Plan {{task}} in {{repo}}, carefully.");
    const started = await admin.startABTest(prompt, "1", "2", 0.5);
    expect(started.status).toBe("running");
    expect([started.versionA, started.versionB, started.trafficSplit]).toEqual([1, 2, 0.5]);

    const agent = optimizer(url, "agent");
    const arms = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const resolved = await agent.resolve(prompt, `ab-task-${i}`);
      expect(resolved.abTestId).toBe(started.id);
      arms.set(resolved.arm as string, resolved.version);
    }
    // 40 tasks at 50/50 land in one arm only with chance 2^-39.
    expect(Object.fromEntries(arms)).toEqual({ a: 1, b: 2 });

    await rejectsWith(admin.startABTest(prompt, 1, 2, 0.5), "ab_test_running", 409);

    // The analysis is typed from the document: arms, primary metric, SRM check, decision.
    const { data } = await admin.client.GET("/api/prompts/{id}/ab-test/results", {
      params: { path: { id: prompt } },
    });
    const result = data?.result;
    expect(result?.decision).toBe("keep_running");
    expect(result?.a.successes).toBe(0);
    expect(typeof result?.primary.absolute.estimate).toBe("number");
    expect(typeof result?.srm.status).toBe("string");
    expect(result?.daysRunning).toBeGreaterThanOrEqual(0);
  });

  test("a 4xx surfaces the API's code, type and details", async () => {
    const url = server().url;
    const prompt = await freshPrompt(url);
    const agent = optimizer(url, "agent");
    const annotator = optimizer(url, "annotator");

    const unknown = await rejectsWith(agent.resolve("no-such-prompt", "t"), "prompt_not_found", 404);
    expect(unknown.type).toBe("not_found");
    expect(unknown.attempts).toBe(1);

    const [recorded] = await agent.recordRuns([run(prompt, "t1")]);
    const outside = await rejectsWith(
      annotator.annotate(recorded!.id, { rating: "bad", failureMode: "not_a_code" }),
      "invalid_failure_mode",
      422,
    );
    expect((outside.details as { allowed: string[] }).allowed.sort()).toEqual(["incomplete_plan", "wrong_files"]);

    const few = await rejectsWith(annotator.exportDataset(prompt, { minRows: 5 }), "not_enough_rows", 409);
    expect(few.details).toEqual({ found: 0, required: 5 });

    const changed = await rejectsWith(
      optimizer(url, "admin").importOptimizedPrompt(prompt, "Plan {{task}} for {{team}}."),
      "variables_changed",
      422,
    );
    expect(changed.details).toEqual({ missing: ["repo"], added: ["team"] });

    await rejectsWith(agent.importOptimizedPrompt(prompt, "Plan {{task}} in {{repo}}!"), "forbidden", 403);
    await rejectsWith(optimizer(url, "agent", { token: "wrong" }).resolve(prompt, "t"), "unauthorized", 401);
    await rejectsWith(
      agent.recordRuns([run(prompt, "t2"), run(prompt, "t3", { version: 99 })]),
      "unknown_version",
      422,
    );
    // Nothing of the refused batch was stored.
    const page = await optimizer(url, "read").client.GET("/api/runs", { params: { query: { promptId: prompt } } });
    expect(page.data?.items.map((r) => r.taskId)).toEqual(["t1"]);
  });

  test("a bad argument is refused before any request", async () => {
    const admin = optimizer(server().url, "admin");
    await expect(admin.startABTest("p", "v1", "2", 0.5)).rejects.toThrow("versionA must be a version number");
  });

  test("URL and token come from FLYWHEEL_URL and FLYWHEEL_TOKEN when not given", async () => {
    const prompt = await freshPrompt(server().url);
    const saved = { url: process.env.FLYWHEEL_URL, token: process.env.FLYWHEEL_TOKEN };
    try {
      process.env.FLYWHEEL_URL = server().url;
      process.env.FLYWHEEL_TOKEN = TOKENS.read;
      const versions = await new PromptOptimizer().listPromptVersions(prompt);
      expect(versions).toHaveLength(1);
      // The constructor's values win over the environment.
      process.env.FLYWHEEL_TOKEN = "not-a-token";
      await rejectsWith(new PromptOptimizer().listPromptVersions(prompt), "unauthorized", 401);
      const explicit = new PromptOptimizer({ token: TOKENS.read });
      expect(await explicit.listPromptVersions(prompt)).toHaveLength(1);
      delete process.env.FLYWHEEL_URL;
      expect(() => new PromptOptimizer()).toThrow("FLYWHEEL_URL");
    } finally {
      restore("FLYWHEEL_URL", saved.url);
      restore("FLYWHEEL_TOKEN", saved.token);
    }
  });

  test("FlywheelError is an Error with a readable message", async () => {
    const error = await rejectsWith(optimizer(server().url, "read").listPromptVersions("nope"), "prompt_not_found", 404);
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(FlywheelError);
    expect(error.message).toContain("404 prompt_not_found");
  });
});

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
