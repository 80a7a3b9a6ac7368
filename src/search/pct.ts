// PCT (Burckhardt et al., ASPLOS 2010): per walk, random distinct priorities
// for the "threads" (each CPU, each device, the timers) and d-1 random change
// points among the first k steps; the enabled transition of the
// highest-priority thread runs; at the i-th change point the thread that
// runs is demoted to priority d-i and, when it is a CPU with a task waiting,
// the tick is raised there instead: the running task loses the processor,
// as a thread does at a change point. Ticks happen only there (a tick as a
// thread of its own would preempt at every step and the walk would never end).
// A step that leaves the machine as it was (a task polling a device, a CPU
// spinning) is a yield: its thread drops below every other, as PCT treats
// yields. A bug of depth d (d-1 ordering constraints, each a preemption or one
// thread running before another, within the first k steps) is found by one
// walk with probability at least 1/(n k^(d-1)), n threads.
//
// k is the real walk length, or --depth: the longest PCT walk to quiescence
// in two calibration rounds of CALIBRATION_WALKS walks, the first with k the
// longest walk without preemption (walkBound), the second with k the first
// round's longest (preemptions lengthen a walk). Walks longer than k are
// counted in the coverage line: the guarantee is for the first k steps.

import { TR_CPU, TR_DEVICE, TR_TICK, trArg, trKind, trTick } from "../engine/engine.js";
import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { Rng } from "../machine/rng.js";
import type { CheckBudget, ExploreResult } from "./types.js";
import {
  BOUND_FACTOR,
  CALIBRATION_BOUND,
  CALIBRATION_WALKS,
  type Calibration,
  calibrate,
  calibrationStopped,
  calibrationViolation,
  type WalkOptions,
  type WalkStats,
  WalkStrategy,
  walkCoverage,
  walks,
} from "./walks.js";

export class PctWalk extends WalkStrategy {
  private readonly ncpu: number;
  /** Threads: CPUs, devices, timers. */
  readonly n: number;
  private readonly prio: Int32Array;
  private change: number[] = [];
  private nextChange = 0;
  /** The next priority a yield drops a thread to (below every other). */
  private low = 0;
  /** The state and thread of the step being taken, to see a yield. */
  private lastLo = 0;
  private lastHi = 0;
  private lastThread = -1;
  /** Walks longer than k (their later steps had no change point). */
  longer = 0;

  constructor(
    k: Kernel,
    /** Change points fall in steps 1..k. */
    public kSteps: number,
    private readonly d: number,
  ) {
    super(k);
    this.ncpu = k.params.cpus;
    this.n = this.ncpu + k.model.devices.length + 1;
    this.prio = new Int32Array(this.n);
  }

  private threadOf(tr: number): number {
    const kind = trKind(tr);
    if (kind === TR_CPU || kind === TR_TICK) return trArg(tr);
    if (kind === TR_DEVICE) return this.ncpu + trArg(tr);
    return this.n - 1;
  }

  begin(seed: number): void {
    const rng = new Rng(seed);
    const { prio, n, d } = this;
    // Distinct initial priorities d .. d+n-1 in random order (Fisher-Yates, unbiased).
    for (let i = 0; i < n; i++) prio[i] = d + i;
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(0, i);
      const t = prio[i];
      prio[i] = prio[j];
      prio[j] = t;
    }
    this.change = Array.from({ length: d - 1 }, () => rng.int(1, this.kSteps)).sort((a, b) => a - b);
    this.nextChange = 0;
    this.low = 0;
    this.lastThread = -1;
  }

  choose(buf: Int32Array, m: number, step: number): number {
    const prio = this.prio;
    let best = -1;
    for (let i = 0; i < m; i++) {
      if (trKind(buf[i]) === TR_TICK) continue;
      if (best < 0 || prio[this.threadOf(buf[i])] > prio[this.threadOf(buf[best])]) best = i;
    }
    if (best < 0) best = 0; // only ticks (a CPU that can step has its own transition: not seen)
    const thread = this.threadOf(buf[best]);
    const change = this.change;
    let preempt = false;
    while (this.nextChange < change.length && change[this.nextChange] === step) {
      prio[thread] = this.d - 1 - this.nextChange; // the i-th change point: priority d-i
      this.nextChange++;
      preempt = true;
    }
    if (preempt && trKind(buf[best]) === TR_CPU) {
      const tick = trTick(trArg(buf[best]));
      for (let i = 0; i < m; i++) if (buf[i] === tick) best = i;
    }
    if (step === this.kSteps + 1) this.longer++;
    const mem = this.k.mem;
    this.lastLo = mem.hashLo();
    this.lastHi = mem.hashHi();
    this.lastThread = thread;
    return best;
  }

  override visit() {
    const mem = this.k.mem;
    if (this.lastThread >= 0 && mem.hashLo() === this.lastLo && mem.hashHi() === this.lastHi)
      this.prio[this.lastThread] = --this.low; // a yield
    return super.visit();
  }

  /** The per-walk guarantee for walks of at most k steps. */
  guarantee(): number {
    return 1 / (this.n * this.kSteps ** Math.max(0, this.d - 1));
  }

  describe(): string {
    return "pct";
  }
}

/** How calibrationViolation names the first calibration round's walks. */
export const NO_PREEMPTION = "without preemption (PCT, d=1)";

/**
 * The bound on a walk: --depth, or BOUND_FACTOR times the longest of
 * CALIBRATION_WALKS walks without preemption (PCT with d = 1) that reached
 * quiescence; `cal` is that calibration (null with --depth).
 */
export function walkBound(
  spec: BootSpec,
  properties: readonly string[],
  o: WalkOptions,
  budget: CheckBudget,
): { bound: number; cal: Calibration | null } {
  if (o.depth !== null) return { bound: o.depth, cal: null };
  const cal = calibrate(spec, properties, o.seed, 0, CALIBRATION_BOUND, (k) => new PctWalk(k, 1, 1), budget);
  return { bound: cal.longest === null ? CALIBRATION_BOUND : BOUND_FACTOR * cal.longest, cal };
}

export function pctWalks(
  spec: BootSpec,
  properties: readonly string[],
  o: WalkOptions,
  d: number,
  budget: CheckBudget,
): ExploreResult {
  const what = `pct:0 walks (seed ${o.seed}, d=${d})`;
  const { bound, cal } = walkBound(spec, properties, o, budget);
  if (cal?.finding) return calibrationViolation(cal, what, NO_PREEMPTION);
  if (cal?.stopped) return calibrationStopped(cal, what);
  let kSteps = bound;
  let spent = cal?.transitions ?? 0; // calibration's transitions so far, for a violation's count
  if (cal !== null) {
    kSteps = cal.longest ?? bound;
    for (let round = 1; round <= 2; round++) {
      const k0 = kSteps;
      const c = calibrate(
        spec,
        properties,
        o.seed,
        round * CALIBRATION_WALKS,
        bound,
        (k) => new PctWalk(k, k0, d),
        budget,
      );
      if (c.finding)
        return calibrationViolation(
          { ...c, transitions: spent + c.transitions },
          what,
          `of PCT round ${round} (k=${k0})`,
        );
      spent += c.transitions;
      if (c.stopped) return calibrationStopped({ ...c, transitions: spent }, what);
      kSteps = Math.max(k0, c.longest ?? k0);
    }
  }
  const stats: WalkStats = { cut: 0, longest: 0 };
  let strat: PctWalk | null = null;
  const r = walks(
    spec,
    properties,
    { count: o.count, seed: o.seed, bound, shard: o.shard },
    budget,
    (k) => {
      strat = new PctWalk(k, kSteps, d);
      return strat;
    },
    stats,
  );
  const s = strat as PctWalk | null;
  const p = s === null ? 0 : s.guarantee();
  const how = cal === null ? "--depth" : "the longest calibration PCT walk";
  const longer = s === null ? 0 : s.longer;
  return {
    ...r,
    coverage: `pct:${walkCoverage(o, s?.walks ?? 0, bound, cal?.longest ?? null, stats)}; d=${d}, k=${kSteps} (${how}), ${s?.n ?? 0} threads: each walk finds a depth-${d} bug in its first k steps with p >= ${p.toExponential(1)}; ${longer} walks longer than k`,
  };
}
