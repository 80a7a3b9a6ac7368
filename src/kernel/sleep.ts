// Voluntary scheduling: sched_yield() and nanosleep() with its hrtimer.

import { raise_irq } from "../hw/apic.js";
import { IRQ_HRTIMER, TASK_DEAD, TASK_FREE, TASK_INTERRUPTIBLE, TIF_TIMER_ARMED } from "../machine/state.js";
import type { Kernel } from "./kernel.js";
import { defPath, frameLocals } from "./path.js";
import { P_SCHEDULE, SM_NONE, wake_up_process } from "./sched.js";

/** do_sched_yield(): to the back of the queue. */
export const P_SCHED_YIELD = defPath("do_sched_yield", [
  ["schedule", (k, cpu) => k.call(cpu, P_SCHEDULE, SM_NONE)],
]);

const NANOSLEEP = frameLocals({ ns: [0] });

/** hrtimer_nanosleep(): a0 = ns. Arm the timer, then sleep until it fires. */
export const P_NANOSLEEP = defPath("hrtimer_nanosleep", [
  [
    "hrtimer_start",
    (k, cpu, fr) => {
      const t = k.curr(cpu);
      k.set(k.T.state, t, TASK_INTERRUPTIBLE); // set_current_state() before arming: no lost wake-up
      k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_TIMER_ARMED);
      k.add(k.G.nr_timers, 0, 1);
      k.link.armTimer(t, NANOSLEEP.ns.get(k, fr));
    },
  ],
  [
    "schedule",
    (k, cpu) => {
      if (k.get(k.T.state, k.curr(cpu)) === TASK_INTERRUPTIBLE) k.call(cpu, P_SCHEDULE, SM_NONE);
    },
  ],
]);

/**
 * hrtimer_cancel() of a sleeper woken otherwise than by its timer (do_nanosleep() cancels the timer
 * when schedule() returns): a thread killed by de_thread() while it sleeps must not leave its timer
 * armed to fire for a dead (or reused) task slot. Called as the killed sleeper dies.
 */
export function hrtimer_cancel(k: Kernel, t: number): void {
  const tif = k.get(k.T.tif, t);
  if ((tif & TIF_TIMER_ARMED) === 0) return;
  k.set(k.T.tif, t, tif & ~TIF_TIMER_ARMED);
  if (k.add(k.G.nr_timers, 0, -1) < 0) k.warn("timer", "more timers cancelled than were armed", -1);
  k.link.cancelTimer(t);
}

/**
 * The sleeper's hrtimer expired on the CPU it slept on: the timer interrupt
 * is raised there (it wakes a halted CPU) and hrtimer_wakeup() runs.
 * Simplified: the callback runs at expiry as one atomic action, not inside
 * the interrupt handler; the handler only does the exit work (resched).
 */
export function hrtimer_wakeup(k: Kernel, t: number): void {
  const tif = k.get(k.T.tif, t);
  if ((tif & TIF_TIMER_ARMED) === 0) {
    k.warn("timer", `timer fired for task ${t} with no timer armed`, -1);
    return;
  }
  // do_exit() runs after do_nanosleep()'s hrtimer_cancel(): no timer outlives its task. (The
  // state, not PF_EXITING: flags are the running CPU's own, which --por's ownership relies on.)
  const st = k.get(k.T.state, t);
  if (st === TASK_DEAD || st === TASK_FREE)
    k.warn("timer", `timer fired for task ${t}, which has exited`, -1);
  k.set(k.T.tif, t, tif & ~TIF_TIMER_ARMED);
  if (k.add(k.G.nr_timers, 0, -1) < 0) k.warn("timer", "more timers fired than were armed", -1);
  const cpu = k.get(k.T.cpu, t);
  raise_irq(k, cpu, IRQ_HRTIMER);
  wake_up_process(k, t, cpu);
}
