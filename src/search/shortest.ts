// The shortest counterexample, given one (`found`, from the depth-first
// search): a depth-bounded depth-first search whose visited set keeps the
// smallest depth each state was reached at, so a state reached again at a
// smaller depth is explored again. That search finds a violation within
// `limit` transitions whenever one exists (iterative deepening's guarantee,
// without the iterations: each violation found lowers the limit to one less
// than its length, branch and bound). So the result is a shortest violating
// path, of any property, under the same preemption bound.

import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { Dfs } from "./dfs.js";
import { BaseDfs, EXPLORE, SKIP, type Visit } from "./strategy.js";
import { checkMachine, stateKeyLo } from "./transitions.js";
import type { CheckBudget, Finding } from "./types.js";
import { FingerprintMap } from "./visited.js";

export interface ShortestResult {
  /** The shortest counterexample: `found` itself when none shorter exists. */
  finding: Finding;
  /** States expanded (a state reached again at a smaller depth counts again). */
  states: number;
  transitions: number;
  /** False when a budget ended the search: `finding` is then the shortest seen so far. */
  complete: boolean;
}

export class ShortestDfs extends BaseDfs {
  readonly visited = new FingerprintMap();

  constructor(
    k: Kernel,
    private readonly bound: number | null,
    budget: CheckBudget,
    /** The shortest violation so far. */
    public best: Finding,
  ) {
    super(k, budget);
  }

  /** New, or reached at a smaller depth than before. */
  visit(ticks: number, depth: number): Visit {
    const k = this.k;
    return this.visited.lower(stateKeyLo(k, ticks, this.bound), k.mem.hashHi(), depth) ? EXPLORE : SKIP;
  }

  /** The next one must be shorter. */
  override found(f: Finding): number {
    this.best = f;
    return f.schedule.length - 1;
  }

  describe(): string {
    return `shortest (${this.best.schedule.length} transitions)`;
  }
}

export function shortestCounterexample(
  spec: BootSpec,
  properties: readonly string[],
  found: Finding,
  budget: CheckBudget,
  preemptionBound: number | null,
): ShortestResult {
  const { k, e } = checkMachine(spec, properties);
  const strat = new ShortestDfs(k, preemptionBound, budget, found);
  // Look for one strictly shorter.
  const dfs = new Dfs(k, e, strat, { bound: preemptionBound, limit: found.schedule.length - 1 });
  dfs.start();
  const end = dfs.run();
  return { finding: strat.best, states: dfs.states, transitions: dfs.transitions, complete: end === "pass" };
}
