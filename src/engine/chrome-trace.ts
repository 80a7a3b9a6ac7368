// Chrome Trace Event JSON (opens in Perfetto, chrome://tracing, speedscope):
// one track per CPU; on it a slice per task while it runs, with the kernel
// paths it executes nested inside; interrupts nest on top; notable events
// (wake-ups, exits, mm frees) as instants. Perfetto needs B/E slices to nest
// perfectly per track, so a context switch closes the outgoing task's open
// slices and reopens the incoming task's from its saved kernel stack.
// Timestamps are simulated microseconds of the CPU's own clock.

import type { Kernel } from "../kernel/kernel.js";
import type { TraceSink } from "../machine/machine.js";

interface TraceEvent {
  name: string;
  ph: "B" | "E" | "i" | "M";
  ts?: number;
  pid: number;
  tid: number;
  s?: "t";
  cat?: string;
  args?: Record<string, number | string>;
}

export class ChromeTrace implements TraceSink {
  private readonly events: TraceEvent[] = [];
  /** Per CPU: names of the slices open on its track, bottom first. */
  private readonly open: string[][];
  truncated = false;

  constructor(
    private readonly k: Kernel,
    private readonly clock: Float64Array,
    readonly maxEvents = 2_000_000,
  ) {
    const cpus = k.params.cpus;
    this.open = Array.from({ length: cpus }, () => []);
    this.events.push({ name: "process_name", ph: "M", pid: 0, tid: 0, args: { name: "machine" } });
    for (let c = 0; c < cpus; c++) {
      this.events.push({ name: "thread_name", ph: "M", pid: 0, tid: c, args: { name: `CPU ${c}` } });
      this.events.push({ name: "thread_sort_index", ph: "M", pid: 0, tid: c, args: { sort_index: c } });
    }
  }

  private ts(cpu: number): number {
    // cycles -> µs at the machine clock; rounded to ns so output is stable.
    return Math.round((this.clock[cpu] * 1000) / this.k.params.cpuMhz) / 1000;
  }

  private emit(e: TraceEvent): void {
    if (this.events.length >= this.maxEvents) {
      this.truncated = true;
      return;
    }
    this.events.push(e);
  }

  private begin(cpu: number, name: string, cat: string, args?: Record<string, number | string>): void {
    this.open[cpu].push(name);
    this.emit({ name, ph: "B", ts: this.ts(cpu), pid: 0, tid: cpu, cat, ...(args ? { args } : {}) });
  }

  private end(cpu: number): void {
    const name = this.open[cpu].pop();
    if (name === undefined) return;
    this.emit({ name, ph: "E", ts: this.ts(cpu), pid: 0, tid: cpu });
  }

  private taskName(t: number): string {
    const k = this.k;
    if (t === k.get(k.C.idle, k.get(k.T.cpu, t)) && t <= k.params.cpus) return `swapper/${t - 1}`;
    return `${k.programs[k.get(k.T.prog, t)].name}:${k.get(k.T.pid, t)}`;
  }

  /** Open the running tasks' slices at the start of the run. */
  startRun(): void {
    for (let c = 0; c < this.open.length; c++) {
      const t = this.k.curr(c);
      this.begin(c, this.taskName(t), "task", { task: t });
    }
  }

  pathEnter(cpu: number, _task: number, path: string): void {
    this.begin(cpu, path, "kernel");
  }

  pathExit(cpu: number): void {
    if (this.open[cpu].length > 1) this.end(cpu);
  }

  contextSwitch(cpu: number, prev: number, next: number, nextStack: readonly string[]): void {
    while (this.open[cpu].length > 0) this.end(cpu);
    this.emit({
      name: "sched_switch",
      ph: "i",
      s: "t",
      ts: this.ts(cpu),
      pid: 0,
      tid: cpu,
      args: { prev: this.taskName(prev), next: this.taskName(next) },
    });
    this.begin(cpu, this.taskName(next), "task", { task: next });
    for (const name of nextStack) this.begin(cpu, name, "kernel");
  }

  instant(cpu: number, name: string, args: Record<string, number | string>): void {
    const c = Math.max(cpu, 0);
    this.emit({ name, ph: "i", s: "t", ts: this.ts(c), pid: 0, tid: c, args });
  }

  /** The whole trace as JSON text, every open slice closed. */
  finish(meta: Record<string, string | number>): string {
    for (let c = 0; c < this.open.length; c++) while (this.open[c].length > 0) this.end(c);
    const lines = this.events.map((e) => JSON.stringify(e));
    const other = JSON.stringify({ ...meta, truncated: this.truncated });
    return `{"displayTimeUnit":"ns","otherData":${other},"traceEvents":[\n${lines.join(",\n")}\n]}\n`;
  }
}
