// check's plan: the scenario's check section and the flags, without the CLI.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InputError } from "../src/scenario/errors.js";
import { DEFAULT_MAX_STATES, DEFAULT_WALKS, plan } from "../src/search/plan.js";

describe("plan", () => {
  test("defaults: the exhaustive search, unbounded, 2,000,000 states, shortest on", () => {
    assert.deepEqual(plan({}, {}, 1), {
      properties: [],
      maxStates: DEFAULT_MAX_STATES,
      preemptionBound: null,
      bitstateMiB: null,
      shortest: true,
      por: false,
      symmetry: true,
      workers: null,
      random: null,
      shard: null,
    });
    assert.equal(DEFAULT_MAX_STATES, 2_000_000);
  });

  test("preemption bound: the scenario's, a flag's, or none (unbounded); --no-symmetry", () => {
    assert.equal(plan({ preemption_bound: "none" }, {}, 1).preemptionBound, null);
    assert.equal(plan({ preemption_bound: 2 }, { preemptionBound: "none" }, 1).preemptionBound, null);
    assert.equal(plan({ preemption_bound: "none" }, { preemptionBound: 3 }, 1).preemptionBound, 3);
    assert.equal(plan({}, { symmetry: false }, 1).symmetry, false);
  });

  test("the scenario's check section, the flags over it", () => {
    const chk = { properties: ["pasid-reuse"], max_states: 500, preemption_bound: 3 };
    const p = plan(chk, {}, 1);
    assert.deepEqual(p.properties, ["pasid-reuse"]);
    assert.equal(p.maxStates, 500);
    assert.equal(p.preemptionBound, 3);
    const q = plan(chk, { maxStates: 7, preemptionBound: 0, shortest: false }, 1);
    assert.equal(q.maxStates, 7);
    assert.equal(q.preemptionBound, 0, "bound 0 is a bound, not absent");
    assert.equal(q.shortest, false);
  });

  test("check.random chooses walks, unless a search flag or --exhaustive chose a search", () => {
    const chk = { random: 40 };
    assert.deepEqual(plan(chk, {}, 9).random, {
      walks: 40,
      seed: 9,
      depth: null,
      pct: undefined,
    });
    assert.equal(plan(chk, { exhaustive: true }, 9).random, null);
    assert.equal(plan(chk, { por: true }, 9).random, null);
    assert.equal(plan(chk, { bitstate: 4 }, 9).random, null);
    assert.equal(plan(chk, { workers: 2 }, 9).random, null);
    assert.equal(plan(chk, { workers: 1 }, 9).random?.walks, 40, "one worker is no search flag");
    assert.equal(plan(chk, { random: 5 }, 9).random?.walks, 5, "--random over check.random");
    // --pct keeps the scenario's walk count, and a search flag does not drop it.
    assert.deepEqual(plan(chk, { pct: 3, depth: 300 }, 9).random, { walks: 40, seed: 9, depth: 300, pct: 3 });
  });

  test("--random and --pct without a count from the scenario: 1,000 walks", () => {
    assert.equal(DEFAULT_WALKS, 1000);
    assert.deepEqual(plan({}, { pct: 2, depth: 500 }, 1).random, {
      walks: 1000,
      seed: 1,
      depth: 500,
      pct: 2,
    });
    assert.deepEqual(plan({}, { random: 20 }, 4).random, {
      walks: 20,
      seed: 4,
      depth: null,
      pct: undefined,
    });
  });

  test("search flags: --bitstate, --por, --workers (>= 2)", () => {
    assert.equal(plan({}, { bitstate: 4 }, 1).bitstateMiB, 4);
    assert.equal(plan({}, { por: true }, 1).por, true);
    assert.equal(plan({}, { workers: 3 }, 1).workers, 3);
    assert.equal(plan({}, { workers: 1 }, 1).workers, null);
  });

  test("flags that do not go together are input errors", () => {
    const bad: [object, RegExp][] = [
      [{ por: true, bitstate: 4 }, /^--por: /],
      [{ por: true, random: 3 }, /^--por: /],
      [{ por: true, pct: 2 }, /^--por: /],
      [{ workers: 2, por: true }, /^--workers: /],
      [{ workers: 2, bitstate: 1 }, /^--workers: /],
      [{ workers: 2, random: 1 }, /^--workers: /],
      [{ exhaustive: true, random: 1 }, /^--exhaustive: /],
      [{ exhaustive: true, pct: 2 }, /^--exhaustive: /],
    ];
    for (const [flags, msg] of bad) {
      assert.throws(
        () => plan({}, flags, 1),
        (err: unknown) => err instanceof InputError && msg.test(err.message),
        JSON.stringify(flags),
      );
    }
    // One worker is no parallel search: it goes with the rest.
    assert.doesNotThrow(() => plan({}, { workers: 1, por: true }, 1));
  });
});
