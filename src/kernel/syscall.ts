// System calls (arch/x86/entry/syscall_64.c, common.c): the SYSCALL
// instruction's entry and do_syscall_64's table. The model's syscalls are
// numbered here; a user op (src/user) enters one with its argument.

import { TIF_SIGPENDING } from "../machine/state.js";
import { P_CLOSE, P_DEV_OPEN } from "./devfile.js";
import { P_EXIT_TO_USER } from "./entry.js";
import { CLONE, P_CLONE } from "./fork.js";
import { arch_req_xcomp_perm, P_KERNEL_FPU, P_XSTATE_WRITE } from "./fpu.js";
import type { Kernel } from "./kernel.js";
import { defPath, frameLocals } from "./path.js";
import { P_EXECVE, P_EXIT } from "./process.js";
import { switch_to_kernel_cr3 } from "./pti.js";
import { P_SIGRETURN } from "./signal.js";
import { P_NANOSLEEP, P_SCHED_YIELD } from "./sleep.js";
import { MEMOP, MEMOP_MPROTECT, MEMOP_MUNMAP, P_MEMOP, P_SET_FIXMAP } from "./tlb_flush.js";

export const SYS_WORK = 0; // a generic syscall that spends a1 ns in the kernel
export const SYS_CLONE = 1;
export const SYS_EXECVE = 2;
export const SYS_EXIT = 3;
export const SYS_SCHED_YIELD = 4;
export const SYS_NANOSLEEP = 5;
export const SYS_OPEN = 6; // a1: device | OPEN_PRIVATE
export const SYS_CLOSE = 7; // a1: device (the model closes that device's newest fd)
export const SYS_MMAP = 8; // a1: pages (fresh mappings: nothing to flush)
export const SYS_MUNMAP = 9; // a1: pages of [0, pages); flags: how many times in this one syscall | mode << 20
/** The munmap/mprotect flags: the count in the low 20 bits, the mode (munmap's tables, mprotect's change) above. */
export const MEMOP_MODE_SHIFT = 20;
const MEMOP_COUNT_MASK = (1 << MEMOP_MODE_SHIFT) - 1;
export const SYS_MPROTECT = 10; // as munmap
export const SYS_KERNEL_FPU = 11; // a syscall whose body uses the FPU (kernel_fpu_begin/end)
export const SYS_XSTATE_WRITE = 12; // a1: mask of components to change in the caller's xstate
export const SYS_ARCH_PRCTL = 13; // ARCH_REQ_XCOMP_PERM for AMX TILEDATA
export const SYS_KILL_SELF = 14; // kill(getpid(), SIGUSR1): a signal with a handler
export const SYS_RT_SIGRETURN = 15; // the handler returns
export const SYS_SET_FIXMAP = 16; // a1: kernel fixmap pages a driver remaps on this CPU

/** do_syscall_64()'s locals: a0 = the syscall's number and flags; a1 = its argument. */
const SYSCALL = frameLocals({ nr: [0, 0, 8], flags: [0, 8, 24], arg: [1] });

/** do_syscall_64(): entered from user by SYSCALL. */
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
      const nr = SYSCALL.nr.get(k, fr);
      const arg = SYSCALL.arg.get(k, fr);
      switch (nr) {
        case SYS_WORK:
          k.charge(k.nsToCycles(arg));
          return;
        case SYS_CLONE:
          k.call(cpu, P_CLONE, CLONE.flags.put(SYSCALL.flags.get(k, fr)), CLONE.prog.put(arg));
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
          k.call(
            cpu,
            P_MEMOP,
            MEMOP.pages.put(arg),
            MEMOP.count.put(SYSCALL.flags.get(k, fr) & MEMOP_COUNT_MASK) |
              MEMOP.mode.put(SYSCALL.flags.get(k, fr) >>> MEMOP_MODE_SHIFT) |
              MEMOP.op.put(nr === SYS_MUNMAP ? MEMOP_MUNMAP : MEMOP_MPROTECT),
          );
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
          k.warn("syscall", `unknown syscall ${nr}`, cpu);
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

/** The SYSCALL instruction: from user mode into do_syscall_64. */
export function enter_syscall(k: Kernel, cpu: number, nr: number, arg: number, flags = 0): void {
  if (k.model.tlb.pti) switch_to_kernel_cr3(k, cpu); // entry_SYSCALL_64, before anything else
  k.set(k.C.in_user, cpu, 0);
  k.call(cpu, P_SYSCALL, SYSCALL.nr.put(nr) | SYSCALL.flags.put(flags), SYSCALL.arg.put(arg));
}
