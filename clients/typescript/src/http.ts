/**
 * The transport: where the server is and who calls (constructor, else `FLYWHEEL_URL` and
 * `FLYWHEEL_TOKEN`), a time limit per attempt, and bounded retries with exponential backoff and
 * jitter. The typed calls themselves are openapi-fetch's over the generated `paths`; this module
 * only wraps its `fetch`.
 *
 * What is retried: 429 and 503 always (the server did nothing: too many requests, or it
 * abandoned the request and rolled its transaction back), and — for idempotent requests only —
 * the other 5xx and connection errors, where the request may have been carried out. A request
 * is idempotent when its method is (GET, PUT, PATCH, DELETE) or the caller says so (recording
 * runs is: `(promptId, taskId, attempt)` identifies a run). `Retry-After` in seconds is honoured
 * up to `maxDelayMs`.
 *
 * @module
 */

import createClient, { type Client } from "openapi-fetch";

import { FlywheelTransportError } from "./errors.ts";
import type { paths } from "./generated/openapi.ts";

/** How failed requests are retried. */
export interface RetryOptions {
  /** Retries after the first attempt [default: 3]; 0 sends each request once. */
  maxRetries?: number;
  /** Delay before the first retry, doubled each retry [default: 200 ms]. */
  baseDelayMs?: number;
  /** Longest delay between two attempts, `Retry-After` included [default: 5,000 ms]. */
  maxDelayMs?: number;
}

/** Where the server is, who calls, and how patiently. */
export interface ClientOptions {
  /** The server, such as `http://127.0.0.1:8080` [default: `FLYWHEEL_URL`]. */
  baseUrl?: string;
  /** A bearer token of the role the calls need [default: `FLYWHEEL_TOKEN`]. */
  token?: string;
  /** Time limit of one attempt, answer body included [default: 30,000 ms]. */
  timeoutMs?: number;
  /** Retries of failed requests. */
  retry?: RetryOptions;
  /** The fetch to send with [default: `globalThis.fetch`]. */
  fetch?: typeof globalThis.fetch;
}

/** The settings in force once defaults and the environment are applied. */
export interface Settings {
  baseUrl: string;
  token: string | undefined;
  timeoutMs: number;
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  fetch: typeof globalThis.fetch;
}

/** Resolves options against the environment; a missing URL is an error, a missing token is not
 * (the public routes need none, the others answer `unauthorized`). */
export function settings(options: ClientOptions = {}, env: Record<string, string | undefined> = process.env): Settings {
  const baseUrl = options.baseUrl ?? env.FLYWHEEL_URL;
  if (!baseUrl) {
    throw new Error("no Flywheel URL: pass baseUrl or set FLYWHEEL_URL");
  }
  const retry = options.retry ?? {};
  const numbers = {
    timeoutMs: options.timeoutMs ?? 30_000,
    maxRetries: retry.maxRetries ?? 3,
    baseDelayMs: retry.baseDelayMs ?? 200,
    maxDelayMs: retry.maxDelayMs ?? 5_000,
  };
  for (const [name, value] of Object.entries(numbers)) {
    if (!Number.isFinite(value) || value < 0) {
      throw new Error(`${name} must be a finite number ≥ 0, got ${value}`);
    }
  }
  if (numbers.maxRetries > 20) {
    throw new Error(`maxRetries must be at most 20, got ${numbers.maxRetries}`);
  }
  return {
    baseUrl: baseUrl.replace(/\/+$/, ""),
    token: options.token ?? (env.FLYWHEEL_TOKEN || undefined),
    ...numbers,
    fetch: options.fetch ?? globalThis.fetch,
  };
}

/** A header the client sets on a request it may retry on any failure; never sent. */
export const IDEMPOTENT_HEADER = "x-flywheel-client-idempotent";

const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "PUT", "PATCH", "DELETE"]);

/** What an answer came from: the URL asked and the requests it took (1 when not retried). */
export interface Sent {
  url: string;
  attempts: number;
}

const sentOf = new WeakMap<Response, Sent>();

/** What this answer came from, for the error built from it. */
export function sent(response: Response): Sent {
  return sentOf.get(response) ?? { url: response.url, attempts: 1 };
}

/** The fetch openapi-fetch sends with: time limit, retries, backoff. */
export function retryingFetch(s: Settings): (request: Request) => Promise<Response> {
  return async (original: Request) => {
    const headers = new Headers(original.headers);
    const idempotent = IDEMPOTENT_METHODS.has(original.method) || headers.has(IDEMPOTENT_HEADER);
    headers.delete(IDEMPOTENT_HEADER);
    // The body is read once, so each attempt can send it again.
    const body = original.body === null ? undefined : await original.arrayBuffer();
    for (let attempt = 1; ; attempt++) {
      const last = attempt > s.maxRetries;
      let response: Response;
      try {
        response = await buffered(
          await s.fetch(original.url, {
            method: original.method,
            headers,
            body,
            signal: AbortSignal.timeout(s.timeoutMs),
          }),
        );
      } catch (cause) {
        const timedOut = cause instanceof DOMException && cause.name === "TimeoutError";
        if (last || !idempotent) {
          throw new FlywheelTransportError(
            timedOut ? "timeout" : "connection",
            original.method,
            original.url,
            attempt,
            cause,
          );
        }
        await sleep(backoff(s, attempt, null));
        continue;
      }
      const retryable =
        response.status === 429 ||
        response.status === 503 ||
        (idempotent && response.status >= 500 && response.status <= 599);
      if (!retryable || last) {
        sentOf.set(response, { url: original.url, attempts: attempt });
        return response;
      }
      await sleep(backoff(s, attempt, response.headers.get("retry-after")));
    }
  };
}

/**
 * The answer with its body read, so the time limit covers the body too and a body cut off by
 * the limit or the connection is a transport error (retried when the request may be), not an
 * error thrown later by the caller's parsing.
 */
async function buffered(response: Response): Promise<Response> {
  if (response.body === null) return response;
  const body = await response.arrayBuffer();
  const init = { status: response.status, statusText: response.statusText, headers: response.headers };
  // A 204 or 304 answer may not be given a body, not even an empty one.
  return new Response(response.status === 204 || response.status === 304 ? null : body, init);
}

/** Exponential backoff, each delay drawn between half and all of it (so clients retrying together
 * spread out), at least what `Retry-After` asks, at most `maxDelayMs`. */
function backoff(s: Settings, attempt: number, retryAfter: string | null): number {
  const exponential = s.baseDelayMs * 2 ** (attempt - 1);
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  const asked = retryAfter !== null && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) * 1000 : 0;
  return Math.min(s.maxDelayMs, Math.max(jittered, asked));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The typed client of every route, over the retrying fetch, with the bearer token. */
export function typedClient(s: Settings): Client<paths> {
  const client = createClient<paths>({
    baseUrl: s.baseUrl,
    fetch: retryingFetch(s),
  });
  if (s.token !== undefined) {
    const authorization = `Bearer ${s.token}`;
    client.use({
      onRequest({ request }) {
        request.headers.set("authorization", authorization);
        return request;
      },
    });
  }
  return client;
}
