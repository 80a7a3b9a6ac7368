// Plain exhaustive depth-first search: a visited set of 64-bit fingerprints;
// optional preemption bound (ticks taken on the path, mixed into the
// fingerprint so that bounded search stays complete up to the bound).

import type { Engine } from "../engine/engine.js";
import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { BitstateDfs } from "./bitstate.js";
import { runDfs } from "./dfs.js";
import type { DfsStack } from "./stack.js";
import { type DfsStrategy, EXPLORE, SKIP, type Visit } from "./strategy.js";
import { checkMachine, enabled, stateKeyLo, stepFinding } from "./transitions.js";
import { type Broken, budgetReason, type CheckBudget, type ExploreResult } from "./types.js";
import { FingerprintSet } from "./visited.js";

export class PlainDfs implements DfsStrategy {
  readonly visited: FingerprintSet;

  constructor(
    private readonly k: Kernel,
    private readonly bound: number | null,
    private readonly budget: CheckBudget,
  ) {
    // Sized for the state budget, up to 2^22 slots (32 MiB), so that it seldom
    // grows: each doubling rehashes every state (7 % of a 1 M-state search).
    let log2 = 16;
    while (log2 < 22 && 2 ** log2 < 2 * budget.maxStates) log2++;
    this.visited = new FingerprintSet(log2);
  }

  reset(): void {}

  visit(ticks: number): Visit {
    const k = this.k;
    return this.visited.add(stateKeyLo(k, ticks, this.bound), k.mem.hashHi()) ? EXPLORE : SKIP;
  }

  choose(_buf: Int32Array, _n: number, i: number): number {
    return i;
  }

  expand(stack: DfsStack, depth: number): number {
    const n = enabled(this.k, stack.trs[depth]);
    stack.counts[depth] = n;
    return n;
  }

  step(e: Engine, tr: number): Broken {
    return stepFinding(e, tr);
  }

  found(): number {
    return -1;
  }

  poll(states: number, transitions: number, depth: number): string | null {
    return budgetReason(this.budget, states, transitions, depth);
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
): ExploreResult {
  const { k, e } = checkMachine(spec, properties);
  if (bitstateMiB !== null)
    return runDfs(
      k,
      e,
      new BitstateDfs(k, preemptionBound, budget, bitstateMiB),
      preemptionBound,
      () => Number.NaN,
    );
  return runDfs(
    k,
    e,
    new PlainDfs(k, preemptionBound, budget),
    preemptionBound,
    FingerprintSet.collisionProbability,
  );
}
