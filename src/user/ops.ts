// User mode: the next op of the current task's program, as the CPU runs it.
// Most ops are a syscall (entry into the kernel with the op's arguments);
// compute, loops, ENQCMD, polling, touches and FPU use run in user mode.

import { wq_outstanding } from "../hw/device.js";
import { ENQCMD_GP, ENQCMD_RETRY, enqcmd } from "../hw/enqcmd.js";
import { user_access } from "../hw/tlb.js";
import { PASID_MASK, rdmsr_pasid } from "../hw/xsave.js";
import { fd_of_dev } from "../kernel/devfile.js";
import { CLONE_FILES, CLONE_FLAGS_SHIFT, CLONE_THREAD, CLONE_VM } from "../kernel/fork.js";
import { pasid_get } from "../kernel/iommu.js";
import type { Kernel } from "../kernel/kernel.js";
import { P_EXIT } from "../kernel/process.js";
import {
  enter_syscall,
  SYS_ARCH_PRCTL,
  SYS_CLONE,
  SYS_CLOSE,
  SYS_EXECVE,
  SYS_EXIT,
  SYS_KERNEL_FPU,
  SYS_KILL_SELF,
  SYS_MMAP,
  SYS_MPROTECT,
  SYS_MUNMAP,
  SYS_NANOSLEEP,
  SYS_OPEN,
  SYS_RT_SIGRETURN,
  SYS_SCHED_YIELD,
  SYS_SET_FIXMAP,
  SYS_WORK,
  SYS_XSTATE_WRITE,
} from "../kernel/syscall.js";
import { raise_gp, user_fpu_touch } from "../kernel/traps.js";
import { LOOP_DEPTH_MAX, TLB_PAGES } from "../machine/state.js";
import {
  U_BIND,
  U_CLONE_THREAD,
  U_CLONE_VM,
  U_COMPUTE,
  U_END,
  U_ENDLOOP,
  U_ENQCMD,
  U_EXEC,
  U_EXIT,
  U_FORK,
  U_FPU,
  U_GP,
  U_KERNEL_FPU,
  U_LOOP,
  U_MMAP,
  U_MPROTECT,
  U_MUNMAP,
  U_SET_FIXMAP,
  U_SIGNAL,
  U_SIGRETURN,
  U_SLEEP,
  U_SYSCALL,
  U_TOUCH,
  U_UNBIND,
  U_WAIT,
  U_XCOMP_PERM,
  U_XSTATE_WRITE,
  U_YIELD,
} from "./program.js";

/**
 * ENQCMD to device `d`'s portal (hw/enqcmd.ts). No portal (no open file on
 * the device) is a fault on the portal page: SIGSEGV. #GP enters the kernel's
 * handler, whose fixup may write the MSR; the instruction is then executed
 * again. Returns true when the op is done (accepted, or the task is leaving
 * user mode), false for ZF=1 or #GP (the op runs again).
 */
function enqcmd_op(k: Kernel, cpu: number, t: number, d: number): boolean {
  k.charge(k.costs.enqcmd);
  const mm = k.get(k.T.mm, t);
  if (fd_of_dev(k, k.get(k.T.files, t), d) < 0) {
    k.metrics.sigsegv++;
    if (k.trace !== null) k.trace.instant(cpu, "SIGSEGV: no portal", { task: t });
    k.set(k.C.in_user, cpu, 0);
    k.call(cpu, P_EXIT, 128 + 11);
    return true;
  }
  const r = enqcmd(k, cpu, d, mm, t);
  if (r === ENQCMD_GP) {
    raise_gp(k, cpu); // the upc stays: after a fixup the ENQCMD runs again
    return false;
  }
  const pasid = rdmsr_pasid(k, cpu) & PASID_MASK;
  if (pasid !== k.get(k.M.pasid, mm)) {
    k.warn(
      "enqcmd-pasid",
      `task ${t}'s descriptor carries PASID ${pasid}, its mm's is ${k.get(k.M.pasid, mm)}`,
      cpu,
    );
  }
  if (r === ENQCMD_RETRY) {
    k.metrics.enqcmd_retries++; // ZF=1: the queue is full; the program tries again
    return false;
  }
  k.metrics.enqcmd_submitted++;
  if (k.get(k.T.pasid_ref, t) === 0 && k.model.lifetime === "task-refcount") {
    k.set(k.T.pasid_ref, t, 1);
    pasid_get(k, mm);
  }
  return true;
}

const CLONE_FORK = 0;
const CLONE_PTHREAD = (CLONE_VM | CLONE_FILES | CLONE_THREAD) >>> CLONE_FLAGS_SHIFT;
const CLONE_VM_ONLY = CLONE_VM >>> CLONE_FLAGS_SHIFT;

/** Execute the next op of the current task's program, in user mode. */
export function user_step(k: Kernel, cpu: number, chunkNs: number): void {
  const T = k.T;
  const t = k.curr(cpu);
  const code = k.programs[k.get(T.prog, t)].code;
  const upc = k.get(T.upc, t);
  const op = code[upc * 2];
  const arg = code[upc * 2 + 1];
  k.metrics.user_ops++;
  switch (op) {
    case U_LOOP: {
      const sp = k.get(T.lsp, t);
      if (sp >= LOOP_DEPTH_MAX) {
        k.warn("user-program", `loop nesting beyond ${LOOP_DEPTH_MAX}`, cpu);
        break;
      }
      k.mem.write(T.loops.base + t * T.loops.stride + T.loops.off + sp, arg);
      k.set(T.lsp, t, sp + 1);
      k.set(T.upc, t, upc + 1);
      break;
    }
    case U_ENDLOOP: {
      const sp = k.get(T.lsp, t) - 1;
      const a = T.loops.base + t * T.loops.stride + T.loops.off + sp;
      const left = k.w[a] - 1;
      if (left > 0) {
        k.mem.write(a, left);
        k.set(T.upc, t, arg);
      } else {
        k.mem.write(a, 0);
        k.set(T.lsp, t, sp);
        k.set(T.upc, t, upc + 1);
      }
      break;
    }
    case U_COMPUTE: {
      let rem = k.get(T.urem, t);
      if (rem === 0) rem = arg;
      const chunk = Math.min(rem, chunkNs);
      k.charge(k.userCycles(chunk));
      rem -= chunk;
      k.set(T.urem, t, rem);
      if (rem === 0) k.set(T.upc, t, upc + 1);
      break;
    }
    case U_SYSCALL:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_WORK, arg);
      break;
    case U_YIELD:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_SCHED_YIELD, 0);
      break;
    case U_SLEEP:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_NANOSLEEP, arg);
      break;
    case U_FORK:
    case U_CLONE_THREAD:
    case U_CLONE_VM: {
      const flags = op === U_FORK ? CLONE_FORK : op === U_CLONE_THREAD ? CLONE_PTHREAD : CLONE_VM_ONLY;
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_CLONE, arg, flags);
      break;
    }
    case U_EXEC:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_EXECVE, arg);
      break;
    case U_BIND:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_OPEN, arg);
      break;
    case U_UNBIND:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_CLOSE, arg);
      break;
    case U_ENQCMD:
      if (enqcmd_op(k, cpu, t, arg)) k.set(T.upc, t, upc + 1);
      break;
    case U_WAIT:
      // Poll the completion records (UMWAIT): done when none is outstanding.
      k.charge(k.costs.umwait_poll);
      if (wq_outstanding(k, arg, 0, k.get(T.mm, t)) === 0) k.set(T.upc, t, upc + 1);
      break;
    case U_MMAP:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_MMAP, arg);
      break;
    case U_MUNMAP:
    case U_MPROTECT:
      k.set(T.upc, t, upc + 2); // the U_ARG pair after it holds the count
      enter_syscall(k, cpu, op === U_MUNMAP ? SYS_MUNMAP : SYS_MPROTECT, arg, code[upc * 2 + 3]);
      break;
    case U_SET_FIXMAP:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_SET_FIXMAP, arg);
      break;
    case U_TOUCH: {
      const mm = k.get(T.mm, t);
      const n = Math.min(arg, TLB_PAGES);
      for (let p = 0; p < n; p++) user_access(k, cpu, mm, p);
      k.set(T.upc, t, upc + 1);
      break;
    }
    case U_FPU:
      if (user_fpu_touch(k, cpu, t, arg)) k.set(T.upc, t, upc + 1);
      break;
    case U_XSTATE_WRITE:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_XSTATE_WRITE, arg);
      break;
    case U_KERNEL_FPU:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_KERNEL_FPU, 0);
      break;
    case U_SIGNAL:
    case U_SIGRETURN:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, op === U_SIGNAL ? SYS_KILL_SELF : SYS_RT_SIGRETURN, 0);
      break;
    case U_GP:
      raise_gp(k, cpu); // the upc stays: a replay after the fixup faults again
      break;
    case U_XCOMP_PERM:
      k.set(T.upc, t, upc + 1);
      enter_syscall(k, cpu, SYS_ARCH_PRCTL, 0);
      break;
    case U_EXIT:
    case U_END:
      enter_syscall(k, cpu, SYS_EXIT, op === U_EXIT ? arg : 0);
      break;
    default:
      k.warn("user-program", `unknown opcode ${op}`, cpu);
      enter_syscall(k, cpu, SYS_EXIT, 127);
  }
}
