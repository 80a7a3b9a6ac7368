// Walks from the initial state, the strategy choosing each step (random.ts,
// pct.ts): for state spaces too large to search exhaustively.
//
// A walk ends when the machine is quiescent: no transition is enabled (every
// CPU halted with nothing pending, no tick since no task waits, no armed
// timer, no device work). Idle CPUs halt and their tick stops (NO_HZ), so a
// workload that has run to its end is a terminal state, judged like the
// exhaustive search judges one: the end invariants (endFinding), a task left
// behind included. A walk that has not ended by the bound is cut there.
//
// The bound: --depth when given, else derived from the scenario by
// calibration (pct.ts, walkBound): CALIBRATION_WALKS walks without preemption
// (PCT walks with d = 1, their own seeds) each up to CALIBRATION_BOUND steps;
// the longest that reached quiescence, L, gives the bound BOUND_FACTOR * L
// (random walks preempt often and run several times longer than L). PCT's k
// is measured the same way on PCT walks (pct.ts).
//
// Walk i (0-based) draws from its own seed, walkSeed(seed, i), so a walk is a
// function of (scenario, seed, i) alone: shard k of n runs the walks with
// i mod n = k-1, and the n shards together run exactly the walks of one
// unsharded run with the same seed, whatever n.

import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { EXPLORE, SKIP, type Strategy, type Visit } from "./strategy.js";
import { checkMachine, enabled, endFinding, MAX_ENABLED, stepFinding } from "./transitions.js";
import type { CheckBudget, ExploreResult, Finding } from "./types.js";
import { FingerprintSet } from "./visited.js";

/** A calibration walk's bound, and every walk's when no calibration walk reached quiescence. */
export const CALIBRATION_BOUND = 100_000;
/** Plain random walks that measure how long a walk to quiescence is. */
export const CALIBRATION_WALKS = 8;
/** The derived bound: this many times the longest calibration walk. */
export const BOUND_FACTOR = 16;

/** Walk i's seed: a 32-bit mix of the search's seed and i (splitmix32-like), never a function of the shard. */
export function walkSeed(seed: number, i: number): number {
  let z = (Math.imul(seed | 0, 0x9e3779b9) + Math.imul(i + 1, 0x85ebca6b)) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d);
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Calibration walk j's seed: another stream than the search's walks. */
export function calibrationSeed(seed: number, j: number): number {
  return walkSeed(seed ^ 0x5ca1ab1e, j);
}

/** A walk strategy: the states walked through are counted in a visited set (a walk goes on through seen ones). */
export abstract class WalkStrategy implements Strategy {
  readonly visited = new FingerprintSet();
  /** Walks started. */
  walks = 0;

  constructor(protected readonly k: Kernel) {}

  /** Before each walk (`begin` calls it). */
  reset(): void {
    this.walks++;
  }

  /** Before a walk: its own seed. */
  abstract begin(seed: number): void;

  visit(): Visit {
    const k = this.k;
    return this.visited.add(k.mem.hashLo(), k.mem.hashHi()) ? EXPLORE : SKIP;
  }

  abstract choose(buf: Int32Array, n: number, step: number): number;
  abstract describe(): string;
}

/** Which walks to run: `count` in all, walk i from walkSeed(seed, i); a shard runs those with i mod n = k-1. */
export interface WalkSet {
  count: number;
  seed: number;
  /** The bound on a walk's length. */
  bound: number;
  shard?: { k: number; n: number } | null;
}

/** What walks did, besides the result: for coverage lines. */
export interface WalkStats {
  /** Walks that reached the bound without quiescence. */
  cut: number;
  /** The longest walk, in steps. */
  longest: number;
}

/** Steps between two polls of the budget inside a walk: a walk on a large machine can take seconds. */
const POLL_STEPS = 256;

interface Walked {
  steps: number;
  quiescent: boolean;
  finding: Finding | null;
  /** The budget's reason when it ended the walk early. */
  stopped: string | null;
}

/** One walk from `init`: its steps, or a violation (with its schedule), or the budget's reason to stop. */
function walkOnce(
  k: Kernel,
  e: ReturnType<typeof checkMachine>["e"],
  strategy: WalkStrategy,
  init: Int32Array,
  buf: Int32Array,
  bound: number,
  poll: () => string | null,
): Walked {
  k.mem.restore(init);
  const path: number[] = [];
  let n = enabled(k, buf);
  for (let step = 1; step <= bound && n > 0; step++) {
    if (step % POLL_STEPS === 0) {
      const why = poll();
      if (why !== null) return { steps: path.length, quiescent: false, finding: null, stopped: why };
    }
    const tr = buf[strategy.choose(buf, n, step)];
    path.push(tr);
    const bad = stepFinding(e, tr);
    if (bad !== null)
      return { steps: path.length, quiescent: false, finding: { ...bad, schedule: path }, stopped: null };
    strategy.visit();
    n = enabled(k, buf); // for the next choice, and to know a terminal state
    const end = n === 0 ? endFinding(e) : null;
    if (end !== null)
      return { steps: path.length, quiescent: true, finding: { ...end, schedule: path }, stopped: null };
  }
  return { steps: path.length, quiescent: n === 0, finding: null, stopped: null };
}

/** The walks of `set` on a fresh machine; the strategy is made once and told each walk's seed. */
export function walks(
  spec: BootSpec,
  properties: readonly string[],
  set: WalkSet,
  budget: CheckBudget,
  make: (k: Kernel) => WalkStrategy,
  stats: WalkStats = { cut: 0, longest: 0 },
): ExploreResult {
  const { k, e } = checkMachine(spec, properties);
  const strategy = make(k);
  const init = k.mem.snapshot();
  const buf = new Int32Array(MAX_ENABLED);
  const visited = strategy.visited;
  let transitions = 0;
  const res = (verdict: ExploreResult["verdict"], finding: Finding | null, reason: string | null) => ({
    verdict,
    finding,
    states: visited.size,
    transitions,
    maxDepth: stats.longest,
    coverage: strategy.describe(),
    reason,
    collisionProbability: FingerprintSet.collisionProbability(visited.size),
    walks: strategy.walks,
  });
  const shard = set.shard ?? { k: 1, n: 1 };
  const walked = 0; // transitions of the walk under way, for polls
  const poll = () =>
    budget.stop
      ? budget.stop({ states: visited.size, transitions: transitions + walked, depth: stats.longest })
      : null;
  for (let i = shard.k - 1; i < set.count; i += shard.n) {
    strategy.reset();
    strategy.begin(walkSeed(set.seed, i));
    const w = walkOnce(k, e, strategy, init, buf, set.bound, poll);
    transitions += w.steps;
    if (w.steps > stats.longest) stats.longest = w.steps;
    if (w.finding !== null) return res("violation", w.finding, null);
    if (w.stopped !== null) return res("incomplete", null, w.stopped);
    if (!w.quiescent) stats.cut++;
    const why = poll();
    if (why !== null) return res("incomplete", null, why);
  }
  return res("no-violation-found", null, null);
}

/** What calibration measured: the longest walk to quiescence (null: none got there), or a violation on the way. */
export interface Calibration {
  longest: number | null;
  /** The walk that found `finding` (1-based in its round). */
  walk: number;
  finding: Finding | null;
  transitions: number;
  /** The budget's reason when it ended calibration early. */
  stopped: string | null;
}

/**
 * `count` walks of `make`'s strategy with calibration seeds (from `first`),
 * each up to `bound` steps: the longest that reached quiescence. The same in
 * every shard (it depends on the seed alone).
 */
export function calibrate(
  spec: BootSpec,
  properties: readonly string[],
  seed: number,
  first: number,
  bound: number,
  make: (k: Kernel) => WalkStrategy,
  budget: CheckBudget,
): Calibration {
  const { k, e } = checkMachine(spec, properties);
  const strategy = make(k);
  const init = k.mem.snapshot();
  const buf = new Int32Array(MAX_ENABLED);
  let longest: number | null = null;
  let transitions = 0;
  const poll = () => (budget.stop ? budget.stop({ states: 0, transitions, depth: longest ?? 0 }) : null);
  for (let j = first; j < first + CALIBRATION_WALKS; j++) {
    strategy.begin(calibrationSeed(seed, j));
    const w = walkOnce(k, e, strategy, init, buf, bound, poll);
    transitions += w.steps;
    if (w.finding !== null)
      return { longest, walk: j - first + 1, finding: w.finding, transitions, stopped: null };
    if (w.stopped !== null) return { longest, walk: 0, finding: null, transitions, stopped: w.stopped };
    if (w.quiescent && (longest === null || w.steps > longest)) longest = w.steps;
  }
  return { longest, walk: 0, finding: null, transitions, stopped: null };
}

/** How walks are chosen and bounded: the common part of random and PCT searches. */
export interface WalkOptions {
  count: number;
  seed: number;
  /** --depth: the bound on a walk (and PCT's k); null: derived by calibration. */
  depth: number | null;
  shard?: { k: number; n: number } | null;
}

/** The coverage line's part on walks: how many, which shard, the bound and how it was set, walks cut at it. */
export function walkCoverage(
  o: WalkOptions,
  walked: number,
  bound: number,
  l0: number | null,
  stats: WalkStats,
) {
  const shard = o.shard ? `, shard ${o.shard.k}/${o.shard.n} of ${o.count} walks` : "";
  const how =
    o.depth !== null
      ? "--depth"
      : l0 === null
        ? `no calibration walk was quiescent within ${CALIBRATION_BOUND}`
        : `${BOUND_FACTOR} x ${l0}, the longest calibration walk without preemption`;
  return `${walked} walks (seed ${o.seed}${shard}), each to quiescence or ${bound} steps (${how}), ${stats.cut} cut there`;
}

/** A violation met while calibrating: the result reports it (calibration walks are walks too). */
export function calibrationViolation(cal: Calibration, coverage: string, what: string): ExploreResult {
  const f = cal.finding!;
  return {
    verdict: "violation",
    finding: f,
    states: 0,
    transitions: cal.transitions,
    maxDepth: f.schedule.length,
    coverage: `${coverage}: found by calibration walk ${cal.walk} of ${CALIBRATION_WALKS} ${what}`,
    reason: null,
    collisionProbability: 0,
    walks: 0,
  };
}

/** The result when the budget ended calibration before any walk of the search. */
export function calibrationStopped(cal: Calibration, coverage: string): ExploreResult {
  return {
    verdict: "incomplete",
    finding: null,
    states: 0,
    transitions: cal.transitions,
    maxDepth: cal.longest ?? 0,
    coverage: `${coverage}: stopped while calibrating the walks' bound`,
    reason: cal.stopped,
    collisionProbability: 0,
    walks: 0,
  };
}
