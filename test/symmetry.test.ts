// Symmetry reduction (search/symmetry.ts): the representative's fingerprint
// is the fingerprint of a real state; two states it merges behave alike
// (the same successors, up to symmetry, the same findings); and the reduced
// search gives plain search's verdicts, on the built-in scenarios and on
// generated ones.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Memory } from "../src/machine/memory.js";
import { Rng } from "../src/machine/rng.js";
import { compileScenario } from "../src/scenario/compile.js";
import { loadScenarioString } from "../src/scenario/load.js";
import { explore } from "../src/search/plain.js";
import { boundOf } from "../src/search/plan.js";
import { explorePor } from "../src/search/por.js";
import { replaySchedule } from "../src/search/replay.js";
import { Symmetry } from "../src/search/symmetry.js";
import { checkMachine, enabled, endFinding, stepFinding } from "../src/search/transitions.js";

const NO_BUDGET = { maxStates: 5_000_000 };

function machine(src: string, kernel: string[] = []) {
  const ls = loadScenarioString(src, "x.yaml");
  return { ls, cs: compileScenario(ls, { kernel }) };
}
const builtinSrc = (name: string) => readFileSync(`scenarios/${name}.yaml`, "utf8");

/**
 * Explore with states stored by their representative (up to `max`); at each
 * merge of two different states, compare what each can do next: the
 * representatives of their successors and what each step broke (or, for a
 * terminal state, what the end invariants say). Returns the merges and the
 * first mismatch.
 */
function mergesBehaveAlike(src: string, bound: number, max: number) {
  const { cs } = machine(src);
  const { k, e } = checkMachine(cs.boot, []);
  const sym = new Symmetry(k);
  const buf = new Int32Array(4096);
  const key = () => {
    sym.key();
    return `${sym.lo}:${sym.hi}`;
  };
  const next = (snap: Int32Array): string => {
    k.mem.restore(snap);
    const n = enabled(k, buf);
    if (n === 0) {
      const f = endFinding(e);
      k.mem.restore(snap);
      return `end:${f?.property ?? ""}`;
    }
    const out: string[] = [];
    for (const tr of Array.from(buf.subarray(0, n))) {
      const f = stepFinding(e, tr);
      out.push(`${key()}:${f?.property ?? ""}`);
      k.mem.restore(snap);
    }
    return out.sort().join(",");
  };
  const seen = new Map<string, Int32Array>([[key(), k.mem.snapshot()]]);
  const stack: [Int32Array, number][] = [[k.mem.snapshot(), 0]];
  let merges = 0;
  let mismatch: string | null = null;
  while (stack.length > 0 && seen.size < max && mismatch === null) {
    const [snap, ticks] = stack.pop()!;
    k.mem.restore(snap);
    const trs = Array.from(buf.subarray(0, enabled(k, buf)));
    for (const tr of trs) {
      k.mem.restore(snap);
      const t = ticks + (Math.floor(tr / 2 ** 20) === 1 ? 1 : 0);
      if (t > bound || stepFinding(e, tr) !== null) continue;
      const kk = key();
      const s2 = k.mem.snapshot();
      const old = seen.get(kk);
      if (old === undefined) {
        seen.set(kk, s2);
        stack.push([s2, t]);
        continue;
      }
      if (old.every((v, i) => i < 2 || v === s2[i])) continue;
      merges++;
      const a = next(old);
      const b = next(s2);
      if (a !== b) {
        const diff: string[] = [];
        for (let i = 2; i < old.length; i++)
          if (old[i] !== s2[i]) diff.push(`${k.L.describe(i)} ${old[i]}/${s2[i]}`);
        mismatch = diff.slice(0, 12).join(", ");
        break;
      }
    }
  }
  return { merges, mismatch, states: seen.size };
}

describe("symmetry reduction", () => {
  test("the representative's fingerprint is that of the state it describes (every built-in scenario, random walks)", () => {
    const names = [
      "check-switching-flush",
      "check-exit-inflight",
      "check-gp-fixup",
      "fork-exec-churn",
      "process-lifecycle",
      "file-passed-on",
      "thread-pool",
      "exec-after-activation",
    ];
    let moved = 0;
    for (const name of names) {
      const { cs } = machine(builtinSrc(name));
      const { k, e } = checkMachine(cs.boot, []);
      const sym = new Symmetry(k);
      const buf = new Int32Array(4096);
      const rng = new Rng(11);
      const init = k.mem.snapshot();
      for (let walk = 0; walk < 4; walk++) {
        k.mem.restore(init);
        for (let step = 0; step < 300; step++) {
          const n = enabled(k, buf);
          if (n === 0) break;
          stepFinding(e, buf[rng.int(0, n - 1)]);
          const rep = sym.representative();
          const mem = new Memory(rep.length);
          mem.words.set(rep);
          mem.rehash();
          assert.equal(mem.hashLo() | 0, sym.lo | 0, `${name} walk ${walk} step ${step}`);
          assert.equal(mem.hashHi() | 0, sym.hi | 0, `${name} walk ${walk} step ${step}`);
          if (rep.some((v, i) => i >= 2 && v !== k.w[i])) moved++;
        }
      }
    }
    assert.ok(moved > 100, "representatives that differ from their state were checked");
  });

  test("two states it merges behave alike: the same successors up to symmetry, the same findings", () => {
    const two = builtinSrc("check-exit-inflight-8").replace("count: 8", "count: 2");
    const cases: [string, number, number][] = [
      [two, 3, 5_000],
      [builtinSrc("process-lifecycle"), 0, 30_000],
      [builtinSrc("check-gp-fixup-2cpu"), 0, 20_000],
      [builtinSrc("fork-exec-churn"), 0, 10_000],
      [builtinSrc("check-exit-inflight"), 1, 10_000],
    ];
    let merges = 0;
    for (const [src, bound, max] of cases) {
      const r = mergesBehaveAlike(src, bound, max);
      assert.equal(
        r.mismatch,
        null,
        `${src.split("\n")[1]}: merged states behave differently: ${r.mismatch}`,
      );
      merges += r.merges;
    }
    assert.ok(merges > 20, `states were merged (${merges})`);
  });

  test("a state with two processes' slots swapped (pointers renamed) has the same representative", () => {
    const src = builtinSrc("check-exit-inflight-8").replace("count: 8", "count: 3");
    const { cs } = machine(src);
    const { k, e } = checkMachine(cs.boot, []);
    // internals: the maps a test sets by hand to build the swapped state
    type Region = { map: Int32Array; count: number; moved: boolean };
    // internals: the maps a test sets by hand to build the swapped state
    const sym = new Symmetry(k) as unknown as {
      key(): void;
      representative(fresh: boolean): Int32Array;
      lo: number;
      hi: number;
      task: Region;
      mm: Region;
      files: Region;
      file: Region;
      bond: Region;
      pidOn: boolean;
      genOn: boolean;
    };
    const swap = (s: Region, x: number, y: number) => {
      for (let i = 0; i < s.count; i++) s.map[i] = i;
      s.map[x] = y;
      s.map[y] = x;
      s.moved = true;
    };
    const buf = new Int32Array(4096);
    const rng = new Rng(5);
    const a = k.params.cpus + 1;
    let checked = 0;
    for (let step = 0; step < 200; step++) {
      const n = enabled(k, buf);
      if (n === 0) break;
      stepFinding(e, buf[rng.int(0, n - 1)]);
      if (k.get(k.T.state, a) === 0 || k.get(k.T.state, a + 1) === 0) continue;
      sym.key();
      const lo = sym.lo;
      const hi = sym.hi;
      swap(sym.task, a, a + 1);
      swap(sym.mm, k.get(k.T.mm, a), k.get(k.T.mm, a + 1));
      swap(sym.files, k.get(k.T.files, a), k.get(k.T.files, a + 1));
      swap(sym.file, 0, 0);
      swap(sym.bond, 0, 0);
      sym.pidOn = false;
      sym.genOn = false;
      const swapped = sym.representative(false);
      const snap = k.mem.snapshot();
      k.w.set(swapped);
      k.mem.rehash();
      sym.key();
      assert.ok(
        swapped.some((v, i) => i >= 2 && v !== snap[i]),
        "the swapped state differs",
      );
      assert.equal(sym.lo, lo, `step ${step}`);
      assert.equal(sym.hi, hi, `step ${step}`);
      k.mem.restore(snap);
      checked++;
    }
    assert.ok(checked > 50, `swapped states compared (${checked})`);
  });

  test("gives plain search's verdict and property on every built-in check scenario and kernel variant", () => {
    const pairs: [string, string[], number | null][] = [
      ["check-exit-inflight", [], null],
      ["check-exit-inflight", ["free-at-mmput"], null],
      ["check-close-inflight", ["no-drain"], null],
      ["check-gp-fixup", ["gp-fixup-irqs-on"], null],
      ["check-ipi-in-bh", ["ipi-in-bh"], null],
      ["check-switching-flush", ["fea4e317f9e7"], null],
      ["check-switching-flush", ["83b0177a6c48"], null],
      ["check-exit-inflight-8", [], 0],
      ["check-exit-inflight-8", ["free-at-mmput"], 1],
      ["check-gp-fixup-2cpu", ["gp-fixup-irqs-on"], 1],
      ["check-user-asid-3cpu", ["fea4e317f9e7"], 0],
    ];
    for (const [name, kernel, b] of pairs) {
      const { ls, cs } = machine(builtinSrc(name), kernel);
      const bound = b ?? boundOf(ls.scenario.check);
      const plain = explore(cs.boot, [], NO_BUDGET, bound);
      const sym = explore(cs.boot, [], NO_BUDGET, bound, null, "always");
      const what = `${name} ${kernel.join()} bound ${bound}`;
      assert.equal(sym.verdict, plain.verdict, what);
      assert.equal(sym.finding?.property, plain.finding?.property, what);
      assert.ok(sym.states <= plain.states, what);
      assert.match(sym.coverage, /, symmetry$/);
      if (sym.finding !== null) {
        // found on a state stored by its representative, the schedule is a real one
        const r = replaySchedule(cs.boot, [], sym.finding.schedule);
        assert.equal(r.error, null, what);
        assert.equal(r.finding?.property, sym.finding.property, what);
      }
    }
  });

  test("symmetry and --por give plain search's verdict on generated scenarios (fast-check)", () => {
    const op = fc.constantFrom(
      "{ bind: dsa0 }",
      "{ enqcmd: dsa0 }",
      "{ wait: dsa0 }",
      "{ unbind: dsa0 }",
      "{ touch: 1 }",
      "{ munmap: 1 }",
      "{ yield: true }",
      "{ compute: 500 }",
      "{ exit: 0 }",
      "{ fork: [ { touch: 1 } ] }",
      "{ clone_thread: [ { yield: true } ] }",
    );
    const proc = fc.record({
      count: fc.integer({ min: 1, max: 3 }),
      threads: fc.integer({ min: 1, max: 2 }),
      program: fc.array(op, { minLength: 1, maxLength: 4 }),
    });
    const scenario = fc.record({
      cpus: fc.integer({ min: 1, max: 2 }),
      procs: fc.array(proc, { minLength: 1, maxLength: 2 }),
      variant: fc.constantFrom(null, "free-at-mmput", "no-drain"),
      bound: fc.integer({ min: 0, max: 1 }),
    });
    let compared = 0;
    fc.assert(
      fc.property(scenario, (s) => {
        const src = [
          "name: gen",
          `machine: { cpus: ${s.cpus}, pasid_bits: 3 }`,
          "devices: { dsa0: { wq_depth: 2 } }",
          "processes:",
          ...s.procs.map(
            (p, i) =>
              `  - { name: p${i}, count: ${p.count}, threads: ${p.threads}, program: [ ${p.program.join(", ")} ] }`,
          ),
        ].join("\n");
        let cs: ReturnType<typeof machine>["cs"];
        try {
          cs = machine(src, s.variant === null ? [] : [s.variant]).cs;
        } catch {
          return; // an op the scenario's checks refuse in that place
        }
        const budget = { maxStates: 60_000 };
        const plain = explore(cs.boot, [], budget, s.bound);
        const sym = explore(cs.boot, [], budget, s.bound, null, "always");
        const por = explorePor(cs.boot, [], budget, s.bound);
        if (plain.verdict === "incomplete" || sym.verdict === "incomplete" || por.verdict === "incomplete")
          return;
        compared++;
        for (const r of [sym, por]) {
          assert.equal(r.verdict, plain.verdict, `${r.coverage}\n${src}`);
          assert.equal(r.finding?.property, plain.finding?.property, `${r.coverage}\n${src}`);
        }
      }),
      { numRuns: 40, seed: 7 },
    );
    assert.ok(compared >= 20, `enough generated scenarios ran to the end (${compared})`);
  });
});
