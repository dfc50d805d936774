/** `parseExport`: the export's JSONL back into the request's dataset rows. */

import { describe, expect, test } from "bun:test";

import { parseExport } from "../src/index.ts";

describe("parseExport", () => {
  test("splits variables from outcome and annotation keys", () => {
    const jsonl = [
      JSON.stringify({
        item: {
          task: "add a flag",
          attempts: 2,
          tests_passed: false,
          pr_merged: false,
          expected_files: ["a.rs", "b.rs"],
          failure_signature: "E0425",
          rating: "bad",
          output_feedback: "touches the wrong crate",
          failure_mode: "wrong_files",
        },
        sample: { output_text: "edit c.rs" },
      }),
      JSON.stringify({ item: { task: "t" }, sample: null }),
      "",
    ].join("\n");
    expect(parseExport(jsonl)).toEqual([
      {
        input: { task: "add a flag", attempts: "2" },
        output: "edit c.rs",
        rating: "bad",
        outputFeedback: "touches the wrong crate",
        failureMode: "wrong_files",
        expectedFiles: ["a.rs", "b.rs"],
        testsPassed: false,
        prMerged: false,
      },
      { input: { task: "t" }, output: "" },
    ]);
  });

  test("names the line that is not an export row", () => {
    expect(() => parseExport('{"item": {}}\nnot json')).toThrow("export line 2 is not JSON");
    expect(() => parseExport('{"sample": {}}')).toThrow('export line 1 has no "item" object');
  });
});
