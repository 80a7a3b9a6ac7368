// The fuzzing campaign of issue #18, bounded for CI (bench/fuzz-core.ts says
// what a case is; `npm run fuzz` runs 100,000): every generated or mutated
// scenario file is run and checked within its budgets, or refused with one
// located line; through the CLI, exit 0, 1 or 2, no stack trace, JSON out.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import { cliCase, runCase, scenarioFile } from "../bench/fuzz-core.js";

const dir = mkdtempSync(join(tmpdir(), "asidlab-fuzz-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("fuzzed scenario files", () => {
  test("in-process: accepted and run within budget, or refused with one located line (400 cases)", () => {
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(scenarioFile, ({ file, text }) => {
        const r = runCase(file, text);
        assert.ok(r.outcome === "accepted" || r.outcome === "refused", `${r.outcome}: ${r.detail}\n${text}`);
        seen[r.outcome]++;
      }),
      { numRuns: 400, seed: 18 },
    );
    // Both halves of the rule are exercised, not only refusals.
    assert.ok(seen.accepted > 10, `accepted ${seen.accepted}`);
    assert.ok(seen.refused > 10, `refused ${seen.refused}`);
  });

  test("through the CLI: exit 0, 1 or 2; one line and no stack trace on refusal; JSON on stdout (8 cases)", () => {
    const picks = fc.sample(scenarioFile, { seed: 1818, numRuns: 8 });
    picks.forEach(({ file, text }, i) => {
      const path = join(dir, `case-${i}${file.endsWith(".json") ? ".json" : ".yaml"}`);
      assert.equal(cliCase(["--import", "tsx", "src/cli/main.ts"], path, text), null, text);
    });
  });
});
