// The simulation scheduler: discrete events in virtual time. Every CPU has its
// own clock (cycles); the event with the smallest (time, seq) runs next, so a
// CPU's step happens when its clock says, and a halted CPU leaves the queue
// until an interrupt wakes it. The seed sets each CPU's tick phase (ticks are
// not aligned across CPUs on real machines) and draws the jitter of user
// compute time (machine.jitter_pct): what makes two seeds schedule a
// contended workload differently and gives `compare` a spread to measure.
//
// The quantum: ordering every step of 64 CPUs by time costs a heap operation
// per step. As multiprocessor simulators do (Simics' time quantum), a CPU taken
// from the queue may run ahead of the others by up to `quantumNs` before it
// yields; events between CPUs are then ordered to within the quantum (default
// 500 ns, below an IPI's latency). quantumNs = 0 gives exact time order.

import { nsToCycles } from "../machine/costs.js";
import { Rng } from "../machine/rng.js";
import {
  type Engine,
  type Scheduler,
  TR_CPU,
  TR_DEVICE,
  TR_TICK,
  trArg,
  trCpu,
  trDevice,
  trKind,
  trTick,
  trTimer,
} from "./engine.js";
import { EventHeap } from "./heap.js";

export class SimScheduler implements Scheduler {
  readonly name = "sim";
  private readonly heap = new EventHeap(256);
  private inHeap = new Uint8Array(0);
  private cpusInHeap = 0;
  private timersPending = 0;
  /** Per task with a timer armed: when it expires. A heap entry that does not match was cancelled. */
  private timerAt = new Map<number, number>();
  private inflight = -1;
  private now = 0;
  private tickCycles = 0;
  private mhz = 1;
  private quantumCycles = 0;
  /** Per device: 1 while a completion event is queued. */
  private devBusy = new Uint8Array(0);
  private devsBusy = 0;
  /** The device whose completion just ran: re-armed on the next call. */
  private devDone = -1;
  private devDoneTime = 0;
  /** The inflight CPU may keep running while its clock is below this. */
  private runUntil = 0;

  constructor(readonly seed: number) {}

  describe(): string {
    return `sim(seed=${this.seed})`;
  }

  /** The time of the transition being run, in cycles (a device completion's time, for the trace). */
  get time(): number {
    return this.now;
  }

  start(e: Engine): void {
    const p = e.k.params;
    this.mhz = p.cpuMhz;
    this.tickCycles = nsToCycles(p.tickNs, p.cpuMhz);
    this.quantumCycles = nsToCycles(p.quantumNs, p.cpuMhz);
    this.inHeap = new Uint8Array(p.cpus);
    this.devBusy = new Uint8Array(e.k.model.devices.length);
    const rng = new Rng(this.seed);
    if (p.jitterPct > 0) e.k.jitter = new Rng((this.seed ^ 0x5bd1e995) >>> 0);
    for (let cpu = 0; cpu < p.cpus; cpu++) {
      this.heap.push(rng.int(0, this.tickCycles - 1), trTick(cpu));
      this.heap.push(e.clock[cpu], trCpu(cpu));
      this.inHeap[cpu] = 1;
      this.cpusInHeap++;
    }
  }

  next(e: Engine): number {
    const h = this.heap;
    const c = this.inflight;
    if (c >= 0) {
      // The CPU that just stepped is still the heap's top: nothing scheduled
      // during its step can be earlier than its start time.
      if (e.runnable(c)) {
        const t = e.clock[c];
        if (t < this.runUntil || t < h.secondTime()) {
          // Within its quantum, or still the earliest event: run it again
          // without touching the heap (the top keeps its stale time, which
          // nothing pushed since can be earlier than).
          this.now = t;
          return c;
        }
        this.inflight = -1;
        h.replaceTop(t, trCpu(c));
      } else {
        this.inflight = -1;
        h.pop();
        this.inHeap[c] = 0;
        this.cpusInHeap--;
      }
    }
    if (this.devDone >= 0) this.rearmDevice(e);
    for (;;) {
      if (this.cpusInHeap === 0 && this.timersPending === 0 && this.devsBusy === 0) return -1;
      const item = h.topItem();
      const time = h.topTime();
      this.now = time;
      const kind = trKind(item);
      if (kind === TR_CPU) {
        this.inflight = item;
        this.runUntil = time + this.quantumCycles;
        return item;
      }
      if (kind === TR_TICK) {
        h.replaceTop(time + this.tickCycles, item);
        return item;
      }
      h.pop();
      if (kind === TR_DEVICE) {
        this.devDone = trArg(item);
        this.devDoneTime = time;
      } else {
        this.timersPending--;
        // A cancelled timer (its sleeper was killed) stays in the heap until here: dropped.
        if (this.timerAt.get(trArg(item)) !== time) continue;
        this.timerAt.delete(trArg(item));
      }
      return item;
    }
  }

  /** A device serves its queue in order: the next completion one latency after this one. */
  private rearmDevice(e: Engine): void {
    const d = this.devDone;
    this.devDone = -1;
    if (e.k.get(e.k.D.wq_count, d) > 0) {
      this.heap.push(this.devDoneTime + this.latency(e, d), trDevice(d));
    } else {
      this.devBusy[d] = 0;
      this.devsBusy--;
    }
  }

  private latency(e: Engine, d: number): number {
    return Math.max(1, nsToCycles(e.k.model.devices[d].latencyNs, this.mhz));
  }

  deviceKick(e: Engine, d: number): void {
    if (this.devBusy[d] !== 0 || this.devDone === d) return;
    this.devBusy[d] = 1;
    this.devsBusy++;
    this.heap.push(this.now + this.latency(e, d), trDevice(d));
  }

  kick(e: Engine, cpu: number): void {
    if (this.inHeap[cpu] !== 0) return;
    const clk = e.clock;
    if (clk[cpu] < this.now) {
      e.k.metrics.idle_cycles += this.now - clk[cpu];
      clk[cpu] = this.now;
    }
    this.heap.push(clk[cpu], trCpu(cpu));
    this.inHeap[cpu] = 1;
    this.cpusInHeap++;
  }

  armTimer(_e: Engine, task: number, ns: number): void {
    const when = this.now + nsToCycles(ns, this.mhz);
    this.heap.push(when, trTimer(task));
    this.timerAt.set(task, when);
    this.timersPending++;
  }

  cancelTimer(_e: Engine, task: number): void {
    this.timerAt.delete(task);
  }
}
