// The metric glossary (`asidlab metrics`) against what `run --json` really
// emits: the same names, per CPU too; every entry has a unit, a kernel
// counterpart and a meaning; JSON outputs say their format. And `run` groups
// repeated violations and shows every actor that led to the first;
// `scenarios` fits a terminal and recommends only what compare accepts.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { GLOSSARY, PER_CPU_GLOSSARY } from "../src/machine/glossary.js";
import { groupViolations } from "../src/report/run-report.js";
import { checkVaries, crossProduct, parseVary, variedScenario } from "../src/run/compare.js";
import { loadScenarioFile } from "../src/scenario/load.js";
import { cli, REPO_ROOT } from "./helpers.js";

const names = (xs: readonly { name: string }[]) => xs.map((x) => x.name).sort();

describe("metric glossary", () => {
  test("asidlab metrics --json lists exactly the metrics run --json emits, per CPU too", () => {
    const g = cli("metrics", "--json");
    assert.equal(g.status, 0, g.stderr);
    const doc = JSON.parse(g.stdout) as {
      format: string;
      metrics: { name: string; unit: string; kernel: string; meaning: string; group: string }[];
      per_cpu: { name: string }[];
    };
    assert.equal(doc.format, "asidlab/metrics/v1");
    // Two scenarios of different machinery: their key sets are the model's, not the scenario's.
    for (const sc of ["thread-pool", "tlb-shootdown-storm"]) {
      const r = cli("run", sc, "--json", "--max-steps", "20000");
      assert.equal(r.stderr.includes("internal error"), false, r.stderr);
      const j = JSON.parse(r.stdout) as { format: string; metrics: Record<string, unknown> };
      assert.equal(j.format, "asidlab/run/v1");
      const { per_cpu, ...flat } = j.metrics as { per_cpu: Record<string, number>[] };
      assert.deepEqual(Object.keys(flat).sort(), names(doc.metrics), `${sc}: metrics`);
      assert.ok(per_cpu.length > 0);
      for (const c of per_cpu) assert.deepEqual(Object.keys(c).sort(), names(doc.per_cpu), `${sc}: per_cpu`);
    }
    for (const d of doc.metrics) {
      for (const f of ["unit", "kernel", "meaning", "group"] as const)
        assert.ok(d[f].length > 0, `${d.name}: ${f}`);
    }
  });

  test("asidlab metrics prints each metric once under its group, with its unit", () => {
    const r = cli("metrics");
    assert.equal(r.status, 0, r.stderr);
    for (const d of GLOSSARY) {
      const lines = r.stdout.split("\n").filter((l) => new RegExp(`^  ${d.name}\\*?\\s`).test(l));
      assert.equal(lines.length, 1, d.name);
      if (d.unit !== "events") assert.ok(lines[0].includes(d.unit), `${d.name} shows ${d.unit}`);
    }
    assert.equal(PER_CPU_GLOSSARY.length, r.stdout.match(/^ {2}\w+\*/gm)?.length);
  });

  test("compare, check and sweep JSON say their format", () => {
    const c = cli("compare", "thread-pool", "--vary", "machine.cpus=2", "--seeds", "1", "--json");
    assert.equal(JSON.parse(c.stdout).format, "asidlab/compare/v1");
    const k = cli("check", "check-close-inflight", "--json", "--max-states", "200");
    assert.equal(JSON.parse(k.stdout).format, "asidlab/check/v1");
  });
});

describe("run: violations", () => {
  test("repeats group by property and message (numbers aside), with count and first/last step", () => {
    const g = groupViolations([
      { property: "user-mask", step: 10, message: "cpu 1: bit 16 set" },
      { property: "user-mask", step: 30, message: "cpu 3: bit 16 set" },
      { property: "tlb-stale", step: 20, message: "cpu 1: stale" },
      { property: "user-mask", step: 25, message: "cpu 2: bit 16 set" },
    ]);
    assert.deepEqual(
      g.map((x) => [x.property, x.count, x.first, x.last]),
      [
        ["user-mask", 3, 10, 30],
        ["tlb-stale", 1, 20, 20],
      ],
    );
  });

  test("a run with hundreds of violations prints each kind once, and every actor before the first", () => {
    const r = cli("run", "tlb-user-mask-width", "--kernel", "user-pcid-mask-u16");
    assert.equal(r.status, 1, r.stderr);
    const section = r.stdout.slice(r.stdout.indexOf("violations:"));
    const kinds = section.split("\n").filter((l) => /^\s+[\d,]+\s+\d+(\.\.\d+)?\s+user-mask\s/.test(l));
    assert.equal(kinds.length, 1, section.slice(0, 600));
    const led = r.stdout.slice(r.stdout.indexOf("what led to it:"));
    const cpus = new Set(led.match(/ cpu \d+ /g));
    assert.ok(cpus.size >= 2, `more than one CPU in what led to it: ${led}`);
    assert.match(led, /times\)/, "a spin loop is one line");
  });
});

describe("scenarios", () => {
  test("lines wrapped at words to 100 columns in a pipe, every word of every description kept", () => {
    const r = cli("scenarios");
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    for (const l of lines) assert.ok(l.length <= 100, `${l.length} columns: ${l}`);
    const dir = join(REPO_ROOT, "scenarios");
    for (const f of readdirSync(dir).filter((x) => x.endsWith(".yaml"))) {
      const first = readFileSync(join(dir, f), "utf8").split("\n")[0].replace(/^#\s*/, "");
      const words = first.split(/\s+/).filter((w) => w !== "");
      for (const w of words) assert.ok(r.stdout.includes(w), `${f}: '${w}' kept whole`);
    }
  });

  test("every --vary a built-in description recommends is one compare accepts", () => {
    const dir = join(REPO_ROOT, "scenarios");
    let seen = 0;
    for (const f of readdirSync(dir).filter((x) => x.endsWith(".yaml"))) {
      const text = readFileSync(join(dir, f), "utf8");
      for (const m of text.matchAll(/--vary\s+(\S+)/g)) {
        const vary = parseVary(m[1]);
        checkVaries([vary]);
        const ls = loadScenarioFile(join(dir, f));
        for (const params of crossProduct([vary])) variedScenario(ls, params); // throws if rejected
        seen++;
      }
    }
    assert.ok(seen >= 3, `${seen} recommendations checked`);
  });
});
