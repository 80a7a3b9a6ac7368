// Seeded random walks: uniform among the enabled transitions, ticks weighted down.

import { TR_TICK, trKind } from "../engine/engine.js";
import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { Rng } from "../machine/rng.js";
import type { CheckBudget, ExploreResult } from "./types.js";
import { WalkStrategy, walks } from "./walks.js";

/**
 * A random walk's choice: a tick (a preemption) one time in TICK_ONE_IN when
 * one is enabled, else any other transition uniformly. Uniform choice would
 * preempt half the time and walks would make little progress.
 */
const TICK_ONE_IN = 16;

export class RandomWalk extends WalkStrategy {
  private readonly rng: Rng;

  constructor(
    k: Kernel,
    private readonly seed: number,
  ) {
    super(k);
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
    return `random:${this.walks} walks (seed ${this.seed})`;
  }
}

export function randomWalks(
  spec: BootSpec,
  properties: readonly string[],
  count: number,
  seed: number,
  depthMax: number,
  budget: CheckBudget,
): ExploreResult {
  return walks(spec, properties, count, depthMax, budget, (k) => new RandomWalk(k, seed));
}
