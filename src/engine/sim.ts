// The simulation scheduler: discrete events in virtual time. Every CPU has its
// own clock (cycles); the event with the smallest (time, seq) runs next, so a
// CPU's step happens when its clock says, and a halted CPU leaves the queue
// until an interrupt wakes it. The seed sets each CPU's tick phase (ticks are
// not aligned across CPUs on real machines), which is what makes two seeds
// schedule a contended workload differently.

import { nsToCycles } from "./costs.js";
import { type Engine, type Scheduler, TR_CPU, TR_TICK, trCpu, trKind, trTick, trTimer } from "./engine.js";
import { EventHeap } from "./heap.js";
import { Rng } from "./rng.js";

export class SimScheduler implements Scheduler {
  readonly name = "sim";
  private readonly heap = new EventHeap(256);
  private inHeap = new Uint8Array(0);
  private cpusInHeap = 0;
  private timersPending = 0;
  private inflight = -1;
  private now = 0;
  private tickCycles = 0;
  private mhz = 1;

  constructor(readonly seed: number) {}

  describe(): string {
    return `sim(seed=${this.seed})`;
  }

  start(e: Engine): void {
    const p = e.k.params;
    this.mhz = p.cpuMhz;
    this.tickCycles = nsToCycles(p.tickNs, p.cpuMhz);
    this.inHeap = new Uint8Array(p.cpus);
    const rng = new Rng(this.seed);
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
      this.inflight = -1;
      if (e.runnable(c)) h.replaceTop(e.clock[c], trCpu(c));
      else {
        h.pop();
        this.inHeap[c] = 0;
        this.cpusInHeap--;
      }
    }
    for (;;) {
      if (this.cpusInHeap === 0 && this.timersPending === 0) return -1;
      const item = h.topItem();
      const time = h.topTime();
      this.now = time;
      const kind = trKind(item);
      if (kind === TR_CPU) {
        this.inflight = item;
        return item;
      }
      if (kind === TR_TICK) {
        h.replaceTop(time + this.tickCycles, item);
        return item;
      }
      h.pop();
      this.timersPending--;
      return item;
    }
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
    this.heap.push(this.now + nsToCycles(ns, this.mhz), trTimer(task));
    this.timersPending++;
  }
}
