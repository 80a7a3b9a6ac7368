// Bitstate (supertrace) search: plain depth-first search over a bit array
// instead of a visited set (visited.ts's BitstateSet): some states may be
// missed, the hash factor says how likely that is.

import type { Engine } from "../engine/engine.js";
import type { Kernel } from "../kernel/kernel.js";
import type { DfsStack } from "./stack.js";
import { type DfsStrategy, EXPLORE, SKIP, type Visit } from "./strategy.js";
import { enabled, stateKeyLo, stepFinding } from "./transitions.js";
import { type Broken, budgetReason, type CheckBudget } from "./types.js";
import { BitstateSet } from "./visited.js";

export class BitstateDfs implements DfsStrategy {
  readonly visited: BitstateSet;

  constructor(
    private readonly k: Kernel,
    private readonly bound: number | null,
    private readonly budget: CheckBudget,
    mib: number,
  ) {
    this.visited = new BitstateSet(mib);
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
    return `bitstate (hash factor ${Math.round(this.visited.hashFactor())})`;
  }
}
