// PCT (Burckhardt et al., ASPLOS 2010): per walk, random distinct priorities
// for the "threads" (each CPU, each device, the timers, the tick source) and
// d-1 random change points among the first `depthMax` steps; the enabled
// transition of the highest-priority thread runs; at the i-th change point
// the thread that runs is demoted to priority d-i. A bug of depth d is found
// by one walk with probability at least 1/(n k^(d-1)), n threads, k steps.

import { TR_CPU, TR_DEVICE, TR_TICK, trArg, trKind } from "../engine/engine.js";
import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { Rng } from "../machine/rng.js";
import type { CheckBudget, ExploreResult } from "./types.js";
import { WalkStrategy, walks } from "./walks.js";

export class PctWalk extends WalkStrategy {
  private readonly rng: Rng;
  private readonly ncpu: number;
  /** Threads: CPUs, devices, timers, the tick source. */
  private readonly n: number;
  private readonly prio: Int32Array;
  private change: number[] = [];
  private nextChange = 0;

  constructor(
    k: Kernel,
    private readonly seed: number,
    private readonly depthMax: number,
    private readonly d: number,
  ) {
    super(k);
    this.rng = new Rng(seed);
    this.ncpu = k.params.cpus;
    this.n = this.ncpu + k.model.devices.length + 2;
    this.prio = new Int32Array(this.n);
  }

  private threadOf(tr: number): number {
    const kind = trKind(tr);
    if (kind === TR_CPU) return trArg(tr);
    if (kind === TR_DEVICE) return this.ncpu + trArg(tr);
    return kind === TR_TICK ? this.n - 1 : this.n - 2;
  }

  override reset(): void {
    super.reset();
    const { rng, prio, n, d } = this;
    // Distinct initial priorities d .. d+n-1 in random order (Fisher-Yates, unbiased).
    for (let i = 0; i < n; i++) prio[i] = d + i;
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(0, i);
      const t = prio[i];
      prio[i] = prio[j];
      prio[j] = t;
    }
    this.change = Array.from({ length: d - 1 }, () => rng.int(1, this.depthMax)).sort((a, b) => a - b);
    this.nextChange = 0;
  }

  choose(buf: Int32Array, m: number, step: number): number {
    const prio = this.prio;
    let best = 0;
    for (let i = 1; i < m; i++) if (prio[this.threadOf(buf[i])] > prio[this.threadOf(buf[best])]) best = i;
    const tr = buf[best];
    const change = this.change;
    while (this.nextChange < change.length && change[this.nextChange] === step) {
      prio[this.threadOf(tr)] = this.d - 1 - this.nextChange; // the i-th change point: priority d-i
      this.nextChange++;
    }
    return best;
  }

  describe(): string {
    const guarantee = 1 / (this.n * this.depthMax ** Math.max(0, this.d - 1));
    return `pct:${this.walks} walks (seed ${this.seed}, d=${this.d}, k=${this.depthMax}; each finds a depth-${this.d} bug with p >= ${guarantee.toExponential(1)})`;
  }
}

export function pctWalks(
  spec: BootSpec,
  properties: readonly string[],
  count: number,
  seed: number,
  depthMax: number,
  d: number,
  budget: CheckBudget,
): ExploreResult {
  return walks(spec, properties, count, depthMax, budget, (k) => new PctWalk(k, seed, depthMax, d));
}
