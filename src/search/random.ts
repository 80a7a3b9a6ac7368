// Seeded random walks: uniform among the enabled transitions, ticks weighted down.

import { TR_TICK, trKind } from "../engine/engine.js";
import type { BootSpec } from "../kernel/boot.js";
import { Rng } from "../machine/rng.js";
import { NO_PREEMPTION, walkBound } from "./pct.js";
import type { CheckBudget, ExploreResult } from "./types.js";
import {
  calibrationStopped,
  calibrationViolation,
  type WalkOptions,
  type WalkStats,
  WalkStrategy,
  walkCoverage,
  walks,
} from "./walks.js";

/**
 * A random walk's choice: a tick (a preemption) one time in TICK_ONE_IN when
 * one is enabled, else any other transition uniformly. Uniform choice would
 * preempt half the time and walks would make little progress.
 */
const TICK_ONE_IN = 16;

export class RandomWalk extends WalkStrategy {
  private rng = new Rng(0);

  begin(seed: number): void {
    this.rng = new Rng(seed);
  }

  choose(buf: Int32Array, n: number): number {
    const rng = this.rng;
    let ticks = 0;
    for (let i = 0; i < n; i++) if (trKind(buf[i]) === TR_TICK) ticks++;
    const wantTick = ticks > 0 && (ticks === n || rng.int(0, TICK_ONE_IN - 1) === 0);
    let r = rng.int(0, (wantTick ? ticks : n - ticks) - 1);
    for (let i = 0; i < n; i++) {
      if ((trKind(buf[i]) === TR_TICK) === wantTick && r-- === 0) return i;
    }
    return 0;
  }

  describe(): string {
    return "random";
  }
}

export function randomWalks(
  spec: BootSpec,
  properties: readonly string[],
  o: WalkOptions,
  budget: CheckBudget,
): ExploreResult {
  const { bound, cal } = walkBound(spec, properties, o, budget);
  const what = `random:0 walks (seed ${o.seed})`;
  if (cal?.finding) return calibrationViolation(cal, what, NO_PREEMPTION);
  if (cal?.stopped) return calibrationStopped(cal, what);
  const stats: WalkStats = { cut: 0, longest: 0 };
  let strat: RandomWalk | null = null;
  const r = walks(
    spec,
    properties,
    { count: o.count, seed: o.seed, bound, shard: o.shard },
    budget,
    (k) => {
      strat = new RandomWalk(k);
      return strat;
    },
    stats,
  );
  const walked = (strat as RandomWalk | null)?.walks ?? 0;
  return { ...r, coverage: `random:${walkCoverage(o, walked, bound, cal?.longest ?? null, stats)}` };
}
