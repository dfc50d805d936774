/**
 * `npm run generate [-- --url http://127.0.0.1:PORT]`: writes `src/generated/openapi.ts` from
 * a server's `/openapi.json`. Without `--url` it starts `flywheel serve` itself (the binary of
 * `FLYWHEEL_BIN`, else the repo's `target/debug/flywheel`: build it first). `--check` writes
 * nothing and exits 1 when the committed file differs.
 *
 * @module
 */

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { startFlywheel } from "./flywheel-server.ts";
import { GENERATED_PATH, fetchDocument, renderTypes } from "./openapi-types.ts";

const { values } = parseArgs({
  options: { url: { type: "string" }, check: { type: "boolean", default: false } },
});

const served = values.url === undefined ? await startFlywheel() : undefined;
let types: string;
try {
  const base = values.url ?? served?.url;
  // `/openapi.json` given as the URL works too.
  types = await renderTypes(await fetchDocument((base as string).replace(/\/openapi\.json$/, "")));
} finally {
  await served?.stop();
}

const path = join(import.meta.dir, "..", GENERATED_PATH);
if (values.check) {
  const committed = readFileSync(path, "utf8");
  if (committed !== types) {
    console.error(`${GENERATED_PATH} differs from the server's document: run npm run generate`);
    process.exit(1);
  }
  console.log(`${GENERATED_PATH} matches the server's document`);
} else {
  writeFileSync(path, types);
  console.log(`wrote ${GENERATED_PATH}`);
}
