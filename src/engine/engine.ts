// The engine: runs transitions on the model and watches the invariants. What
// runs next is a Scheduler's choice (simulation by virtual time, seeded random,
// and later the explorer's strategies); the engine only executes.
//
// A transition is one of:
//   CPU(c)    - CPU c's next step (interrupt entry, kernel step or user op)
//   TICK(c)   - the local APIC timer raises the tick on CPU c
//   TIMER(t)  - task t's hrtimer expires
//   DEVICE(d) - device d completes its oldest descriptor

import { raise_irq } from "../hw/apic.js";
import { idxd_complete } from "../kernel/devfile.js";
import type { Kernel } from "../kernel/kernel.js";
import { hrtimer_wakeup } from "../kernel/sleep.js";
import { IRQ_NMI, IRQ_TIMER } from "../machine/state.js";
import { cpu_runnable, cpu_step } from "./cpu.js";
import type { Invariant } from "./invariants.js";

export const TR_SHIFT = 2 ** 20;
export const TR_CPU = 0;
export const TR_TICK = 1;
export const TR_TIMER = 2;
export const TR_DEVICE = 3;
export const trCpu = (cpu: number) => cpu;
export const trTick = (cpu: number) => TR_TICK * TR_SHIFT + cpu;
export const trTimer = (task: number) => TR_TIMER * TR_SHIFT + task;
export const trDevice = (d: number) => TR_DEVICE * TR_SHIFT + d;
export const trKind = (tr: number) => Math.floor(tr / TR_SHIFT);
export const trArg = (tr: number) => tr % TR_SHIFT;

export interface Scheduler {
  readonly name: string;
  /** The scheduler and its parameters, for output and reproduction. */
  describe(): string;
  /** Bind to an engine before the first `next`. */
  start(e: Engine): void;
  /** The next transition, or -1 when nothing can happen any more. */
  next(e: Engine): number;
  /** `task` armed a timer for `ns` from the current transition's time. */
  armTimer(e: Engine, task: number, ns: number): void;
  /** `task`'s armed timer was cancelled: it must not fire. */
  cancelTimer(e: Engine, task: number): void;
  /** An interrupt was raised on `cpu` during the current transition. */
  kick(e: Engine, cpu: number): void;
  /** Device `d` accepted a descriptor during the current transition. */
  deviceKick(e: Engine, d: number): void;
}

export type StopReason = "quiescent" | "step-limit" | "time-limit" | "time-budget";

/** Steps between two polls of a run's `budget` (a wall-clock check, from the command line). */
const BUDGET_POLL_STEPS = 1 << 16;

export interface RunLimits {
  maxSteps: number;
  /** Simulated time, in cycles of the CPU clocks. */
  maxCycles: number;
  /** Polled every BUDGET_POLL_STEPS transitions: true stops the run ("time-budget"). */
  budget?: () => boolean;
}

export class Engine {
  /** Per-CPU virtual time in cycles. */
  readonly clock: Float64Array;
  readonly stepInvariants: Invariant[];
  readonly endInvariants: Invariant[];
  /** The transition being executed (for schedulers' callbacks). */
  current = -1;
  /** Transitions that were not CPU steps (ticks, timer expiries). */
  events = 0;
  /** ns of user work per step; the simulation chunks long computes, `check` does not. */
  chunkNs: number;
  /** Told before each transition, when set (recording a trace tail; off in the hot loop). */
  recorder: ((e: Engine, tr: number) => void) | null = null;

  constructor(
    readonly k: Kernel,
    invariants: readonly Invariant[],
    readonly sched: Scheduler,
  ) {
    this.clock = new Float64Array(k.params.cpus);
    this.stepInvariants = invariants.filter((i) => i.step !== undefined);
    this.endInvariants = invariants.filter((i) => i.end !== undefined);
    this.chunkNs = k.params.tickNs;
    k.link = {
      kick: (cpu) => sched.kick(this, cpu),
      armTimer: (task, ns) => sched.armTimer(this, task, ns),
      cancelTimer: (task) => sched.cancelTimer(this, task),
      deviceKick: (d) => sched.deviceKick(this, d),
    };
  }

  /** Execute one transition; returns the cycles it cost (0 for events). */
  exec(tr: number): number {
    if (this.recorder !== null) this.recorder(this, tr);
    this.current = tr;
    const k = this.k;
    if (tr < TR_SHIFT) return this.stepCpu(tr);
    this.events++;
    const kind = trKind(tr);
    const arg = trArg(tr);
    if (kind === TR_TICK) {
      // NO_HZ idle: a halted CPU's tick is stopped.
      if (k.get(k.C.halted, arg) === 0) raise_irq(k, arg, k.model.nmi ? IRQ_TIMER | IRQ_NMI : IRQ_TIMER);
      return 0;
    }
    if (kind === TR_DEVICE) {
      idxd_complete(k, arg);
      return 0;
    }
    hrtimer_wakeup(k, arg);
    return 0;
  }

  /** One step of `cpu`, then the step invariants. */
  private stepCpu(cpu: number): number {
    const k = this.k;
    k.stepNo++;
    const cost = cpu_step(k, cpu, this.chunkNs);
    this.clock[cpu] += cost;
    const inv = this.stepInvariants;
    for (let i = 0; i < inv.length; i++) {
      const msg = inv[i].step!(k, cpu);
      if (msg !== null) k.warn(inv[i].name, msg, cpu);
    }
    return cost;
  }

  /** Every transition executed: CPU steps and events. */
  get transitions(): number {
    return this.k.stepNo + this.events;
  }

  runnable(cpu: number): boolean {
    return cpu_runnable(this.k, cpu);
  }

  /** Run until the scheduler has nothing left or a limit is hit. */
  run(limits: RunLimits): StopReason {
    const s = this.sched;
    s.start(this);
    const k = this.k;
    const clock = this.clock;
    const budget = limits.budget;
    let sincePoll = 0;
    for (;;) {
      const tr = s.next(this);
      if (tr < 0) break;
      if (budget !== undefined && ++sincePoll === BUDGET_POLL_STEPS) {
        sincePoll = 0;
        if (budget()) return this.stop("time-budget");
      }
      if (tr < TR_SHIFT && this.recorder === null) {
        // The hot path: a CPU step.
        this.current = tr;
        this.stepCpu(tr);
        if (k.stepNo >= limits.maxSteps) return this.stop("step-limit");
        if (clock[tr] > limits.maxCycles) return this.stop("time-limit");
      } else {
        this.exec(tr);
        if (k.stepNo >= limits.maxSteps) return this.stop("step-limit");
      }
    }
    this.checkEnd();
    return this.stop("quiescent");
  }

  private stop(reason: StopReason): StopReason {
    this.k.metrics.steps = this.k.stepNo;
    return reason;
  }

  checkEnd(): void {
    for (const inv of this.endInvariants) {
      const msg = inv.end!(this.k);
      if (msg !== null) this.k.warn(inv.name, msg, -1);
    }
  }

  /** Cycles of the busiest CPU: the simulated time of the run. */
  maxClock(): number {
    let m = 0;
    for (let i = 0; i < this.clock.length; i++) if (this.clock[i] > m) m = this.clock[i];
    return m;
  }
}

/** A transition as a schedule line writes it: "cpu 0", "tick 1", "timer 5", "device 0". */
export function describeTransition(tr: number): string {
  const kind = trKind(tr);
  const arg = trArg(tr);
  if (kind === TR_CPU) return `cpu ${arg}`;
  if (kind === TR_TICK) return `tick ${arg}`;
  if (kind === TR_DEVICE) return `device ${arg}`;
  return `timer ${arg}`;
}

/** Parse one schedule line ("cpu 0", "tick 1", "timer 5", "device 0"); null if malformed. */
export function parseTransition(line: string): number | null {
  const m = /^(cpu|tick|timer|device) (\d+)$/.exec(line.trim());
  if (m === null) return null;
  const n = Number(m[2]);
  if (m[1] === "cpu") return trCpu(n);
  if (m[1] === "tick") return trTick(n);
  if (m[1] === "device") return trDevice(n);
  return trTimer(n);
}
