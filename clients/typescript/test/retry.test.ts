/**
 * Retries, backoff bounds and the time limit, through a small proxy on 127.0.0.1 in front of a
 * live `flywheel serve`: the proxy answers the first requests with a chosen status (or holds
 * them), then forwards.
 */

import { afterAll, beforeEach, describe, expect, test } from "bun:test";

import { FlywheelTransportError } from "../src/index.ts";
import { freshPrompt, liveServer, optimizer, rejectsWith } from "./support.ts";

const server = liveServer();

/** What the proxy does with the next requests, then forwards the rest. */
let script: Array<{ status: number; body?: string } | "hang" | "stall-body"> = [];
let seen: string[] = [];
let hanging: Array<() => void> = [];

const proxy = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(request) {
    const url = new URL(request.url);
    seen.push(`${request.method} ${url.pathname}`);
    const step = script.shift();
    if (step === "hang") {
      // Held until the client gives up (the test's timeout is far shorter) or the file ends.
      await new Promise<void>((release) => hanging.push(release));
      return new Response("late", { status: 200 });
    }
    if (step === "stall-body") {
      // The status and headers go out, then the body stops after its first byte.
      let release: () => void = () => {};
      hanging.push(() => release());
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("["));
          release = () => {
            // Already closed when the client hung up.
            try {
              controller.close();
            } catch {}
          };
        },
      });
      return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
    }
    if (step !== undefined) {
      return new Response(step.body ?? "", { status: step.status, headers: { "content-type": "application/json" } });
    }
    return fetch(`${server().url}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
      body: request.body === null ? undefined : await request.arrayBuffer(),
    });
  },
});
const proxyUrl = `http://127.0.0.1:${proxy.port}`;

const UNAVAILABLE = JSON.stringify({
  error: { code: "request_timeout", type: "request_timeout", message: "abandoned" },
});

beforeEach(() => {
  script = [];
  seen = [];
});

afterAll(() => {
  for (const release of hanging) release();
  proxy.stop(true);
});

describe("retries", () => {
  test("a 503 is retried and the second attempt answers", async () => {
    const prompt = await freshPrompt(server().url);
    script = [{ status: 503, body: UNAVAILABLE }];
    const resolved = await optimizer(proxyUrl, "agent").resolve(prompt, "t1");
    expect(resolved.version).toBe(1);
    expect(seen).toEqual([`GET /api/prompts/${prompt}/resolve`, `GET /api/prompts/${prompt}/resolve`]);
  });

  test("recording runs is retried after a 502 and a 429, storing each run once", async () => {
    const prompt = await freshPrompt(server().url);
    script = [{ status: 502 }, { status: 429 }];
    const input = { promptId: prompt, taskId: "t1", input: { task: "x", repo: "y" }, output: "o" };
    const [recorded] = await optimizer(proxyUrl, "agent").recordRuns([input]);
    expect(recorded?.created).toBe(true);
    expect(seen).toHaveLength(3);
    const page = await optimizer(server().url, "read").client.GET("/api/runs", {
      params: { query: { promptId: prompt } },
    });
    expect(page.data?.items).toHaveLength(1);
  });

  test("retries are bounded: the last 503 surfaces with its code and the attempts", async () => {
    const prompt = await freshPrompt(server().url);
    script = Array.from({ length: 10 }, () => ({ status: 503, body: UNAVAILABLE }));
    const client = optimizer(proxyUrl, "agent", { retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    const error = await rejectsWith(client.resolve(prompt, "t1"), "request_timeout", 503);
    expect(error.attempts).toBe(3);
    expect(error.url).toBe(`${proxyUrl}/api/prompts/${prompt}/resolve?task_id=t1`);
    expect(seen).toHaveLength(3);
  });

  test("a 500 of a request that is not idempotent is not retried", async () => {
    const prompt = await freshPrompt(server().url);
    script = [{ status: 500, body: JSON.stringify({ error: { code: "internal", type: "internal", message: "x" } }) }];
    const admin = optimizer(proxyUrl, "admin");
    const error = await rejectsWith(admin.importOptimizedPrompt(prompt, "Plan {{task}} in {{repo}}!"), "internal", 500);
    expect(error.attempts).toBe(1);
    expect(seen).toHaveLength(1);
    // The import was never forwarded: the prompt still has one version.
    expect(await optimizer(server().url, "read").listPromptVersions(prompt)).toHaveLength(1);
  });

  test("an error body that is not the API's gets a code made of the status", async () => {
    script = [{ status: 404, body: "<html>not here</html>" }];
    const error = await rejectsWith(optimizer(proxyUrl, "read").listPromptVersions("p"), "http_404", 404);
    expect(error.message).toContain("not here");
  });

  test("a connection refused is retried, then surfaces as a transport error", async () => {
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const url = `http://127.0.0.1:${closed.port}`;
    closed.stop(true);
    const client = optimizer(url, "read", { retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    let caught: unknown;
    try {
      await client.listPromptVersions("planner");
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FlywheelTransportError);
    expect((caught as FlywheelTransportError).kind).toBe("connection");
    expect((caught as FlywheelTransportError).attempts).toBe(3);
  });

  test("a request past timeoutMs is abandoned, retried, and surfaces as a timeout", async () => {
    const prompt = await freshPrompt(server().url);
    script = ["hang", "hang"];
    const client = optimizer(proxyUrl, "read", { timeoutMs: 200, retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 } });
    let caught: unknown;
    try {
      await client.listPromptVersions(prompt);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FlywheelTransportError);
    expect((caught as FlywheelTransportError).kind).toBe("timeout");
    expect((caught as FlywheelTransportError).attempts).toBe(2);
    // After a hang, the next request goes through.
    expect(await optimizer(proxyUrl, "read").listPromptVersions(prompt)).toHaveLength(1);
  });

  test("a body that stalls past timeoutMs is a timeout too, and retried", async () => {
    const prompt = await freshPrompt(server().url);
    script = ["stall-body"];
    // Long enough for the retry to be answered on a loaded machine.
    const client = optimizer(proxyUrl, "read", { timeoutMs: 2_000, retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 } });
    expect(await client.listPromptVersions(prompt)).toHaveLength(1);
    expect(seen).toHaveLength(2);
    script = ["stall-body"];
    const once = optimizer(proxyUrl, "read", { timeoutMs: 200, retry: { maxRetries: 0 } });
    let caught: unknown;
    try {
      await once.listPromptVersions(prompt);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FlywheelTransportError);
    expect((caught as FlywheelTransportError).kind).toBe("timeout");
  });
});
