// check --por's footprint memo (src/search/fpmemo.ts) and visited map
// (sleepmap.ts): a footprint found in the memo is the one recording the
// transition again gives, on states reached by random walks over built-in
// check scenarios (variants included).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { enablingWords, Footprints } from "../src/search/footprints.js";
import { FootprintMemo } from "../src/search/fpmemo.js";
import { SleepMap } from "../src/search/sleepmap.js";
import { checkMachine, enabled, stepFinding } from "../src/search/transitions.js";
import { builtin } from "./helpers.js";

/** The footprint as sorted reads and writes. */
function sorted(p: Int32Array, o: number): [number[], number[]] {
  const nr = p[o];
  const nw = p[o + 1];
  return [
    [...p.subarray(o + 3, o + 3 + nr)].sort((a, b) => a - b),
    [...p.subarray(o + 3 + nr, o + 3 + nr + nw)].sort((a, b) => a - b),
  ];
}

describe("check --por's footprint memo", () => {
  test("a footprint the memo finds is the one the transition records from that state", () => {
    const cases: [string, string[]][] = [
      ["check-gp-fixup", ["gp-fixup-irqs-on"]],
      ["check-exit-inflight", []],
      ["check-ipi-in-bh", ["ipi-in-bh"]],
      ["check-switching-flush", []],
    ];
    let hits = 0;
    for (const [name, kernel] of cases) {
      const cs = builtin(name, { kernel });
      const { k, e } = checkMachine(cs.boot, []);
      const fp = new Footprints(k);
      const memo = new FootprintMemo(k.mem.words);
      k.mem.startJournal();
      const buf = new Int32Array(4096);
      let seed = 12345;
      const rand = (n: number) => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return (seed >>> 8) % n;
      };
      for (let walk = 0; walk < 30; walk++) {
        const start = k.mem.mark();
        const lo = k.w[0];
        const hi = k.w[1];
        for (let step = 0; step < 300; step++) {
          const n = enabled(k, buf);
          if (n === 0) break;
          // Every enabled transition: recorded, and compared with the memo's.
          for (let i = 0; i < n; i++) {
            const tr = buf[i];
            const m = k.mem.mark();
            const hlo = k.w[0];
            const hhi = k.w[1];
            const found = memo.lookup(tr);
            fp.begin();
            const bad = stepFinding(e, tr);
            fp.end();
            const nexec = fp.nr;
            enablingWords(k, tr, (a) => fp.read(a));
            k.mem.undo(m, hlo, hhi);
            k.violations.length = 0;
            k.violationCount = 0;
            const lf = found >= 0 ? found : memo.insert(tr, fp, nexec, bad !== null);
            if (found >= 0) hits++;
            const want: [number[], number[]] = [
              [...fp.reads.subarray(0, fp.nr)].sort((a, b) => a - b),
              [...fp.writes.subarray(0, fp.nw)].sort((a, b) => a - b),
            ];
            assert.deepEqual(sorted(memo.pool, memo.at(lf)), want, `${name}: transition ${tr}`);
            assert.equal(memo.finding(lf), bad !== null, name);
          }
          stepFinding(e, buf[rand(n)]);
          k.violations.length = 0;
          k.violationCount = 0;
        }
        k.mem.undo(start, lo, hi);
      }
    }
    assert.ok(hits > 1000, `${hits} footprints found in the memo`);
  });

  test("independence: neither writes what the other reads or writes; the answer is symmetric", () => {
    const cs = builtin("check-switching-flush");
    const { k, e } = checkMachine(cs.boot, []);
    const fp = new Footprints(k);
    const memo = new FootprintMemo(k.mem.words);
    k.mem.startJournal();
    const buf = new Int32Array(4096);
    const n = enabled(k, buf);
    const leaves: number[] = [];
    for (let i = 0; i < n; i++) {
      const m = k.mem.mark();
      const hlo = k.w[0];
      const hhi = k.w[1];
      fp.begin();
      const bad = stepFinding(e, buf[i]);
      fp.end();
      const nexec = fp.nr;
      k.mem.undo(m, hlo, hhi);
      leaves.push(memo.insert(buf[i], fp, nexec, bad !== null));
    }
    for (const x of leaves) {
      for (const y of leaves) {
        const [rx, wx] = sorted(memo.pool, memo.at(x));
        const [ry, wy] = sorted(memo.pool, memo.at(y));
        const want = !wx.some((a) => ry.includes(a) || wy.includes(a)) && !wy.some((a) => rx.includes(a));
        assert.equal(memo.independent(x, y), want);
        assert.equal(memo.independent(y, x), want);
      }
    }
  });
});

describe("check --por's visited map", () => {
  test("values survive growth, (0, 0) is a key like any other", () => {
    const m = new SleepMap(2);
    for (let i = 0; i < 1000; i++) m.set(i, i * 7, i % 97);
    m.set(0, 0, 5);
    for (let i = 1; i < 1000; i++) assert.equal(m.valueAt(m.find(i, i * 7)), i % 97);
    assert.equal(m.valueAt(m.find(0, 0)), 5);
    assert.equal(m.valueAt(m.find(5000, 1)), -1);
    assert.equal(m.size, 1000);
  });
});
