// The strategy contract. Every search is one loop over the machine (the
// depth-first driver in dfs.ts, the walk driver in walks.ts) and a strategy
// that decides: which states to explore, in which order to take the enabled
// transitions, and what the search covered. A new strategy is one class
// implementing `Strategy` (walks: extend WalkStrategy) or `DfsStrategy`
// (depth-first: extend BaseDfs), and a test comparing it with the plain
// depth-first search (plain.ts), as test/search.test.ts does.
//
// The drivers call these methods once per transition or state, on one
// strategy object per search: implementations keep their hot paths free of
// allocation (typed arrays and fields, no closures built per call).

import type { Engine } from "../engine/engine.js";
import type { Kernel } from "../kernel/kernel.js";
import type { DfsStack } from "./stack.js";
import { enabled, stepFinding } from "./transitions.js";
import { type Broken, budgetReason, type CheckBudget, type Finding } from "./types.js";

/** `visit`'s answers. */
export const SKIP = 0; // seen before: do not explore it
export const EXPLORE = 1; // new: count it, judge it (end invariants when terminal), explore it
export const REVISIT = 2; // seen before, explore it again (not counted, not judged again)
export const STOP = 3; // the search ends here (the strategy says why)
export type Visit = typeof SKIP | typeof EXPLORE | typeof REVISIT | typeof STOP;

export interface Strategy {
  /** Before the search starts; for walks, before each walk. */
  reset(): void;
  /**
   * The state in memory, reached with `ticks` preemptions at `depth`
   * transitions from the initial state: explore it, or not. A walk goes
   * on either way: there EXPLORE only counts a state not seen before.
   */
  visit(ticks: number, depth: number): Visit;
  /**
   * Which of the enabled transitions buf[0..n) to take (its index) as
   * choice `i`: for a depth-first search the i-th (0-based) tried from the
   * state, for a walk its i-th (1-based) step.
   */
  choose(buf: Int32Array, n: number, i: number): number;
  /** What the search covered, for the report. */
  describe(): string;
}

/** A depth-first strategy: driven by `Dfs` over the shared stack. */
export interface DfsStrategy extends Strategy {
  /**
   * The transitions to take from the state just pushed at `depth` (in
   * memory): into stack.trs[depth], their number into stack.counts[depth].
   * Returns how many transitions are enabled there (0: a terminal state).
   */
  expand(stack: DfsStack, depth: number): number;
  /** Run transition `tr` from the state at `depth` (`ticks` after it); what it broke. */
  step(e: Engine, tr: number, ticks: number, depth: number): Broken;
  /** A violation: -1 ends the search with it, else the new bound on a path's length (branch and bound). */
  found(f: Finding): number;
  /** After each state explored: a reason to stop (a budget), or null. */
  poll(states: number, transitions: number, depth: number): string | null;
}

/**
 * The common case of a depth-first strategy: every enabled transition, in
 * the order `enabled` lists them; a violation ends the search; the state
 * budget. A strategy overrides what differs.
 */
export abstract class BaseDfs implements DfsStrategy {
  constructor(
    protected readonly k: Kernel,
    protected readonly budget: CheckBudget,
  ) {}

  reset(): void {}

  abstract visit(ticks: number, depth: number): Visit;

  choose(_buf: Int32Array, _n: number, i: number): number {
    return i;
  }

  expand(stack: DfsStack, depth: number): number {
    const n = enabled(this.k, stack.trs[depth]);
    stack.counts[depth] = n;
    return n;
  }

  step(e: Engine, tr: number, _ticks: number, _depth: number): Broken {
    return stepFinding(e, tr);
  }

  found(_f: Finding): number {
    return -1;
  }

  poll(states: number, transitions: number, depth: number): string | null {
    return budgetReason(this.budget, states, transitions, depth, this.reserve);
  }

  /** Bytes the strategy's tables may allocate before the next poll (their growth): none by default. */
  protected reserve = (): number => 0;

  abstract describe(): string;
}
