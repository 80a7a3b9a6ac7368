// The search layer's contract: the depth-first driver and its stack, and a
// strategy written against them, compared with the plain search.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Dfs, runDfs } from "../src/search/dfs.js";
import { explore, PlainDfs } from "../src/search/plain.js";
import { RandomWalk, randomWalks } from "../src/search/random.js";
import { DfsStack } from "../src/search/stack.js";
import { checkMachine, enabled, stepFinding } from "../src/search/transitions.js";
import { FingerprintSet } from "../src/search/visited.js";
import { walks } from "../src/search/walks.js";
import { builtin } from "./helpers.js";

const BUDGET = { maxStates: 5_000_000 };

/** A new strategy, as one would add one: the plain search taking the enabled transitions last first. */
class ReverseDfs extends PlainDfs {
  override choose(_buf: Int32Array, n: number, i: number): number {
    return n - 1 - i;
  }
}

describe("search: the depth-first driver and its strategies", () => {
  test("a strategy taking transitions in another order reaches the same states", () => {
    const cs = builtin("check-exit-inflight");
    for (const bound of [0, 1]) {
      const plain = explore(cs.boot, [], BUDGET, bound);
      const { k, e } = checkMachine(cs.boot, []);
      const rev = runDfs(k, e, new ReverseDfs(k, bound, BUDGET), bound, FingerprintSet.collisionProbability);
      assert.equal(plain.verdict, "pass");
      assert.equal(rev.verdict, "pass");
      assert.equal(rev.states, plain.states, `bound ${bound}`);
      // Each state is explored at least once; more when reached again with fewer preemptions (order-dependent).
      assert.ok(rev.transitions >= rev.states - 1 && plain.transitions >= plain.states - 1, `bound ${bound}`);
      assert.equal(rev.coverage, plain.coverage);
    }
  });

  test("a strategy finds a violation plain search finds, with a schedule that replays", () => {
    const cs = builtin("check-exit-inflight", { kernel: ["free-at-mmput"] });
    const plain = explore(cs.boot, [], BUDGET, 1);
    const { k, e } = checkMachine(cs.boot, []);
    const rev = runDfs(k, e, new ReverseDfs(k, 1, BUDGET), 1, FingerprintSet.collisionProbability);
    assert.equal(plain.verdict, "violation");
    assert.equal(rev.verdict, "violation");
    assert.equal(rev.finding?.property, plain.finding?.property);
  });

  test("the driver ends on the strategy's state budget, with the reason", () => {
    const cs = builtin("check-exit-inflight");
    const { k, e } = checkMachine(cs.boot, []);
    const dfs = new Dfs(k, e, new PlainDfs(k, null, { maxStates: 100 }), { bound: null });
    assert.ok(dfs.start() > 0);
    assert.equal(dfs.run(), "incomplete");
    assert.equal(dfs.states, 100);
    assert.equal(dfs.reason, "state budget: 100 states");
    assert.ok(dfs.maxDepth > 0 && dfs.stack.depth >= 0);
  });

  test("the stack restores a pushed state by undoing the journal", () => {
    const cs = builtin("check-exit-inflight");
    const { k, e } = checkMachine(cs.boot, []);
    const s = new DfsStack(k);
    s.push(0, 0);
    const words = k.mem.snapshot();
    const buf = new Int32Array(64);
    const n = enabled(k, buf);
    assert.ok(n > 0);
    for (let i = 0; i < 5 && enabled(k, buf) > 0; i++) assert.equal(stepFinding(e, buf[0]), null);
    assert.notDeepEqual(k.mem.snapshot(), words);
    s.fresh = false;
    s.restore(0);
    assert.deepEqual(k.mem.snapshot(), words);
  });

  test("walks: the random strategy through the walk driver is randomWalks", () => {
    const cs = builtin("check-gp-fixup", { kernel: ["gp-fixup-irqs-on"] });
    const a = randomWalks(cs.boot, [], { count: 30, seed: 5, depth: 500 }, BUDGET);
    const b = walks(cs.boot, [], { count: 30, seed: 5, bound: 500 }, BUDGET, (k) => new RandomWalk(k));
    assert.deepEqual({ ...b, coverage: "" }, { ...a, coverage: "" });
    assert.equal(b.coverage, "random");
    assert.match(
      a.coverage,
      /^random:\d+ walks \(seed 5\), each to quiescence or 500 steps \(--depth\), 0 cut there$/,
    );
  });
});
