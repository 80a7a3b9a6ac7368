// The machine a search drives, and its transitions. Which transitions are
// enabled is read from the machine state alone (so a restored snapshot has
// the same choices): each CPU that can step, the tick on a CPU whose run queue
// has a task waiting (in `check` every tick ends the slice, so a tick is a
// possible preemption), every armed timer, every device with queued work.
// A violation is any finding (WARN_ON in the model, step invariant), or an
// end invariant broken in a terminal state (deadlock included: tasks left).

import { Engine, type Scheduler, trCpu, trDevice, trTick, trTimer } from "../engine/engine.js";
import { CORE_INVARIANTS } from "../engine/invariants.js";
import type { BootSpec } from "../kernel/boot.js";
import { boot } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { IRQ_TIMER, TIF_TIMER_ARMED } from "../machine/state.js";
import type { Broken } from "./types.js";

/** The size of a buffer of enabled transitions. */
export const MAX_ENABLED = 4096;

/** The scheduler the engine is given in `check`: the explorer drives, nothing is timed. */
const passive: Scheduler = {
  name: "check",
  describe: () => "check",
  start() {},
  next: () => -1,
  armTimer() {},
  cancelTimer() {}, // the explorer's timers are the tasks' TIF_TIMER_ARMED bits
  kick() {},
  deviceKick() {},
};

/** A machine for `check`: every tick ends a slice, compute runs as one step. */
export function checkMachine(spec: BootSpec, properties: readonly string[]): { k: Kernel; e: Engine } {
  const k = boot({ ...spec, params: { ...spec.params, sliceTicks: 1 } });
  k.clearFrames = true;
  const invs =
    properties.length === 0 ? CORE_INVARIANTS : CORE_INVARIANTS.filter((i) => properties.includes(i.name));
  const e = new Engine(k, invs, passive);
  e.chunkNs = 2 ** 31 - 1;
  return { k, e };
}

/**
 * The enabled transitions in the current state, into `out`; returns how many.
 * Per CPU the tick comes before the CPU's step, so depth-first search tries
 * a preemption first at every point, where races are: on check-gp-fixup at 2
 * CPUs, bound 2, the lost MSR write is found after 50,294 states instead of
 * 924,754 (the order SPIN's pan has too: it tries the last process first).
 */
export function enabled(k: Kernel, out: Int32Array): number {
  let n = 0;
  const cpus = k.params.cpus;
  for (let c = 0; c < cpus; c++) {
    const halted = k.get(k.C.halted, c) !== 0;
    const pending = k.get(k.C.pending, c);
    if (!halted && (pending & IRQ_TIMER) === 0 && k.get(k.C.nr_running, c) > 0) out[n++] = trTick(c);
    if (!halted || pending !== 0) out[n++] = trCpu(c);
  }
  // The armed timers: a scan of every task slot's TIF word, by address (the
  // one loop per state that is not O(CPUs)), and only while some are armed,
  // until all of them are found.
  let timers = k.get(k.G.nr_timers, 0);
  if (timers > 0) {
    const w = k.w;
    const tif = k.T.tif;
    const stride = tif.stride;
    const last = tif.at + (k.L.task.count - 1) * stride;
    for (let a = tif.at + stride, t = 1; a <= last && timers > 0; a += stride, t++) {
      if ((w[a] & TIF_TIMER_ARMED) !== 0) {
        out[n++] = trTimer(t);
        timers--;
      }
    }
  }
  for (let d = 0; d < k.model.devices.length; d++) if (k.get(k.D.wq_count, d) > 0) out[n++] = trDevice(d);
  return n;
}

function firstFinding(e: Engine): Broken {
  const v = e.k.violations[0];
  return v === undefined ? null : { property: v.property, message: v.message };
}

/** Run one transition; what it broke (a WARN_ON or a step invariant), if anything. */
export function stepFinding(e: Engine, tr: number): Broken {
  const k = e.k;
  if (k.violationCount !== 0) {
    k.violations.length = 0;
    k.violationCount = 0;
  }
  e.exec(tr);
  return firstFinding(e);
}

/**
 * A terminal state (nothing enabled): what the end invariants say. Callers
 * compute the enabled set once per state and call this when it is empty.
 */
export function endFinding(e: Engine): Broken {
  e.checkEnd();
  return firstFinding(e);
}

/**
 * The low half of a state's key in a visited set: the fingerprint, mixed
 * with the preemptions used to reach it when they are bounded (a state
 * reached with fewer left is a different one for the search).
 */
export function stateKeyLo(k: Kernel, ticks: number, bound: number | null): number {
  return k.mem.hashLo() ^ (bound === null ? 0 : Math.imul(ticks, 0x9e3779b1));
}
