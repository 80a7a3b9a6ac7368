// Plain exhaustive depth-first search: a visited set of 64-bit fingerprints;
// optional preemption bound (ticks taken on the path, mixed into the
// fingerprint so that bounded search stays complete up to the bound).

import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { BitstateDfs } from "./bitstate.js";
import { runDfs } from "./dfs.js";
import { BaseDfs, EXPLORE, SKIP, type Visit } from "./strategy.js";
import { checkMachine, stateKeyLo } from "./transitions.js";
import type { CheckBudget, ExploreResult } from "./types.js";
import { FingerprintSet } from "./visited.js";

export class PlainDfs extends BaseDfs {
  readonly visited: FingerprintSet;

  constructor(
    k: Kernel,
    private readonly bound: number | null,
    budget: CheckBudget,
  ) {
    super(k, budget);
    // Sized for the state budget, up to 2^22 slots (32 MiB), so that it seldom
    // grows: each doubling rehashes every state (7 % of a 1 M-state search).
    let log2 = 16;
    while (log2 < 22 && 2 ** log2 < 2 * budget.maxStates) log2++;
    this.visited = new FingerprintSet(log2);
  }

  visit(ticks: number): Visit {
    const k = this.k;
    return this.visited.add(stateKeyLo(k, ticks, this.bound), k.mem.hashHi()) ? EXPLORE : SKIP;
  }

  describe(): string {
    return this.bound === null ? "complete" : `preemption-bound:${this.bound}`;
  }
}

/** Exhaustive depth-first search (bitstate when given its MiB). */
export function explore(
  spec: BootSpec,
  properties: readonly string[],
  budget: CheckBudget,
  preemptionBound: number | null,
  bitstateMiB: number | null = null,
  /** Bitstate's hash seed: 0 the plain hash, a shard's own otherwise. */
  hashSeed = 0,
): ExploreResult {
  const { k, e } = checkMachine(spec, properties);
  if (bitstateMiB !== null) {
    const r = runDfs(
      k,
      e,
      new BitstateDfs(k, preemptionBound, budget, bitstateMiB, hashSeed),
      preemptionBound,
      () => Number.NaN,
    );
    // A bit array may take a new state for a seen one: nothing found is no proof.
    return r.verdict === "pass" ? { ...r, verdict: "no-violation-found" } : r;
  }
  return runDfs(
    k,
    e,
    new PlainDfs(k, preemptionBound, budget),
    preemptionBound,
    FingerprintSet.collisionProbability,
  );
}
