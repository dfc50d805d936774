/**
 * The README's AutoDev integration, typechecked (`npm run typecheck`) so it stays true to the
 * client. `llm`, `render` and the task are AutoDev's.
 */

import { PromptOptimizer } from "../src/index.ts";

declare function llm(prompt: string): Promise<string>;
declare function render(template: string, vars: Record<string, string>): string;

export async function runPlanner(task: { id: string }, vars: Record<string, string>) {
  const flywheel = new PromptOptimizer(); // FLYWHEEL_URL, FLYWHEEL_TOKEN (an agent token)

  // Before the agent runs: the version (and A/B arm) this task must use.
  const prompt = await flywheel.resolve("planner", task.id);
  const output = await llm(render(prompt.content, vars));
  // After it: the run, keyed by (promptId, taskId, attempt), so a retried post stores it once.
  await flywheel.recordRuns([{ promptId: "planner", version: prompt.version, taskId: task.id, input: vars, output }]);
  return output;
}

export async function onPullRequestClosed(task: { id: string }, ci: { passed: boolean }, pr: { merged: boolean }) {
  const flywheel = new PromptOptimizer();
  // When the PR closes: the outcome, applied to every run of the task.
  await flywheel.reportOutcomes([{ taskId: task.id, testsPassed: ci.passed, prMerged: pr.merged }]);
}

export async function optimize(optimizedTemplate: string) {
  const optimizer = new PromptOptimizer(); // an admin token: export, import, A/B test
  const data = await optimizer.exportDataset("planner", { minRows: 50 }); // rows + data.jsonl for the Platform
  const { version } = await optimizer.importOptimizedPrompt("planner", optimizedTemplate); // inactive
  await optimizer.startABTest("planner", String(data.version), String(version.version), 0.5);
}
