// The depth-first driver: one loop over the stack (stack.ts), the strategy
// (strategy.ts) deciding what to explore. Plain search, bitstate, the
// shortest-counterexample search, partial-order reduction and each parallel
// worker are this loop with their strategy.

import { type Engine, TR_TICK, trKind } from "../engine/engine.js";
import type { Kernel } from "../kernel/kernel.js";
import { DfsStack } from "./stack.js";
import { type DfsStrategy, EXPLORE, SKIP, STOP } from "./strategy.js";
import { endFinding } from "./transitions.js";
import type { Broken, ExploreResult, Finding } from "./types.js";

export type DfsEnd = "pass" | "violation" | "incomplete";

export interface DfsOptions {
  /** Preemptions allowed on a path (ticks taken), or null. */
  bound: number | null;
  /** Paths of at most this many transitions (the strategy may lower it as it goes). */
  limit?: number;
  /**
   * max_depth counts the state being judged when the search stops there (a
   * terminal state's violation, a budget): the convention of `check --por`,
   * whose search entered a state before judging it.
   */
  countJudged?: boolean;
}

export class Dfs {
  readonly stack: DfsStack;
  states = 0;
  transitions = 0;
  maxDepth = 0;
  finding: Finding | null = null;
  reason: string | null = null;
  private readonly bound: number | null;
  private limit: number;
  private readonly countJudged: boolean;
  /** The root was the strategy's to explore (a parallel worker's transitions count only from states it claimed). */
  private rootOwned = true;

  constructor(
    k: Kernel,
    private readonly e: Engine,
    private readonly strat: DfsStrategy,
    opts: DfsOptions,
  ) {
    this.stack = new DfsStack(k);
    this.bound = opts.bound;
    this.limit = opts.limit ?? Number.POSITIVE_INFINITY;
    this.countJudged = opts.countJudged === true;
  }

  /** Visit and push the initial state: how many transitions are enabled there, -1 when the strategy stopped. */
  start(): number {
    this.strat.reset();
    const v = this.strat.visit(0, 0);
    if (v === STOP) return -1;
    this.rootOwned = v === EXPLORE;
    if (v === EXPLORE) this.states = 1;
    this.stack.push(0, 0);
    return this.strat.expand(this.stack, 0);
  }

  /** Search from the initial state (`start` first). */
  run(): DfsEnd {
    const s = this.stack;
    const strat = this.strat;
    const e = this.e;
    const bound = this.bound;
    const countJudged = this.countJudged;
    const countRoot = this.rootOwned;
    const trs = s.trs;
    const counts = s.counts;
    const nexts = s.nexts;
    const ticks = s.ticks;
    // The counters live in locals while the loop runs, in the fields after.
    let states = this.states;
    let transitions = this.transitions;
    let maxDepth = this.maxDepth;
    let limit = this.limit;
    let end: DfsEnd = "pass";
    for (;;) {
      const d = s.depth;
      if (d < 0) break;
      // A state at `d` may take a transition only if the path stays within the limit.
      if (nexts[d] >= counts[d] || d + 1 > limit) {
        s.pop();
        continue;
      }
      const buf = trs[d];
      const tr = buf[strat.choose(buf, counts[d], nexts[d]++)];
      const t = ticks[d] + (trKind(tr) === TR_TICK ? 1 : 0);
      if (bound !== null && t > bound) continue;
      // Memory already holds this depth's state right after it was pushed.
      s.restore(d);
      if (d > 0 || countRoot) transitions++;
      const bad = strat.step(e, tr, t, d);
      if (bad !== null) {
        const l = this.violation(bad, tr);
        if (l < 0) {
          end = "violation";
          break;
        }
        limit = l;
        continue;
      }
      const v = strat.visit(t, d + 1);
      if (v === SKIP) continue; // a state seen before was judged then
      if (v === STOP) {
        end = "incomplete";
        break;
      }
      s.push(d + 1, t);
      const n = strat.expand(s, d + 1);
      if (v === EXPLORE) {
        states++;
        const broken = n === 0 ? endFinding(e) : null;
        if (broken !== null) {
          const l = this.violation(broken, tr);
          if (l < 0) {
            if (countJudged && d + 1 > maxDepth) maxDepth = d + 1;
            end = "violation";
            break;
          }
          limit = l;
          continue;
        }
      }
      const why = strat.poll(states, transitions, d);
      if (why !== null) {
        if (countJudged && d + 1 > maxDepth) maxDepth = d + 1;
        this.reason = why;
        end = "incomplete";
        break;
      }
      s.descend(tr);
      if (d + 1 > maxDepth) maxDepth = d + 1;
    }
    this.states = states;
    this.transitions = transitions;
    this.maxDepth = maxDepth;
    this.limit = limit;
    return end;
  }

  /**
   * The strategy's answer to a violation by `tr` from the current path: -1
   * when the search ends with it (then `finding`), else the new path limit.
   */
  private violation(bad: NonNullable<Broken>, tr: number): number {
    const f: Finding = { ...bad, schedule: [...this.stack.path, tr] };
    const limit = this.strat.found(f);
    if (limit < 0) this.finding = f;
    return limit;
  }
}

/** Run a depth-first strategy from the initial state to a result. */
export function runDfs(
  k: Kernel,
  e: Engine,
  strat: DfsStrategy,
  bound: number | null,
  collisionProbability: (states: number) => number,
  countJudged = false,
  /** What the initial state breaks, given how many transitions it has (by default it is not judged). */
  judgeRoot?: (enabled: number) => Broken,
): ExploreResult {
  const dfs = new Dfs(k, e, strat, { bound, countJudged });
  const n = dfs.start();
  const root = n >= 0 && judgeRoot !== undefined ? judgeRoot(n) : null;
  if (root !== null) dfs.finding = { ...root, schedule: [] };
  const end = n < 0 ? "incomplete" : root !== null ? "violation" : dfs.run();
  return {
    verdict: end,
    finding: dfs.finding,
    states: dfs.states,
    transitions: dfs.transitions,
    maxDepth: dfs.maxDepth,
    coverage: strat.describe(),
    reason: dfs.reason,
    collisionProbability: collisionProbability(dfs.states),
  };
}
