// The scheduler, as kernel/sched/core.c has it, reduced to FIFO run queues:
// per-CPU queues of runnable tasks (the running task is not queued), time
// slices counted in ticks, wake-ups with a reschedule IPI to an idle CPU, and
// context_switch() as steps. The lazy-TLB active_mm hand-over follows
// context_switch() exactly, because it decides when an mm is freed.
// Simplified: no priorities or CFS vruntime, no load balancing beyond the
// placement choice at fork and wake-up (docs/model-vs-kernel.md).

import { raise_irq } from "../hw/apic.js";
import {
  IRQ_RESCHED,
  PF_IDLE,
  TASK_DEAD,
  TASK_FREE,
  TASK_INTERRUPTIBLE,
  TASK_NEW,
  TASK_RUNNING,
  TIF_NEED_RESCHED,
} from "../machine/state.js";
import type { Kernel } from "./kernel.js";
import { mmdrop, mmgrab } from "./mm.js";
import { defPath, frameLocals } from "./path.js";
import { enter_lazy_tlb } from "./tlb.js";

// --- run queues -----------------------------------------------------------

export function enqueue_task(k: Kernel, cpu: number, t: number): void {
  if (k.get(k.T.on_rq, t) !== 0 && k.get(k.T.rq_next, t) !== 0) {
    k.warn("runqueue", `task ${t} enqueued twice`, cpu);
  }
  k.set(k.T.on_rq, t, 1);
  k.set(k.T.cpu, t, cpu);
  k.set(k.T.rq_next, t, 0);
  const tail = k.get(k.C.rq_tail, cpu);
  if (tail === 0) k.set(k.C.rq_head, cpu, t);
  else k.set(k.T.rq_next, tail, t);
  k.set(k.C.rq_tail, cpu, t);
  k.add(k.C.nr_running, cpu, 1);
}

/** Take the first queued task, or 0. */
function dequeue_head(k: Kernel, cpu: number): number {
  const t = k.get(k.C.rq_head, cpu);
  if (t === 0) return 0;
  const next = k.get(k.T.rq_next, t);
  k.set(k.C.rq_head, cpu, next);
  if (next === 0) k.set(k.C.rq_tail, cpu, 0);
  k.set(k.T.rq_next, t, 0);
  k.add(k.C.nr_running, cpu, -1);
  return t;
}

/** Load of a CPU for placement: queued tasks plus a non-idle running one. */
function cpu_load(k: Kernel, cpu: number): number {
  const curr = k.get(k.C.curr, cpu);
  return k.get(k.C.nr_running, cpu) + (curr === k.get(k.C.idle, cpu) ? 0 : 1);
}

/**
 * select_task_rq(): the task's previous CPU when it is idle, else the least
 * loaded CPU (lowest number on ties, scanning from the previous CPU so that
 * placement spreads).
 */
export function select_task_rq(k: Kernel, t: number): number {
  const n = k.params.cpus;
  const prev = k.get(k.T.cpu, t);
  let best = prev;
  let bestLoad = cpu_load(k, prev);
  if (bestLoad === 0) return prev;
  for (let i = 1; i < n; i++) {
    const c = (prev + i) % n;
    const load = cpu_load(k, c);
    if (load < bestLoad) {
      best = c;
      bestLoad = load;
      if (load === 0) break;
    }
  }
  return best;
}

/** resched_curr(): mark the CPU's current task; a remote CPU gets a reschedule IPI. */
export function resched_curr(k: Kernel, cpu: number, fromCpu: number): void {
  const curr = k.get(k.C.curr, cpu);
  const tif = k.get(k.T.tif, curr);
  if ((tif & TIF_NEED_RESCHED) !== 0) return;
  k.set(k.T.tif, curr, tif | TIF_NEED_RESCHED);
  if (cpu !== fromCpu) {
    k.metrics.resched_ipis++;
    k.charge(k.costs.ipi_send);
    raise_irq(k, cpu, IRQ_RESCHED);
  }
}

/** try_to_wake_up(): make a sleeping or new task runnable. Returns false if it was not asleep. */
export function wake_up_process(k: Kernel, t: number, fromCpu: number): boolean {
  const state = k.get(k.T.state, t);
  if (state !== TASK_INTERRUPTIBLE && state !== TASK_NEW) return false;
  k.set(k.T.state, t, TASK_RUNNING);
  k.metrics.wakeups++;
  k.charge(k.costs.wakeup);
  if (k.get(k.T.on_rq, t) !== 0) return true; // ttwu_runnable(): still queued, just running again
  // p->on_cpu: a task still being switched out (curr of its CPU until
  // __switch_to, then its prev_task until finish_task_switch() clears
  // on_cpu) is queued where it runs, never migrated (ttwu_queue_wakelist()),
  // or another CPU would run it while the old one still finishes the switch
  // with it: and free it there if it had died meanwhile.
  const prevCpu = k.get(k.T.cpu, t);
  const onCpu = k.get(k.C.curr, prevCpu) === t || k.get(k.C.prev_task, prevCpu) === t;
  const cpu = onCpu ? prevCpu : select_task_rq(k, t);
  enqueue_task(k, cpu, t);
  if (k.get(k.C.curr, cpu) === k.get(k.C.idle, cpu)) resched_curr(k, cpu, fromCpu);
  if (k.trace !== null) k.trace.instant(fromCpu, "wakeup", { task: t, cpu });
  return true;
}

/** scheduler_tick(): account the slice; ask for a reschedule when it is used up. */
export function scheduler_tick(k: Kernel, cpu: number): void {
  k.metrics.ticks++;
  // jiffies, on the do_timer() CPU: kept only for consider_global_asid's
  // sampling, since a counter in the state would keep check from ever
  // meeting a state twice across ticks.
  if (cpu === 0 && k.model.tlb.invlpgb) k.add(k.G.jiffies, 0, 1);
  const curr = k.get(k.C.curr, cpu);
  const queued = k.get(k.C.nr_running, cpu) > 0;
  if (curr === k.get(k.C.idle, cpu)) {
    if (queued) resched_curr(k, cpu, cpu);
    return;
  }
  const ticks = k.add(k.T.ticks, curr, 1);
  if (ticks >= k.params.sliceTicks) {
    k.set(k.T.ticks, curr, 0);
    if (queued) resched_curr(k, cpu, cpu);
  }
}

// --- schedule() -----------------------------------------------------------

/** schedule() modes (a0): a voluntary call, ... */
export const SM_NONE = 0;
/** ... preemption (SM_PREEMPT: prev stays queued whatever its state), ... */
export const SM_PREEMPT = 1;
/** ... or do_task_dead(), which calls __schedule() with preemption already disabled. */
export const SM_DEAD = 2;

/** schedule(): a0 = the mode, SM_*; a1 = the task picked to run next. */
export const SCHEDULE = frameLocals({ mode: [0], next: [1, 0, 32, "task"] }, "schedule");

export const P_SCHEDULE = defPath("schedule", [
  [
    "__schedule",
    (k, cpu, fr) => {
      const c = k.C;
      if (k.get(c.irq_depth, cpu) !== 0) k.warn("sched-atomic", "schedule() in interrupt context", cpu);
      const mode = SCHEDULE.mode.get(k, fr);
      const expected = mode === SM_DEAD ? 1 : 0;
      if (k.get(c.preempt_count, cpu) !== expected) {
        k.warn("sched-atomic", `scheduling while atomic: preempt_count ${k.get(c.preempt_count, cpu)}`, cpu);
      }
      k.set(c.irqs_off, cpu, 1); // local_irq_disable(); rq_lock()
      if (mode !== SM_DEAD) k.add(c.preempt_count, cpu, 1); // schedule()'s preempt_disable()
      const prev = k.get(c.curr, cpu);
      const preempt = mode === SM_PREEMPT;
      k.set(k.T.tif, prev, k.get(k.T.tif, prev) & ~TIF_NEED_RESCHED);
      k.set(k.T.ticks, prev, 0);
      const idle = k.get(c.idle, cpu);
      if (prev !== idle) {
        if (!preempt && k.get(k.T.state, prev) !== TASK_RUNNING) {
          k.set(k.T.on_rq, prev, 0); // deactivate_task()
        } else {
          enqueue_task(k, cpu, prev); // put_prev_task(): back of the queue
        }
      }
      const next = dequeue_head(k, cpu) || idle;
      if (next === prev) {
        if (mode === SM_DEAD) k.warn("exit", `dead task ${prev} picked to run again`, cpu);
        k.add(c.preempt_count, cpu, -1);
        k.set(c.irqs_off, cpu, 0);
        k.ret(cpu);
        return;
      }
      if (preempt) k.metrics.preemptions++;
      k.metrics.context_switches++;
      SCHEDULE.next.set(k, fr, next);
    },
    "schedule",
  ],
  [
    "context_switch",
    (k, cpu, fr) => {
      const prev = k.get(k.C.curr, cpu);
      const next = SCHEDULE.next.get(k, fr);
      const T = k.T;
      const prevMm = k.get(T.mm, prev);
      const prevActive = k.get(T.active_mm, prev);
      if (k.get(T.mm, next) === 0) {
        // To a kernel thread: it borrows prev's mm (lazy TLB).
        k.set(T.active_mm, next, prevActive);
        enter_lazy_tlb(k, cpu);
        if (prevMm !== 0) mmgrab(k, prevActive, cpu);
        else k.set(T.active_mm, prev, 0);
      } else {
        // To a user task. From a kernel thread, its borrowed mm is dropped
        // in finish_task_switch(), after the switch.
        if (prevMm === 0) {
          k.set(k.C.prev_mm, cpu, prevActive);
          k.set(T.active_mm, prev, 0);
        }
        k.callHooks(cpu, k.hooks.switch_mm, k.get(T.mm, next));
      }
    },
  ],
  [
    "switch_fpu",
    (k, cpu, fr) => k.callHooks(cpu, k.hooks.switch_fpu, k.get(k.C.curr, cpu), SCHEDULE.next.get(k, fr)),
  ],
  [
    "__switch_to",
    (k, cpu, fr) => {
      // From here the CPU runs next's kernel stack; prev resumes at the next
      // step (finish_task_switch) when it is switched back in.
      const prev = k.get(k.C.curr, cpu);
      const next = SCHEDULE.next.get(k, fr);
      k.set(k.C.prev_task, cpu, prev);
      k.set(k.C.curr, cpu, next);
      k.set(k.T.cpu, next, cpu);
      if (k.trace !== null) k.trace.contextSwitch(cpu, prev, next, stackNames(k, next));
    },
    "switch_to",
  ],
  ["finish_task_switch", (k, cpu) => finish_task_switch(k, cpu)],
]);

/** finish_task_switch(prev): runs on next's stack, after the switch. */
export function finish_task_switch(k: Kernel, cpu: number): void {
  const c = k.C;
  const prev = k.get(c.prev_task, cpu);
  const mm = k.get(c.prev_mm, cpu);
  k.set(c.prev_task, cpu, 0);
  k.set(c.prev_mm, cpu, 0);
  k.add(c.preempt_count, cpu, -1);
  k.set(c.irqs_off, cpu, 0); // finish_lock_switch(): rq unlock, local_irq_enable()
  if (mm !== 0) mmdrop(k, mm, cpu); // mmdrop_lazy_tlb()
  if (prev !== 0 && k.get(k.T.state, prev) === TASK_DEAD) put_task_struct(k, prev, cpu);
}

/** The last reference to a dead task: free its slot (release_task() folded in). */
function put_task_struct(k: Kernel, t: number, cpu: number): void {
  const T = k.T;
  if (k.get(T.mm, t) !== 0 || k.get(T.active_mm, t) !== 0 || k.get(T.files, t) !== 0) {
    k.warn("task-leak", `dead task ${t} still holds mm ${k.get(T.mm, t)}/${k.get(T.active_mm, t)}`, cpu);
  }
  k.mem.zero(k.L.task.addr(t), k.L.task.stride); // most of the slot is 0 already
  k.set(T.state, t, TASK_FREE);
  k.slot_push(k.G.task_free, T.rq_next, t);
  k.charge(k.costs.kfree);
}

/** Names of the paths on a task's kernel stack, bottom first (for the trace). */
function stackNames(k: Kernel, t: number): string[] {
  const names: string[] = [];
  const depth = k.get(k.T.depth, t);
  for (let d = 0; d < depth; d++) names.push(k.pathNameAt(k.taskFrameAddr(t, d)));
  return names;
}

// --- the idle loop ----------------------------------------------------------

/** do_idle(): schedule when there is work, else halt with interrupts on. Never returns. */
export const P_IDLE = defPath("do_idle", [
  [
    "do_idle",
    (k, cpu, fr) => {
      k.jump(fr, 0);
      const idle = k.get(k.C.curr, cpu);
      if ((k.get(k.T.flags, idle) & PF_IDLE) === 0)
        k.warn("sched-idle", `cpu ${cpu}: idle loop on task ${idle}`, cpu);
      if ((k.get(k.T.tif, idle) & TIF_NEED_RESCHED) !== 0 || k.get(k.C.nr_running, cpu) > 0) {
        k.call(cpu, P_SCHEDULE, SM_NONE);
        return;
      }
      k.set(k.C.halted, cpu, 1); // arch_cpu_idle(): sti; hlt
    },
    "idle_poll",
  ],
]);
