/**
 * The committed types are what the generator makes of a live server's `/openapi.json` today:
 * a route or schema changed in the Rust code without `npm run generate` fails here.
 */

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { GENERATED_PATH, fetchDocument, renderTypes } from "../scripts/openapi-types.ts";
import { liveServer } from "./support.ts";

const server = liveServer();

test("the committed OpenAPI types match the live server's document", async () => {
  const generated = await renderTypes(await fetchDocument(server().url));
  const committed = readFileSync(join(import.meta.dir, "..", GENERATED_PATH), "utf8");
  const difference = firstDifference(committed, generated);
  expect(
    difference,
    `${GENERATED_PATH} is out of date (run npm run generate in clients/typescript)`,
  ).toBeNull();
});

test("the document types every request and answer body of the client", async () => {
  const document = (await fetchDocument(server().url)) as {
    paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>;
  };
  // Every JSON body is described by a schema, so no generated body type is `unknown`.
  const untyped: string[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        const json = response.content?.["application/json"];
        if (json !== undefined && json.schema === undefined) untyped.push(`${method} ${path} ${status}`);
      }
    }
  }
  expect(untyped).toEqual([]);
});

/** The first line where the two texts differ, both versions of it; null when equal. */
function firstDifference(expected: string, actual: string): string | null {
  if (expected === actual) return null;
  const a = expected.split("\n");
  const b = actual.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return `line ${i + 1}: committed ${JSON.stringify(a[i])}, generated ${JSON.stringify(b[i])}`;
    }
  }
  return "the texts differ in line endings";
}
