// The machine as the model's code sees it: the flat state with typed access,
// and what every layer above writes into as it runs: findings (WARN_ON),
// metrics, cycle charges, the trace. The hardware (src/hw) works on a
// Machine with the description of its CPUs and devices (hw/hw.ts); the
// kernel's view (src/kernel/kernel.ts) extends it with kernel frames, hooks
// and the policies in force.

import type { CostTable } from "./costs.js";
import type { Memory } from "./memory.js";
import { type Metrics, newMetrics, PER_CPU_METRICS } from "./metrics.js";
import type { Rng } from "./rng.js";
import type { Field, Layout } from "./state.js";

export interface MachineParams {
  cpus: number;
  cpuMhz: number;
  tickNs: number;
  /** Ticks per time slice (>= 1). */
  sliceTicks: number;
  /** How far a CPU may run ahead of the others in the simulation (0: exact order). */
  quantumNs: number;
  /** Seeded variation of user compute time in the simulation, percent either way. */
  jitterPct: number;
}

export interface Violation {
  property: string;
  step: number;
  message: string;
  cpu: number;
  path: string;
}

/** What the engine wants to hear from the model. */
export interface EngineLink {
  /** An interrupt was raised on `cpu` (it may be halted and must be woken). */
  kick(cpu: number): void;
  /** `task` sleeps; wake it after `ns` (an hrtimer). */
  armTimer(task: number, ns: number): void;
  /** `task`'s timer is cancelled before it fired (hrtimer_cancel: its sleeper was woken otherwise). */
  cancelTimer(task: number): void;
  /** Device `d` accepted a descriptor (it has work to complete). */
  deviceKick(d: number): void;
}

/** Receives trace events; null when tracing is off, so the hot loop pays one branch. */
export interface TraceSink {
  pathEnter(cpu: number, task: number, path: string): void;
  pathExit(cpu: number, task: number): void;
  contextSwitch(cpu: number, prev: number, next: number, nextStack: readonly string[]): void;
  instant(cpu: number, name: string, args: Record<string, number | string>): void;
  /** Before a kernel step of the frame on top of `cpu`'s stack (a sink may open the frame's slice here). */
  stepBegin?(cpu: number): void;
  /** After that step, with the returns it made. */
  stepEnd?(cpu: number): void;
  /** Device `d` accepted a descriptor with `pasid` from `cpu` (ENQCMD). */
  submit?(cpu: number, d: number, pasid: number): void;
  /** Device `d` completed its oldest descriptor; its DMA went to `mm` (0: a fault). */
  complete?(d: number, pasid: number, mm: number): void;
  /** A finding (kernel.warn or an invariant), on `cpu` or on none (-1). */
  violation?(cpu: number, property: string, message: string): void;
}

/** A user program's text, static per scenario (outside the state); a task's position in it is state. */
export interface Program {
  readonly name: string;
  /** [opcode, arg] pairs. */
  readonly code: Int32Array;
}

const MAX_VIOLATIONS_KEPT = 100;

export class Machine {
  readonly w: Int32Array;
  readonly T: Layout["task"]["f"];
  readonly C: Layout["cpu"]["f"];
  readonly M: Layout["mm"]["f"];
  readonly F: Layout["files"]["f"];
  readonly G: Layout["glob"]["f"];
  readonly D: Layout["dev"]["f"];
  readonly B: Layout["bond"]["f"];
  readonly FL: Layout["file"]["f"];
  readonly metrics: Metrics = newMetrics();
  /** metrics.per_cpu: PER_CPU_METRICS counters, cpu-major (see pcpu()). */
  readonly perCpu: Float64Array;
  readonly violations: Violation[] = [];
  violationCount = 0;
  /** Step number of the step being executed (engine-owned). */
  stepNo = 0;
  /** Extra cycles the current step costs beyond its kind's (compute, copies). */
  extra = 0;
  trace: TraceSink | null = null;
  /** The simulation's source of compute jitter (null: none). */
  jitter: Rng | null = null;
  link: EngineLink = { kick() {}, armTimer() {}, cancelTimer() {}, deviceKick() {} };

  constructor(
    readonly mem: Memory,
    readonly L: Layout,
    readonly params: MachineParams,
    readonly costs: CostTable,
  ) {
    this.w = mem.words;
    this.perCpu = new Float64Array(params.cpus * PER_CPU_METRICS.length);
    this.T = L.task.f;
    this.C = L.cpu.f;
    this.M = L.mm.f;
    this.F = L.files.f;
    this.G = L.glob.f;
    this.D = L.dev.f;
    this.B = L.bond.f;
    this.FL = L.file.f;
  }

  // --- state access -------------------------------------------------------

  get(f: Field, i: number): number {
    return this.w[f.at + i * f.stride];
  }

  set(f: Field, i: number, v: number): void {
    this.mem.write(f.at + i * f.stride, v);
  }

  add(f: Field, i: number, d: number): number {
    const a = f.at + i * f.stride;
    const v = this.w[a] + d;
    this.mem.write(a, v);
    return v;
  }

  curr(cpu: number): number {
    return this.get(this.C.curr, cpu);
  }

  // --- free slots ---------------------------------------------------------

  /** Take a slot from the free list at `head` (linked through `next`); 0 when empty. */
  slot_pop(head: Field, next: Field): number {
    const s = this.get(head, 0);
    if (s === 0) return 0;
    this.set(head, 0, this.get(next, s));
    this.set(next, s, 0);
    return s;
  }

  /** Put slot `s` back on the free list at `head`. */
  slot_push(head: Field, next: Field, s: number): void {
    this.set(next, s, this.get(head, 0));
    this.set(head, 0, s);
  }

  // --- findings, costs ----------------------------------------------------

  /** WARN_ON: record a broken invariant as a finding; the run goes on. */
  warn(property: string, message: string, cpu: number): void {
    this.violationCount++;
    if (this.violations.length >= MAX_VIOLATIONS_KEPT) return;
    if (this.trace !== null) this.trace.violation?.(cpu, property, message);
    const path = cpu >= 0 ? this.where(cpu) : "user";
    this.violations.push({ property, step: this.stepNo, message, cpu, path });
  }

  /** What `cpu` is running, for a finding: the kernel names its path (kernel.ts). */
  protected where(_cpu: number): string {
    return "user";
  }

  /** Count one event of per-CPU metric `m` (a PC_* index) on `cpu` (the global count is the caller's). */
  pcpu(cpu: number, m: number): void {
    if (cpu >= 0) this.perCpu[cpu * PER_CPU_METRICS.length + m]++;
  }

  /** Add cycles to the current step beyond its kind's base cost. */
  charge(cycles: number): void {
    this.extra += cycles;
  }

  nsToCycles(ns: number): number {
    return Math.floor((ns * this.params.cpuMhz) / 1000);
  }

  /**
   * Cycles of `ns` of user work. In the simulation it varies by up to
   * jitterPct either way, drawn from the run's seed (real work is never the
   * same twice); the draw changes clocks only, never the state.
   */
  userCycles(ns: number): number {
    const c = this.nsToCycles(ns);
    const j = this.jitter;
    if (j === null || c === 0) return c;
    const bp = this.params.jitterPct * 100;
    return c + Math.floor((c * j.int(-bp, bp)) / 10000);
  }
}
