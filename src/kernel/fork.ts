// kernel_clone() / copy_process(), as kernel/fork.c orders it:
// dup_task_struct, copy_files, copy_mm, copy_thread (arch hooks such as
// fpu_clone), then wake_up_new_task. One step per stage, so that `check`
// can interleave other CPUs between them.

import { TASK_FREE, TASK_NEW } from "../machine/state.js";
import { dup_fd } from "./devfile.js";
import { P_EXIT_TO_USER } from "./entry.js";
import type { Kernel } from "./kernel.js";
import { mm_alloc, mmget } from "./mm.js";
import { defPath, frameLocals } from "./path.js";
import { finish_task_switch, wake_up_process } from "./sched.js";
import { flush_tlb_mm } from "./tlb_flush.js";

export const CLONE_VM = 0x100;
export const CLONE_FILES = 0x400;
export const CLONE_THREAD = 0x10000;
/** The flags are shifted into a0 >> 8; the model keeps the kernel's values divided by 0x100. */
export const CLONE_FLAGS_SHIFT = 8;

/** kernel_clone()'s locals: a0 = clone flags (>> 8); a1 = the child's program, which becomes the child. */
export const CLONE = frameLocals(
  { flags: [0], prog: [1, 0, 16], child: [1, 16, 16, "task"] },
  "kernel_clone",
);

export const P_CLONE = defPath("kernel_clone", [
  [
    "dup_task_struct",
    (k, cpu, fr) => {
      const child = k.slot_pop(k.G.task_free, k.T.rq_next);
      if (child === 0) {
        // -EAGAIN: no task slot (the model's pid_max / RLIMIT_NPROC).
        k.metrics.fork_failures++;
        if (k.trace !== null) k.trace.instant(cpu, "fork: EAGAIN", {});
        k.ret(cpu);
        return;
      }
      if (k.get(k.T.state, child) !== TASK_FREE)
        k.warn("task-leak", `task slot ${child} on the free list in use`, cpu);
      const parent = k.curr(cpu);
      const prog = CLONE.prog.get(k, fr);
      const T = k.T;
      k.set(T.state, child, TASK_NEW);
      k.set(T.pid, child, k.add(k.G.next_pid, 0, 1));
      k.set(T.cpu, child, cpu);
      k.set(T.prog, child, prog);
      const flags = CLONE.flags.get(k, fr) << CLONE_FLAGS_SHIFT;
      // tgid is the leader's pid, not its slot: slots are reused, pids are not.
      k.set(T.tgid, child, (flags & CLONE_THREAD) !== 0 ? k.get(T.tgid, parent) : k.get(T.pid, child));
      CLONE.child.set(k, fr, child);
      k.add(k.G.nr_user_tasks, 0, 1);
      k.charge(k.costs.copy_process);
      k.metrics.forks++;
    },
  ],
  [
    "copy_files",
    (k, cpu, fr) => {
      const parent = k.curr(cpu);
      const child = CLONE.child.get(k, fr);
      const flags = CLONE.flags.get(k, fr) << CLONE_FLAGS_SHIFT;
      if ((flags & CLONE_FILES) !== 0) {
        const files = k.get(k.T.files, parent);
        k.add(k.F.count, files, 1);
        k.metrics.refcount_ops++;
        k.charge(k.costs.atomic);
        k.set(k.T.files, child, files);
      } else {
        const files = files_alloc(k, cpu);
        dup_fd(k, k.get(k.T.files, parent), files); // the child inherits open files
        k.set(k.T.files, child, files);
      }
    },
  ],
  [
    "copy_mm",
    (k, cpu, fr) => {
      const parent = k.curr(cpu);
      const child = CLONE.child.get(k, fr);
      const flags = CLONE.flags.get(k, fr) << CLONE_FLAGS_SHIFT;
      const oldmm = k.get(k.T.mm, parent);
      let mm: number;
      if ((flags & CLONE_VM) !== 0) {
        mmget(k, oldmm, cpu);
        mm = oldmm;
      } else {
        mm = mm_alloc(k); // dup_mm(): a copy of the parent's address space
        if (mm === 0) k.warn("mm-leak", "no mm slot for dup_mm", cpu);
        k.charge(k.costs.dup_mm);
      }
      k.set(k.T.mm, child, mm);
      k.set(k.T.active_mm, child, mm);
      if (mm !== oldmm && mm !== 0) {
        // dup_mmap(): copy_page_range() copies the present PTEs (the parent's
        // writable private ones write-protected for COW), then
        // flush_tlb_mm(oldmm): a full flush of the parent's mm with IPIs to
        // every CPU in its mm_cpumask, lazy ones included (freed_tables).
        k.set(k.M.ptes, mm, k.get(k.M.ptes, oldmm));
        k.set(k.M.ptes_end, mm, k.get(k.M.ptes_end, oldmm));
        flush_tlb_mm(k, cpu, oldmm);
      }
    },
  ],
  [
    "copy_thread",
    (k, cpu, fr) => {
      const child = CLONE.child.get(k, fr);
      k.pushTaskFrame(child, P_RET_FROM_FORK);
      k.callHooks(cpu, k.hooks.copy_process, child);
    },
  ],
  ["wake_up_new_task", (k, cpu, fr) => void wake_up_process(k, CLONE.child.get(k, fr), cpu), "wakeup"],
]);

/** Where a new task starts: finish the switch that brought it in, then go to user space. */
export const P_RET_FROM_FORK = defPath("ret_from_fork", [
  ["schedule_tail", (k, cpu) => finish_task_switch(k, cpu)],
  [
    "syscall_exit_to_user_mode",
    (k, cpu) => {
      k.ret(cpu);
      k.call(cpu, P_EXIT_TO_USER);
    },
  ],
]);

/** A new files_struct (copy_files without CLONE_FILES): count 1. */
export function files_alloc(k: Kernel, cpu: number): number {
  const f = k.slot_pop(k.G.files_free, k.F.next_free);
  if (f === 0) {
    k.warn("files-leak", "no files_struct slot", cpu);
    return 0;
  }
  k.set(k.F.count, f, 1);
  k.add(k.G.nr_files, 0, 1);
  k.charge(k.costs.kmalloc);
  return f;
}
