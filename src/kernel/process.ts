// exec and exit, in the order fs/exec.c and kernel/exit.c use.
//
// do_exit(): exit_signals -> (exit hooks) -> exit_mm -> exit_files ->
// exit_notify -> do_task_dead. exit_mm() keeps the mm as a lazy-TLB
// active_mm (mmgrab) and drops mm_users with mmput(); the lazy reference is
// handed on or dropped by the context switch away from the dead task, and
// the slot itself is freed in finish_task_switch() on the next task.
//
// exec: a new mm (bprm_mm_init), exec_mmap() swaps it in and activates it,
// then mmput()s the old one; de_thread() kills the other threads.

import { PF_EXITING, TASK_DEAD, TASK_INTERRUPTIBLE, TIF_KILLED } from "../machine/state.js";
import { put_files_struct, sva_lock, sva_unlock } from "./devfile.js";
import { pasid_put } from "./iommu.js";
import { mm_alloc, mmgrab, P_MMPUT } from "./mm.js";
import { defPath, frameLocals } from "./path.js";
import { P_SCHEDULE, SM_DEAD, wake_up_process } from "./sched.js";
import { hrtimer_cancel } from "./sleep.js";
import { enter_lazy_tlb } from "./tlb.js";

const EXIT = frameLocals({ code: [0] });

/** do_exit(code): a0 = exit code. Never returns. */
export const P_EXIT = defPath("do_exit", [
  [
    "exit_signals",
    (k, cpu, fr) => {
      const t = k.curr(cpu);
      if ((k.get(k.T.flags, t) & PF_EXITING) !== 0) k.warn("exit", `task ${t} exits twice`, cpu);
      k.set(k.T.flags, t, k.get(k.T.flags, t) | PF_EXITING);
      k.set(k.T.exit_code, t, EXIT.code.get(k, fr));
      // A sleeper killed by de_thread() returns from do_nanosleep() through hrtimer_cancel() first.
      if (!k.model.variants.has("no-sleeper-cancel")) hrtimer_cancel(k, t);
      k.callHooks(cpu, k.hooks.exit);
    },
  ],
  [
    "mm_pasid_task_exit",
    (k, cpu) => void (k.get(k.T.pasid_ref, k.curr(cpu)) !== 0 && k.call(cpu, P_PASID_TASK_PUT)),
  ],
  [
    "exit_mm",
    (k, cpu) => {
      const t = k.curr(cpu);
      const mm = k.get(k.T.mm, t);
      if (mm === 0) return;
      if (k.get(k.T.active_mm, t) !== mm) k.warn("mm-refcount", `task ${t}: active_mm is not mm`, cpu);
      mmgrab(k, mm, cpu); // mmgrab_lazy_tlb(): stay on this mm lazily until we switch away
      k.set(k.T.mm, t, 0);
      enter_lazy_tlb(k, cpu); // no user access from here: flushes may skip this CPU
      k.call(cpu, P_MMPUT, mm);
    },
  ],
  [
    "exit_files",
    (k, cpu) => {
      const t = k.curr(cpu);
      const files = k.get(k.T.files, t);
      if (files === 0) return;
      k.set(k.T.files, t, 0);
      put_files_struct(k, files, cpu);
    },
  ],
  [
    "exit_notify",
    (k, cpu) => {
      // The parent ignores SIGCHLD: the task is reaped as soon as it is dead.
      k.add(k.G.nr_user_tasks, 0, -1);
      k.metrics.exits++;
      if (k.trace !== null) k.trace.instant(cpu, "exit", { task: k.curr(cpu) });
    },
  ],
  [
    "preempt_disable",
    // From here the dying task must not be preempted: a preemption would
    // requeue a task that is about to be freed.
    (k, cpu) => void k.add(k.C.preempt_count, cpu, 1),
  ],
  [
    "do_task_dead",
    (k, cpu) => {
      k.set(k.T.state, k.curr(cpu), TASK_DEAD);
      k.call(cpu, P_SCHEDULE, SM_DEAD); // __schedule() directly, preemption already off
    },
  ],
  ["dead_task_ran", (k, cpu) => k.warn("exit", `dead task ${k.curr(cpu)} was scheduled again`, cpu)],
]);

/**
 * `task-refcount`: the exiting task's PASID reference, dropped under
 * iommu_sva_lock like the bind and unbind paths' references (dropped outside
 * it, the PASID could be freed while a sibling is binding with it).
 */
const P_PASID_TASK_PUT = defPath("mm_pasid_task_put", [
  ["mutex_lock", (k, cpu, fr) => void sva_lock(k, cpu, fr, 0)],
  [
    "pasid_put",
    (k, cpu) => {
      const t = k.curr(cpu);
      k.set(k.T.pasid_ref, t, 0);
      pasid_put(k, k.get(k.T.mm, t), cpu);
      sva_unlock(k, cpu);
    },
  ],
]);

/** execve(prog)'s locals: a0 = the new program; a1 = the new mm, then (once it is installed) the old one. */
const EXECVE = frameLocals({ prog: [0], mm: [1, 0, 32, "mm"], oldMm: [1, 0, 32, "mm"] }, "do_execve");

/** execve(prog): a0 = the new program. */
export const P_EXECVE = defPath("do_execve", [
  [
    "de_thread",
    (k, cpu) => {
      // Kill the other threads of the group; the exec'ing thread leads it.
      const t = k.curr(cpu);
      const tgid = k.get(k.T.tgid, t);
      const n = k.L.task.count;
      for (let o = 1; o < n; o++) {
        if (o === t || k.get(k.T.tgid, o) !== tgid || k.get(k.T.state, o) === 0) continue;
        if ((k.get(k.T.flags, o) & PF_EXITING) !== 0) continue;
        k.set(k.T.tif, o, k.get(k.T.tif, o) | TIF_KILLED);
        k.set(k.T.tgid, o, k.get(k.T.pid, o));
        if (k.get(k.T.state, o) === TASK_INTERRUPTIBLE) wake_up_process(k, o, cpu);
      }
      k.set(k.T.tgid, t, k.get(k.T.pid, t));
    },
  ],
  [
    "bprm_mm_init",
    (k, cpu, fr) => {
      const mm = mm_alloc(k);
      if (mm === 0) k.warn("mm-leak", "no mm slot for exec", cpu);
      EXECVE.mm.set(k, fr, mm);
    },
    "exec",
  ],
  [
    "exec_mmap",
    (k, cpu, fr) => {
      const t = k.curr(cpu);
      const mm = EXECVE.mm.get(k, fr);
      const old = k.get(k.T.mm, t);
      k.set(k.T.mm, t, mm);
      k.set(k.T.active_mm, t, mm);
      EXECVE.oldMm.set(k, fr, old);
      k.callHooks(cpu, k.hooks.switch_mm, mm); // activate_mm()
    },
  ],
  [
    "mmput_old",
    (k, cpu, fr) => {
      const old = EXECVE.oldMm.get(k, fr);
      if (old !== 0) k.call(cpu, P_MMPUT, old);
    },
  ],
  ["begin_new_exec", (k, cpu) => k.callHooks(cpu, k.hooks.exec)],
  [
    "start_thread",
    (k, cpu, fr) => {
      const t = k.curr(cpu);
      k.set(k.T.prog, t, EXECVE.prog.get(k, fr));
      k.set(k.T.upc, t, 0);
      k.set(k.T.urem, t, 0);
      k.set(k.T.lsp, t, 0);
      k.metrics.execs++;
      if (k.trace !== null) k.trace.instant(cpu, "exec", { task: t, mm: k.get(k.T.mm, t) });
    },
  ],
]);
