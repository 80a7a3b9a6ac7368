// `asidlab compare`: statistics, ratios, the cross product, output forms, bad input.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compareCsv, compareMarkdown, plain, roundToCi, statCell } from "../src/report/compare-report.js";
import { compare, differs, meanCi, parseBaseline, parseVary, summarise, t975 } from "../src/run/compare.js";
import { InputError } from "../src/scenario/errors.js";
import { loadScenarioFile, loadScenarioString } from "../src/scenario/load.js";
import { cli } from "./helpers.js";

describe("statistics", () => {
  test("mean and 95% confidence interval on known inputs (Student's t)", () => {
    const r = meanCi([1, 2, 3, 4, 5]);
    assert.equal(r.mean, 3);
    // s = sqrt(2.5), se = s / sqrt(5), t(0.975, 4) = 2.776
    const half = 2.776 * Math.sqrt(2.5 / 5);
    assert.ok(Math.abs(r.ci95[0] - (3 - half)) < 1e-9 && Math.abs(r.ci95[1] - (3 + half)) < 1e-9);
    assert.deepEqual(meanCi([7]).ci95, [7, 7], "one sample: no spread to estimate");
    assert.deepEqual(meanCi([4, 4, 4]).ci95, [4, 4]);
    assert.equal(t975(1), 12.706);
    assert.ok(Math.abs(t975(1000) - 1.96) < 0.01);
  });
});

const tiny = loadScenarioString(
  `
name: tiny
seed: 3
machine: { cpus: 1 }
devices: { dsa0: {} }
processes:
  - name: p
    program:
      repeat: 4
      do: [ { bind: dsa0 }, { enqcmd: dsa0 }, { wait: dsa0 }, { unbind: dsa0 }, { compute: 3000 } ]
`,
  "tiny.yaml",
);

describe("compare", () => {
  test("ratios are each row's mean over the first row's", () => {
    const rows = compare(tiny, [parseVary("pasid_lifetime=mm,unbind")], 2);
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0].seeds, [3, 4], "seeds from the scenario's, one per run");
    assert.equal(rows[0].metrics.pasid_allocs.mean, 1);
    assert.equal(rows[1].metrics.pasid_allocs.mean, 4, "unbind: one allocation per open");
    assert.equal(rows[1].metrics.pasid_allocs.ratio, 4);
    assert.equal(rows[0].metrics.pasid_allocs.ratio, 1);
    assert.equal(rows[0].metrics.ipis.ratio, null, "a zero first mean has no ratio");
  });

  test("the cross product of the varied keys, first key outermost; machine paths vary the machine", () => {
    const rows = compare(tiny, [parseVary("pasid_lifetime=mm,unbind"), parseVary("machine.cpus=1,2,4")], 1);
    assert.deepEqual(
      rows.map((r) => `${r.params.pasid_lifetime}/${r.params["machine.cpus"]}`),
      ["mm/1", "mm/2", "mm/4", "unbind/1", "unbind/2", "unbind/4"],
    );
    assert.ok(rows.every((r) => r.violations === 0));
  });

  test("kernel variants can be varied too", () => {
    const ls = loadScenarioFile("scenarios/exit-with-inflight.yaml");
    const rows = compare(ls, [parseVary("kernel=mainline,free-at-mmput")], 1);
    assert.equal(rows[0].violations, 0);
    assert.ok(rows[1].violations > 0);
  });

  test("CSV and Markdown carry every row and metric", () => {
    const rows = compare(tiny, [parseVary("pasid_lifetime=mm,unbind")], 2);
    const csv = compareCsv(rows, ["pasid_allocs", "drains"]).trim().split("\n");
    assert.equal(csv[0], "pasid_lifetime,seeds,metric,mean,ci95_lo,ci95_hi,ratio,significant,ci95_clipped");
    assert.equal(csv.length, 1 + 2 * 2);
    const md = compareMarkdown(rows, ["pasid_allocs"]).trim().split("\n");
    assert.equal(md.length, 2 + 2);
    assert.match(md[3], /^\| unbind \| 4 \(4\.00x\*\) \|$/, "4 in every seed against 1: significant");
    assert.match(md[0], /pasid_allocs \(PASIDs\)/, "the unit in the heading");
    const captioned = compareMarkdown(rows, ["pasid_allocs"], "tiny");
    assert.match(
      captioned.split("\n")[0],
      /^scenario {2}tiny .*baseline pasid_lifetime=mm/,
      "the caption kept",
    );
  });

  test("bad --vary input is an input error that says which", () => {
    assert.throws(
      () => compare(tiny, [parseVary("bogus=1,2")], 1),
      (e) => e instanceof InputError && /bogus: unknown key/.test(e.message),
    );
    assert.throws(
      () => compare(tiny, [parseVary("pasid_lifetime=mm,forever")], 1),
      (e) => e instanceof InputError && /forever|pasid_lifetime/.test(e.message),
    );
    assert.throws(
      () => compare(tiny, [parseVary("machine.cpus=0")], 1),
      (e) => e instanceof InputError && /machine\.cpus/.test(e.message),
    );
    assert.throws(() => parseVary("machine.cpus="), InputError);
    assert.throws(
      () => compare(tiny, [], 1),
      (e) => e instanceof InputError && /nothing to vary/.test(e.message),
    );
  });

  test("on the command line: JSON per the contract; bad input exits 2 with one line", () => {
    const r = cli("compare", "thread-pool", "--vary", "pasid_lifetime=mm,unbind", "--seeds", "2", "--json");
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      rows: {
        params: object;
        seeds: number[];
        metrics: Record<string, { mean: number; ci95: number[]; ratio: number | null }>;
      }[];
    };
    assert.equal(j.rows.length, 2);
    assert.deepEqual(Object.keys(j.rows[1].metrics.pasid_allocs).sort(), [
      "ci95",
      "clipped",
      "mean",
      "ratio",
      "significant",
    ]);
    const bad = cli("compare", "thread-pool", "--vary", "nope=1");
    assert.equal(bad.status, 2);
    assert.equal(bad.stdout, "");
    assert.match(bad.stderr, /^asidlab: --vary nope: unknown key/);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
  });
});

describe("compare: statistics that hold up", () => {
  const g = (params: Record<string, string>, runs: number[]) => ({
    params,
    seeds: runs.map((_, i) => i),
    runs: runs.map((x) => ({ m: x })),
    violations: 0,
  });

  test("--baseline key=value: ratios per value of the other keys", () => {
    const groups = [
      g({ p: "a", cpus: "1" }, [10, 10]),
      g({ p: "a", cpus: "2" }, [20, 20]),
      g({ p: "b", cpus: "1" }, [30, 30]),
      g({ p: "b", cpus: "2" }, [80, 80]),
    ];
    const byDefault = summarise(groups);
    assert.deepEqual(
      byDefault.map((r) => r.metrics.m.ratio),
      [1, 1, 3, 4],
      "default: the first value of the first key, for each cpus",
    );
    const byCpus = summarise(groups, { cpus: "2" });
    assert.deepEqual(
      byCpus.map((r) => r.metrics.m.ratio),
      [0.5, 1, 30 / 80, 1],
    );
    assert.equal(byCpus[1].metrics.m.significant, null, "the baseline row itself");
    const varies = [parseVary("p=a,b"), parseVary("cpus=1,2")];
    assert.deepEqual(parseBaseline(["cpus=2"], varies), { cpus: "2" });
    assert.throws(() => parseBaseline(["cpus=3"], varies), /not one of cpus's values/);
    assert.throws(() => parseBaseline(["q=1"], varies), /q is not varied/);
  });

  test("a count's interval is clipped at 0 and marked; the cell shows [0, hi]", () => {
    const [r] = summarise([g({ p: "a" }, [0, 0, 0, 8])]);
    const s = r.metrics.m;
    assert.equal(s.ci95[0], 0);
    assert.equal(s.clipped, true);
    assert.ok(s.ci95[1] > s.mean);
    assert.match(statCell(s), /^2(\.0)? \[0, \d+(\.\d)?\]$/);
  });

  test("significance: Welch's t at 95%", () => {
    assert.equal(differs([10, 11, 10, 11, 10], [10, 11, 10, 11, 11]), false);
    assert.equal(differs([10, 11, 10, 11, 10], [20, 21, 20, 21, 20]), true);
    assert.equal(differs([5, 5, 5], [6, 6, 6]), true, "no spread: any difference is real");
    assert.equal(differs([5, 5], [5, 5]), false);
  });

  test("rounded to the precision the interval supports; CSV numbers plain", () => {
    assert.equal(roundToCi(69666334.6, 693596), "69,670,000");
    assert.equal(roundToCi(1.5, 6.4), "1.5");
    assert.equal(roundToCi(1234.5678, 0.5), "1,234.57");
    assert.equal(plain(80.67699999999999), "80.677");
    assert.equal(plain(12), "12");
  });
});
