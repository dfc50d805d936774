/**
 * What the live tests share: a `flywheel serve` per test file, a `PromptOptimizer` per role, a
 * fresh prompt per test (its own taxonomy and no graders, so no background grader touches its
 * runs), and expecting a `FlywheelError` of a given code.
 *
 * @module
 */

import { afterAll, beforeAll, expect } from "bun:test";

import { type Served, TOKENS, startFlywheel } from "../scripts/flywheel-server.ts";
import { FlywheelError, PromptOptimizer } from "../src/index.ts";
import type { ClientOptions } from "../src/index.ts";

export { TOKENS };

/** Starts a server before the file's tests and stops it after; `server()` is it. */
export function liveServer(): () => Served {
  let served: Served | undefined;
  // A cold component cache makes the first start compile the built-in graders: allow for it.
  beforeAll(async () => {
    served = await startFlywheel();
  }, 180_000);
  afterAll(async () => {
    await served?.stop();
  });
  return () => {
    if (served === undefined) throw new Error("the server is not started");
    return served;
  };
}

/** A client with the role's token and quick retries (tests wait on nothing longer). */
export function optimizer(url: string, role: keyof typeof TOKENS, options: ClientOptions = {}): PromptOptimizer {
  return new PromptOptimizer({
    baseUrl: url,
    token: TOKENS[role],
    timeoutMs: 10_000,
    retry: { maxRetries: 3, baseDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
}

let prompts = 0;

/** Creates a prompt of its own, `Plan {{task}} in {{repo}}`, with two failure modes; its id. */
export async function freshPrompt(url: string): Promise<string> {
  prompts += 1;
  const id = `ts-${process.pid}-${prompts}`;
  const { response, error } = await optimizer(url, "admin").client.POST("/api/prompts", {
    body: {
      id,
      description: "a prompt of the TypeScript client's tests",
      content: "Plan {{task}} in {{repo}}.",
      failureModes: [
        { code: "wrong_files", description: "Plans changes in the wrong files" },
        { code: "incomplete_plan", description: "Leaves steps out" },
      ],
    },
  });
  expect(response.status, JSON.stringify(error)).toBe(201);
  return id;
}

/** Awaits `promise`, which must reject with a `FlywheelError`; that error. */
export async function rejectsWith(promise: Promise<unknown>, code: string, status: number): Promise<FlywheelError> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(FlywheelError);
  const error = caught as FlywheelError;
  expect({ code: error.code, status: error.status }).toEqual({ code, status });
  return error;
}
