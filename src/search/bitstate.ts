// Bitstate (supertrace) search: plain depth-first search over a bit array
// instead of a visited set (visited.ts's BitstateSet): some states may be
// missed, the hash factor says how likely that is.

import type { Kernel } from "../kernel/kernel.js";
import { BaseDfs, EXPLORE, SKIP, type Visit } from "./strategy.js";
import { stateKeyLo } from "./transitions.js";
import type { CheckBudget } from "./types.js";
import { BitstateSet } from "./visited.js";

export class BitstateDfs extends BaseDfs {
  readonly visited: BitstateSet;

  constructor(
    k: Kernel,
    private readonly bound: number | null,
    budget: CheckBudget,
    mib: number,
    private readonly hashSeed = 0,
  ) {
    super(k, budget);
    this.visited = new BitstateSet(mib, hashSeed);
  }

  visit(ticks: number): Visit {
    const k = this.k;
    return this.visited.add(stateKeyLo(k, ticks, this.bound), k.mem.hashHi()) ? EXPLORE : SKIP;
  }

  describe(): string {
    const seed = this.hashSeed === 0 ? "" : `, hash seed ${this.hashSeed}`;
    return `bitstate (hash factor ${Math.round(this.visited.hashFactor())}${seed})`;
  }
}
