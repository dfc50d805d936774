/**
 * A `flywheel serve` child for the generator and the tests: a fresh data directory (so a fresh
 * SQLite file), a free port of 127.0.0.1, one token per role, and nothing else of the caller's
 * environment. The binary is `FLYWHEEL_BIN`, else `<CARGO_TARGET_DIR or the repo's target>/debug/flywheel`.
 *
 * @module
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** One token per role, as `FLYWHEEL_TOKENS` configures them. */
export const TOKENS = {
  read: "ts-read-secret",
  agent: "ts-agent-secret",
  annotator: "ts-annotator-secret",
  admin: "ts-admin-secret",
} as const;

/** A running server; `stop` kills it and removes its data. */
export interface Served {
  url: string;
  stop(): Promise<void>;
}

/** How long the server may take to announce its address (it compiles built-in graders on a
 * cold component cache). */
const START_TIMEOUT_MS = 120_000;

export function flywheelBinary(): string {
  if (process.env.FLYWHEEL_BIN) return process.env.FLYWHEEL_BIN;
  const repo = resolve(import.meta.dir, "..", "..", "..");
  return join(process.env.CARGO_TARGET_DIR ?? join(repo, "target"), "debug", "flywheel");
}

/** Starts `flywheel serve` and waits for its `listening` log line. */
export async function startFlywheel(extraEnv: Record<string, string> = {}): Promise<Served> {
  const dataDir = mkdtempSync(join(tmpdir(), "flywheel-ts-"));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    FLYWHEEL_DATA_DIR: dataDir,
    FLYWHEEL_TOKENS: [
      `reader:read:${TOKENS.read}`,
      `robot:agent:${TOKENS.agent}`,
      `reviewer:annotator:${TOKENS.annotator}`,
      `ops:admin:${TOKENS.admin}`,
    ].join(","),
    RUST_BACKTRACE: "0",
    ...extraEnv,
  };
  // Compiled built-in graders outlive the data directory (the Python one takes seconds to
  // compile); the Rust process tests pass theirs.
  env.FLYWHEEL_CACHE_DIR = process.env.FLYWHEEL_CACHE_DIR ?? join(tmpdir(), "flywheel-ts-component-cache");
  const child = Bun.spawn(
    [flywheelBinary(), "serve", "--bind", "127.0.0.1:0", "--log-format", "json"],
    { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  const stop = async () => {
    child.kill();
    await child.exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  const lines = readLines(child.stderr);
  const seen: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<null>((done) => {
    timer = setTimeout(() => done(null), START_TIMEOUT_MS);
  });
  try {
    for (;;) {
      const next = await Promise.race([lines.next(), timedOut]);
      if (next === null || next.done) break;
      const line = next.value;
      seen.push(line);
      let parsed: { fields?: { message?: string; addr?: string } };
      try {
        parsed = JSON.parse(line);
      } catch {
        continue;
      }
      if (parsed.fields?.message === "listening" && parsed.fields.addr) {
        // Keep reading so the server never blocks on a full pipe.
        void (async () => {
          for await (const _ of lines);
        })();
        return { url: `http://${parsed.fields.addr}`, stop };
      }
    }
  } catch (e) {
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  await stop();
  throw new Error(`flywheel serve did not announce its address; stderr:\n${seen.join("\n")}`);
}

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered) yield buffered;
}
