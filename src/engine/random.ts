// The seeded random scheduler: at every point, any enabled transition may run
// next, chosen uniformly (a tick is raised with probability 1/tickOneIn). No
// notion of time decides the order; clocks still advance so costs add up.
// This is the random walk that `check` builds on.

import { Rng } from "../machine/rng.js";
import { type Engine, type Scheduler, trCpu, trDevice, trTick, trTimer } from "./engine.js";

export class RandomScheduler implements Scheduler {
  readonly name = "random";
  private rng: Rng;
  private cpus = new Int32Array(0);
  private timers: number[] = [];
  private devs = new Int32Array(0);

  constructor(
    readonly seed: number,
    readonly tickOneIn = 64,
  ) {
    this.rng = new Rng(seed);
  }

  describe(): string {
    return `random(seed=${this.seed}, tick=1/${this.tickOneIn})`;
  }

  start(e: Engine): void {
    this.rng = new Rng(this.seed);
    this.cpus = new Int32Array(e.k.params.cpus);
    this.timers = [];
    this.devs = new Int32Array(e.k.model.devices.length);
  }

  next(e: Engine): number {
    let n = 0;
    const k = e.k;
    for (let cpu = 0; cpu < this.cpus.length; cpu++) if (e.runnable(cpu)) this.cpus[n++] = cpu;
    const nt = this.timers.length;
    let nd = 0;
    for (let d = 0; d < this.devs.length; d++) if (k.get(k.D.wq_count, d) > 0) this.devs[nd++] = d;
    if (n === 0 && nt === 0 && nd === 0) return -1;
    if (n > 0 && this.rng.int(0, this.tickOneIn - 1) === 0) {
      const cpu = this.cpus[this.rng.int(0, n - 1)];
      if (k.get(k.C.halted, cpu) === 0) return trTick(cpu);
    }
    const r = this.rng.int(0, n + nt + nd - 1);
    if (r < n) return trCpu(this.cpus[r]);
    if (r >= n + nt) return trDevice(this.devs[r - n - nt]);
    const task = this.timers[r - n];
    this.timers[r - n] = this.timers[nt - 1];
    this.timers.pop();
    return trTimer(task);
  }

  kick(): void {}

  deviceKick(): void {}

  armTimer(_e: Engine, task: number): void {
    this.timers.push(task);
  }

  cancelTimer(_e: Engine, task: number): void {
    const i = this.timers.indexOf(task);
    if (i >= 0) this.timers.splice(i, 1);
  }
}
