/**
 * Errors the client throws. An answer of the API that is an error becomes a `FlywheelError`
 * carrying the API's stable `code` (the body `{"error": {"code", "type", "message", "details"}}`);
 * a request that got no answer (connection refused or reset, timeout) becomes a
 * `FlywheelTransportError`. Both extend `FlywheelClientError`, so one `catch` takes either.
 *
 * @module
 */

import type { components } from "./generated/openapi.ts";

/** The error object of every error answer of the API. */
export type ErrorDetail = components["schemas"]["ErrorDetail"];

/** What every error of this client extends. */
export class FlywheelClientError extends Error {
  /** The HTTP method of the request that failed. */
  readonly method: string;
  /** The URL of the request that failed. */
  readonly url: string;
  /** Requests sent, the first included (more than one when retried). */
  readonly attempts: number;

  constructor(message: string, method: string, url: string, attempts: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "FlywheelClientError";
    this.method = method;
    this.url = url;
    this.attempts = attempts;
  }
}

/**
 * The API answered with an error: `code` is its stable snake_case code (`prompt_not_found`,
 * `invalid_failure_mode`, `not_enough_rows`…), `type` the general kind (`not_found`,
 * `invalid_state`…), `details` what the code documents (`details.allowed`, `details.found`…).
 */
export class FlywheelError extends FlywheelClientError {
  /** HTTP status. */
  readonly status: number;
  /** The API's stable code, or `http_<status>` when the body was not the API's error format. */
  readonly code: string;
  /** The general kind of the error (the code when the code is general). */
  readonly type: string;
  /** The API's details, when the code has some. */
  readonly details: unknown;

  constructor(status: number, detail: ErrorDetail, method: string, url: string, attempts: number) {
    super(`${method} ${url}: ${status} ${detail.code}: ${detail.message}`, method, url, attempts);
    this.name = "FlywheelError";
    this.status = status;
    this.code = detail.code;
    this.type = detail.type;
    this.details = detail.details ?? undefined;
  }
}

/** No answer: `timeout` (the request ran past `timeoutMs`) or `connection` (refused, reset…). */
export class FlywheelTransportError extends FlywheelClientError {
  readonly kind: "timeout" | "connection";

  constructor(
    kind: "timeout" | "connection",
    method: string,
    url: string,
    attempts: number,
    cause: unknown,
  ) {
    const why = kind === "timeout" ? "timed out" : `connection failed (${describe(cause)})`;
    super(`${method} ${url}: ${why} after ${attempts} attempt(s)`, method, url, attempts, { cause });
    this.name = "FlywheelTransportError";
    this.kind = kind;
  }
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${cause.message}` : cause.message;
  }
  return String(cause);
}

/**
 * The error of an answer with a non-2xx status: the API's `{"error": …}` body when it is one,
 * else a code made of the status (a proxy's HTML page, an empty body).
 */
export function errorFromAnswer(
  status: number,
  body: unknown,
  method: string,
  url: string,
  attempts: number,
): FlywheelError {
  const detail = (body as { error?: Partial<ErrorDetail> } | undefined)?.error;
  if (detail && typeof detail.code === "string" && typeof detail.message === "string") {
    return new FlywheelError(
      status,
      {
        code: detail.code,
        type: typeof detail.type === "string" ? detail.type : detail.code,
        message: detail.message,
        details: detail.details,
      },
      method,
      url,
      attempts,
    );
  }
  const text = typeof body === "string" ? body.slice(0, 200) : "";
  return new FlywheelError(
    status,
    { code: `http_${status}`, type: `http_${status}`, message: text || "no error body" },
    method,
    url,
    attempts,
  );
}
