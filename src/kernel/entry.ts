// Kernel entry and exit: syscalls, interrupts, and the way back to user
// space (kernel/entry/common.c). The hook points where the model issues plug
// in are here: syscall entry, exit-to-user work, and (via sched.ts) switch_mm
// and the FPU part of switch_to.

import {
  IRQ_CALL_FUNCTION,
  IRQ_PASID,
  IRQ_RESCHED,
  IRQ_TIMER,
  PF_EXITING,
  TIF_NEED_RESCHED,
} from "../machine/state.js";
import { P_CLOSE, P_DEV_OPEN } from "./devfile.js";
import { P_CLONE } from "./fork.js";
import {
  arch_req_xcomp_perm,
  P_HANDLE_SIGNAL,
  P_KERNEL_FPU,
  P_SIGRETURN,
  P_XSTATE_WRITE,
  pasid_ipi,
  softirq_kernel_fpu,
  TIF_SIGPENDING,
} from "./fpu.js";
import type { Kernel } from "./kernel.js";
import { defPath } from "./path.js";
import { P_EXECVE, P_EXIT } from "./process.js";
import { switch_to_kernel_cr3 } from "./pti.js";
import { P_SCHEDULE, SM_NONE, SM_PREEMPT, scheduler_tick } from "./sched.js";
import { P_NANOSLEEP, P_SCHED_YIELD } from "./sleep.js";
import { flush_smp_call_function_queue, P_MEMOP, P_SET_FIXMAP } from "./tlb.js";

// Syscall numbers of the model (a0 & 0xff); the clone flags ride in a0 >> 8.
export const SYS_WORK = 0; // a generic syscall that spends a1 ns in the kernel
export const SYS_CLONE = 1;
export const SYS_EXECVE = 2;
export const SYS_EXIT = 3;
export const SYS_SCHED_YIELD = 4;
export const SYS_NANOSLEEP = 5;
export const SYS_OPEN = 6; // a1: device | OPEN_PRIVATE
export const SYS_CLOSE = 7; // a1: device (the model closes that device's newest fd)
export const SYS_MMAP = 8; // a1: pages (fresh mappings: nothing to flush)
export const SYS_MUNMAP = 9; // a1: pages of [0, pages); a0 >> 8: how many times in this one syscall
export const SYS_MPROTECT = 10; // as munmap
export const SYS_KERNEL_FPU = 11; // a syscall whose body uses the FPU (kernel_fpu_begin/end)
export const SYS_XSTATE_WRITE = 12; // a1: mask of components to change in the caller's xstate
export const SYS_ARCH_PRCTL = 13; // ARCH_REQ_XCOMP_PERM for AMX TILEDATA
export const SYS_KILL_SELF = 14; // kill(getpid(), SIGUSR1): a signal with a handler
export const SYS_RT_SIGRETURN = 15; // the handler returns
export const SYS_SET_FIXMAP = 16; // a1: kernel fixmap pages a driver remaps on this CPU

/** Task flag: killed by de_thread() (exec in another thread); dies on its way to user. */
export const TIF_KILLED = 1 << 4;

/** do_syscall_64(): a0 = nr | flags << 8, a1 = argument. Entered from user by SYSCALL. */
export const P_SYSCALL = defPath("do_syscall_64", [
  [
    "syscall_enter_from_user_mode",
    (k, cpu) => {
      k.metrics.syscalls++;
      k.callHooks(cpu, k.hooks.syscall_enter);
    },
    "syscall_entry",
  ],
  [
    "syscall_body",
    (k, cpu, fr) => {
      const a0 = k.arg0(fr);
      const arg = k.arg1(fr);
      switch (a0 & 0xff) {
        case SYS_WORK:
          k.charge(k.nsToCycles(arg));
          return;
        case SYS_CLONE:
          k.call(cpu, P_CLONE, a0 >>> 8, arg);
          return;
        case SYS_EXECVE:
          k.call(cpu, P_EXECVE, arg);
          return;
        case SYS_EXIT:
          k.call(cpu, P_EXIT, arg);
          return;
        case SYS_SCHED_YIELD:
          k.call(cpu, P_SCHED_YIELD);
          return;
        case SYS_NANOSLEEP:
          k.call(cpu, P_NANOSLEEP, arg);
          return;
        case SYS_OPEN:
          k.call(cpu, P_DEV_OPEN, arg);
          return;
        case SYS_CLOSE:
          k.call(cpu, P_CLOSE, arg);
          return;
        case SYS_MMAP:
          return; // new VMAs have no TLB entries to shoot down
        case SYS_MUNMAP:
        case SYS_MPROTECT:
          k.call(cpu, P_MEMOP, arg, ((a0 >>> 8) << 2) | ((a0 & 0xff) === SYS_MUNMAP ? 1 : 2));
          return;
        case SYS_SET_FIXMAP:
          k.call(cpu, P_SET_FIXMAP, arg);
          return;
        case SYS_KERNEL_FPU:
          k.call(cpu, P_KERNEL_FPU);
          return;
        case SYS_XSTATE_WRITE:
          k.call(cpu, P_XSTATE_WRITE, arg);
          return;
        case SYS_ARCH_PRCTL:
          arch_req_xcomp_perm(k, cpu);
          return;
        case SYS_KILL_SELF:
          k.set(k.T.tif, k.curr(cpu), k.get(k.T.tif, k.curr(cpu)) | TIF_SIGPENDING);
          return;
        case SYS_RT_SIGRETURN:
          k.call(cpu, P_SIGRETURN);
          return;
        default:
          k.warn("syscall", `unknown syscall ${a0 & 0xff}`, cpu);
      }
    },
  ],
  [
    "syscall_exit_to_user_mode",
    (k, cpu) => {
      k.ret(cpu); // a tail call: nothing of the syscall is left on the stack
      k.call(cpu, P_EXIT_TO_USER);
    },
  ],
]);

/** exit_to_user_mode(): handle pending work, then return to user space. */
export const P_EXIT_TO_USER = defPath("exit_to_user_mode", [
  [
    "exit_to_user_mode_loop",
    (k, cpu, fr) => {
      const t = k.curr(cpu);
      const tif = k.get(k.T.tif, t);
      if ((tif & TIF_KILLED) !== 0 && (k.get(k.T.flags, t) & PF_EXITING) === 0) {
        k.call(cpu, P_EXIT, 9 /* SIGKILL */);
        return;
      }
      if ((tif & TIF_NEED_RESCHED) !== 0) {
        k.jump(fr, 0); // loop until no work is left
        k.call(cpu, P_SCHEDULE, SM_NONE);
        return;
      }
      if ((tif & TIF_SIGPENDING) !== 0) {
        k.jump(fr, 0); // arch_do_signal_or_restart(), then look again
        k.call(cpu, P_HANDLE_SIGNAL);
        return;
      }
      k.set(k.C.irqs_off, cpu, 1); // local_irq_disable_exit_to_user()
    },
  ],
  ["arch_exit_to_user_mode_prepare", (k, cpu) => k.callHooks(cpu, k.hooks.exit_to_user)],
  [
    "return_to_user",
    (k, cpu) => {
      // SYSRET/IRET: back in user mode, interrupts on.
      k.ret(cpu);
      k.set(k.C.in_user, cpu, 1);
      k.set(k.C.irqs_off, cpu, 0);
      if (k.get(k.T.depth, k.curr(cpu)) !== 0) {
        k.warn("kernel-stack", `returning to user with kernel frames left`, cpu);
      }
    },
    "syscall_exit",
  ],
]);

/** preempt_schedule_irq(): preemption on the way out of an interrupt to kernel code. */
export const P_PREEMPT_SCHEDULE_IRQ = defPath("preempt_schedule_irq", [
  ["preempt_schedule_irq", (k, cpu) => k.call(cpu, P_SCHEDULE, SM_PREEMPT)],
]);

/**
 * An interrupt: the hardware pushed the frame and cleared IF; a0 = 1 when it
 * interrupted user mode. Handles one pending vector, then irqentry_exit().
 */
export const P_IRQ = defPath("common_interrupt", [
  [
    "irqentry_enter",
    (k, cpu) => {
      k.metrics.interrupts++;
      const pending = k.get(k.C.pending, cpu);
      const bit = pending & -pending; // lowest pending vector first
      k.set(k.C.pending, cpu, pending & ~bit);
      if (bit === IRQ_TIMER) {
        k.charge(k.costs.tick);
        scheduler_tick(k, cpu);
      } else if (bit === IRQ_RESCHED) {
        // scheduler_ipi(): TIF_NEED_RESCHED is already set; the exit path acts on it.
      } else if (bit === IRQ_CALL_FUNCTION) {
        flush_smp_call_function_queue(k, cpu);
      } else if (bit === IRQ_PASID) {
        pasid_ipi(k, cpu);
      }
    },
    "irq_entry",
  ],
  [
    "irqentry_exit",
    (k, cpu, fr) => {
      const fromUser = k.arg0(fr) !== 0;
      if (k.model.softirqFpu) softirq_kernel_fpu(k, cpu); // irq_exit(): softirqs, if BHs are enabled
      k.ret(cpu);
      if (fromUser) {
        k.set(k.C.irqs_off, cpu, 0);
        k.call(cpu, P_EXIT_TO_USER);
        return;
      }
      const t = k.curr(cpu);
      if (
        k.get(k.C.irq_depth, cpu) === 0 &&
        k.get(k.C.preempt_count, cpu) === 0 &&
        (k.get(k.T.tif, t) & TIF_NEED_RESCHED) !== 0 &&
        t !== k.get(k.C.idle, cpu)
      ) {
        // irqentry_exit_cond_resched(): still with IRQs off, so no second
        // interrupt can come in before preempt_schedule_irq() disables
        // preemption (it found that hole: preemptions nested on one stack).
        k.call(cpu, P_PREEMPT_SCHEDULE_IRQ);
        return;
      }
      k.set(k.C.irqs_off, cpu, 0); // IRET restores the interrupted IF (it was on)
    },
    "irq_exit",
  ],
]);

/** Take an interrupt: leave user mode or halt, push the handler frame. */
export function enter_irq(k: Kernel, cpu: number): void {
  const fromUser = k.get(k.C.in_user, cpu);
  if (fromUser !== 0 && k.model.tlb.pti) switch_to_kernel_cr3(k, cpu);
  k.set(k.C.in_user, cpu, 0);
  k.set(k.C.halted, cpu, 0);
  k.set(k.C.irqs_off, cpu, 1);
  k.callIrq(cpu, P_IRQ, fromUser);
}

/** The SYSCALL instruction: from user mode into do_syscall_64. */
export function enter_syscall(k: Kernel, cpu: number, nr: number, arg: number): void {
  if (k.model.tlb.pti) switch_to_kernel_cr3(k, cpu); // entry_SYSCALL_64, before anything else
  k.set(k.C.in_user, cpu, 0);
  k.call(cpu, P_SYSCALL, nr, arg);
}
