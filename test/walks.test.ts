// Random and PCT walks that end at quiescence, PCT's k, the no-violation-found
// verdict, and swarm shards: `check --shard k/n` and `merge` of check results.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { InputError } from "../src/scenario/errors.js";
import type { CheckResult } from "../src/search/check.js";
import { mergeChecks } from "../src/search/merge.js";
import { PctWalk, pctWalks } from "../src/search/pct.js";
import { explore } from "../src/search/plain.js";
import { plan } from "../src/search/plan.js";
import { randomWalks } from "../src/search/random.js";
import { checkMachine, enabled, MAX_ENABLED } from "../src/search/transitions.js";
import { BitstateSet } from "../src/search/visited.js";
import { walks } from "../src/search/walks.js";
import { builtin, cli } from "./helpers.js";

const NO_BUDGET = { maxStates: 5_000_000 };
const walksOf = (coverage: string) => Number(/^(?:random|pct):(\d+) walks/.exec(coverage)?.[1]);

describe("walks end at quiescence", () => {
  test("PCT walks on check-gp-fixup stop when nothing is enabled, far below a bound of 100,000", () => {
    // Before, a tick source of its own priority preempted at every step and
    // a CPU polling the device starved it: walks ran to the bound.
    const cs = builtin("check-gp-fixup");
    const r = pctWalks(cs.boot, [], { count: 50, seed: 1, depth: 100_000 }, 3, NO_BUDGET);
    assert.equal(r.verdict, "no-violation-found");
    assert.ok(r.maxDepth < 1000, `longest walk ${r.maxDepth}`);
    assert.ok(r.transitions < 50 * 1000, `${r.transitions} transitions`);
    assert.match(r.coverage, /, 0 cut there;/);
  });

  test("a walk's last state is terminal: nothing enabled there", () => {
    const cs = builtin("check-exit-inflight");
    let last: Int32Array | null = null;
    const r = walks(cs.boot, [], { count: 1, seed: 3, bound: 100_000 }, NO_BUDGET, (k) => {
      const s = new PctWalk(k, 200, 3);
      const visit = s.visit.bind(s);
      s.visit = () => {
        last = k.mem.snapshot();
        return visit();
      };
      return s;
    });
    assert.ok(r.maxDepth < 100_000);
    const m = checkMachine(cs.boot, []);
    m.k.mem.restore(last!);
    assert.equal(enabled(m.k, new Int32Array(MAX_ENABLED)), 0);
  });

  test("the derived bound: 16 x the longest calibration walk, said in the coverage; random walks are not cut", () => {
    const cs = builtin("check-gp-fixup");
    const r = randomWalks(cs.boot, [], { count: 40, seed: 2, depth: null }, NO_BUDGET);
    const m =
      /each to quiescence or (\d+) steps \(16 x (\d+), the longest calibration walk without preemption\), 0 cut there$/.exec(
        r.coverage,
      );
    assert.ok(m, r.coverage);
    assert.equal(Number(m[1]), 16 * Number(m[2]));
    assert.ok(r.maxDepth <= Number(m[1]));
  });
});

describe("PCT's k is the real walk length", () => {
  test("derived k is within the walks' lengths and few walks run past it; the guarantee uses it", () => {
    const cs = builtin("check-gp-fixup");
    const r = pctWalks(cs.boot, [], { count: 100, seed: 1, depth: null }, 3, NO_BUDGET);
    const m =
      /d=3, k=(\d+) \(the longest calibration PCT walk\), 3 threads: .* p >= ([\d.e+-]+); (\d+) walks longer than k$/.exec(
        r.coverage,
      );
    assert.ok(m, r.coverage);
    const k = Number(m[1]);
    assert.ok(k < 1000 && k <= r.maxDepth + 200, `k ${k}, longest ${r.maxDepth}`);
    assert.equal(Number(m[2]), Number((1 / (3 * k * k)).toExponential(1)));
    assert.ok(Number(m[3]) < 50, `${m[3]} of 100 walks longer than k`);
  });

  test("PCT (d = 3) finds the gp-fixup-irqs-on race in at most a few hundred walks, on several seeds", () => {
    const cs = builtin("check-gp-fixup", { kernel: ["gp-fixup-irqs-on"] });
    for (const seed of [1, 2, 3]) {
      // --depth 300 (above the walks' length) skips calibration, which finds it on its own.
      const r = pctWalks(cs.boot, [], { count: 300, seed, depth: 300 }, 3, NO_BUDGET);
      assert.equal(r.verdict, "violation", `seed ${seed}: ${r.coverage}`);
      assert.equal(r.finding?.property, "fpu-lost-update");
      assert.ok(walksOf(r.coverage) <= 300);
    }
    // And with everything derived, as `check --random 500 --pct 3` runs it.
    const d = pctWalks(cs.boot, [], { count: 500, seed: 1, depth: null }, 3, NO_BUDGET);
    assert.equal(d.verdict, "violation");
  });
});

describe("no-violation-found: a search that is not exhaustive never says pass", () => {
  test("random and PCT walks and bitstate, as functions", () => {
    const cs = builtin("check-gp-fixup");
    assert.equal(
      randomWalks(cs.boot, [], { count: 5, seed: 1, depth: null }, NO_BUDGET).verdict,
      "no-violation-found",
    );
    assert.equal(
      pctWalks(cs.boot, [], { count: 5, seed: 1, depth: null }, 2, NO_BUDGET).verdict,
      "no-violation-found",
    );
    assert.equal(explore(cs.boot, [], NO_BUDGET, 0, 8).verdict, "no-violation-found");
    assert.equal(explore(cs.boot, [], NO_BUDGET, 0).verdict, "pass", "the exhaustive search still says pass");
  });

  test("on the command line: text and JSON, exit 0", () => {
    const t = cli("check", "check-gp-fixup", "--random", "5");
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^verdict {4}no-violation-found$/m);
    const j = cli("check", "check-gp-fixup", "--pct", "2", "--random", "5", "--json");
    assert.equal(j.status, 0, j.stderr);
    const r = JSON.parse(j.stdout) as CheckResult;
    assert.equal(r.verdict, "no-violation-found");
    assert.equal(r.walks, 5);
    assert.match(r.coverage, /^pct:5 walks/);
  });
});

describe("swarm shards", () => {
  test("plan: --shard with walks or bitstate; not with the exhaustive search, --por or --workers", () => {
    const s = { k: 2, n: 4 };
    assert.deepEqual(plan({}, { random: 8, shard: s }, 1).shard, s);
    assert.deepEqual(plan({}, { pct: 3, shard: s }, 1).shard, s);
    assert.deepEqual(plan({}, { bitstate: 4, shard: s }, 1).shard, s);
    assert.deepEqual(plan({ random: 10 }, { shard: s }, 1).shard, s, "the scenario's check.random");
    assert.equal(plan({}, { random: 8 }, 1).shard, null);
    assert.throws(() => plan({}, { shard: s }, 1), /^InputError: --shard: /);
    for (const flags of [
      { shard: s, exhaustive: true },
      { shard: s, por: true },
      { shard: s, workers: 2 },
    ])
      assert.throws(
        () => plan({ random: 10 }, flags, 1),
        (e: unknown) => e instanceof InputError && /^--(shard|workers|por): /.test(e.message),
        JSON.stringify(flags),
      );
  });

  test("n shards run exactly the walks of the unsharded run, whatever n", () => {
    const cs = builtin("check-gp-fixup");
    const o = { count: 24, seed: 7, depth: null };
    const whole = randomWalks(cs.boot, [], o, NO_BUDGET);
    for (const n of [2, 3, 5]) {
      let transitions = 0;
      let walked = 0;
      let longest = 0;
      for (let k = 1; k <= n; k++) {
        const r = randomWalks(cs.boot, [], { ...o, shard: { k, n } }, NO_BUDGET);
        transitions += r.transitions;
        walked += r.walks ?? 0;
        longest = Math.max(longest, r.maxDepth);
      }
      assert.equal(transitions, whole.transitions, `n = ${n}`);
      assert.equal(walked, 24);
      assert.equal(longest, whole.maxDepth);
    }
  });

  test("bitstate shards use their own hash seed: other bits, other omissions", () => {
    const a = new BitstateSet(1 / 256);
    const b = new BitstateSet(1 / 256, 3);
    let lostA = 0;
    let lostB = 0;
    let differ = 0;
    for (let i = 0; i < 4000; i++) {
      const lo = Math.imul(i, 0x9e3779b1);
      const hi = Math.imul(i ^ 0x55, 0x85ebca6b);
      const x = a.add(lo, hi);
      const y = b.add(lo, hi);
      if (!x) lostA++;
      if (!y) lostB++;
      if (x !== y) differ++;
    }
    assert.ok(lostA > 0 && lostB > 0, "a small array omits states");
    assert.ok(differ > 0, "the two seeds omit different states");
    const cs = builtin("check-gp-fixup");
    assert.match(
      explore(cs.boot, [], NO_BUDGET, 0, 8, false, 3).coverage,
      /^bitstate \(hash factor \d+, hash seed 3\)$/,
    );
  });
});

/** A check result as `check --json --shard k/n` writes it, with what a test changes. */
function shard(k: number, n: number, over: Partial<CheckResult> = {}): CheckResult {
  return {
    verdict: "no-violation-found",
    property: null,
    message: null,
    states: 100 * k,
    transitions: 1000 * k,
    max_depth: 300 + k,
    coverage: `random:10 walks (seed 1, shard ${k}/${n} of 40 walks)`,
    collision_probability: 1e-12,
    counterexample: null,
    reason: null,
    scenario: "check-gp-fixup",
    kernel: ["gp-fixup-irqs-on"],
    seed: 1,
    stamp: "0123456789abcdef",
    search: "random, 40 walks, depth derived",
    walks: 10,
    shard: { k, n },
    merged: null,
    ...over,
  };
}

function violation(k: number, length: number): CheckResult {
  return shard(k, 4, {
    verdict: "violation",
    property: "fpu-lost-update",
    message: `from shard ${k}`,
    counterexample: {
      steps: [],
      length,
      found_length: length,
      shortest_length: null,
      shortest_complete: null,
      reproduce: `asidlab replay out/x.shard-${k}-of-4.schedule`,
    },
  });
}

const text = (r: CheckResult, file = `s${r.shard?.k}.json`) => ({
  file,
  text: `${JSON.stringify(r, null, 2)}\n`,
});

describe("merge of check shards", () => {
  test("any violation wins, the shortest counterexample (ties: the lowest shard); sums; the same bytes in any order", () => {
    const all = [shard(1, 4), violation(2, 40), violation(3, 30), violation(4, 30)].map((r) => text(r));
    const m = mergeChecks(all);
    assert.equal(mergeChecks([all[3], all[1], all[0], all[2]]), m);
    assert.equal(mergeChecks([...all].reverse()), m);
    const r = JSON.parse(m) as CheckResult;
    assert.equal(r.verdict, "violation");
    assert.equal(r.message, "from shard 3");
    assert.equal(r.counterexample?.length, 30);
    assert.equal(r.states, 1000);
    assert.equal(r.transitions, 10_000);
    assert.equal(r.walks, 40);
    assert.equal(r.max_depth, 304);
    assert.equal(r.shard, null);
    assert.deepEqual(r.merged, { n: 4, shards: [1, 2, 3, 4], missing: [] });
    assert.match(r.coverage, /^4 of 4 shards \(1, 2, 3, 4; none missing\), 40 walks: shard 1: /);
  });

  test("nothing found: no-violation-found, missing shards said; an incomplete shard makes it incomplete", () => {
    const r = JSON.parse(mergeChecks([text(shard(3, 4)), text(shard(1, 4))])) as CheckResult;
    assert.equal(r.verdict, "no-violation-found");
    assert.deepEqual(r.merged, { n: 4, shards: [1, 3], missing: [2, 4] });
    assert.match(r.coverage, /^2 of 4 shards \(1, 3; missing 2, 4\), 20 walks/);
    const inc = shard(2, 4, { verdict: "incomplete", reason: "time budget: 5 s" });
    const q = JSON.parse(mergeChecks([text(shard(1, 4)), text(inc)])) as CheckResult;
    assert.equal(q.verdict, "incomplete");
    assert.equal(q.reason, "shard 2: time budget: 5 s");
  });

  test("shards of different checks, a shard twice, a result without a shard: input errors", () => {
    const bad: [CheckResult, RegExp][] = [
      [shard(2, 4, { seed: 2 }), /^s2\.json: a shard of another check \(.*seed 2.*\) than s1\.json/],
      [shard(2, 4, { scenario: "other" }), /another check/],
      [shard(2, 4, { kernel: [] }), /another check/],
      [shard(2, 4, { stamp: "fedcba9876543210" }), /another check/],
      [shard(2, 4, { search: "pct d=3, 40 walks, depth derived" }), /another check/],
      [shard(2, 5), /another check/],
      [shard(1, 4), /^s1\.json: shard 1\/4 is also in s1\.json$/],
      [shard(1, 4, { shard: null }), /without a shard/],
    ];
    for (const [r, msg] of bad)
      assert.throws(
        () => mergeChecks([text(shard(1, 4)), text(r)]),
        (e: unknown) => e instanceof InputError && msg.test(e.message),
        msg.source,
      );
  });

  test("on the command line: check --shard --json, merge in two orders; a check result with sweep lines is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "asidlab-swarm-"));
    try {
      const files: string[] = [];
      for (let k = 1; k <= 2; k++) {
        const r = cli("check", "check-gp-fixup", "--random", "6", "--shard", `${k}/2`, "--json");
        assert.equal(r.status, 0, r.stderr);
        const f = join(dir, `c${k}.json`);
        writeFileSync(f, r.stdout);
        files.push(f);
      }
      const a = cli("merge", files[0], files[1]);
      const b = cli("merge", files[1], files[0]);
      assert.equal(a.status, 0, a.stderr);
      assert.equal(a.stdout, b.stdout);
      const m = JSON.parse(a.stdout) as CheckResult;
      assert.equal(m.walks, 6);
      assert.equal(m.verdict, "no-violation-found");
      // A violation in a shard: merge exits 1, as check does.
      const v1 = join(dir, "v1.json");
      const v2 = join(dir, "v2.json");
      writeFileSync(v1, text(shard(1, 4)).text);
      writeFileSync(v2, text(violation(2, 40)).text);
      const mv = cli("merge", v2, v1);
      assert.equal(mv.status, 1, mv.stderr);
      assert.equal((JSON.parse(mv.stdout) as CheckResult).message, "from shard 2");
      const sweep = join(dir, "s.ndjson");
      writeFileSync(sweep, '{"sweep":"x","cell":0,"cells":1}\n');
      const mix = cli("merge", files[0], sweep);
      assert.equal(mix.status, 2);
      assert.match(mix.stderr.trim(), /^asidlab: merge: .*c1\.json is a check result and .*s\.ndjson is not/);
      const ex = cli("check", "check-gp-fixup", "--shard", "1/2");
      assert.equal(ex.status, 2);
      assert.match(ex.stderr.trim(), /^asidlab: --shard: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
