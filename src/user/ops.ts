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
import { pte_populate } from "../kernel/tlbstate.js";
import { raise_gp, user_fpu_touch } from "../kernel/traps.js";
import { LOOP_DEPTH_MAX, TLB_PAGES } from "../machine/state.js";

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

/**
 * One op's user-mode step: `upc` is its index in the program, `arg` its
 * operand. It advances the task's upc (or not, to run again) and may enter
 * the kernel.
 */
export type UserStep = (
  k: Kernel,
  cpu: number,
  t: number,
  upc: number,
  arg: number,
  chunkNs: number,
  code: Int32Array,
) => void;

/** An op that is one syscall: upc moves past it, then the kernel runs `nr` with the op's operand. */
function syscallOp(nr: number, withArg = true, flags = 0): UserStep {
  return (k, cpu, t, upc, arg) => {
    k.set(k.T.upc, t, upc + 1);
    enter_syscall(k, cpu, nr, withArg ? arg : 0, flags);
  };
}

/** munmap/mprotect: the U_ARG pair after the op holds the count (the flushes happen in one syscall). */
function rangeOp(nr: number): UserStep {
  return (k, cpu, t, upc, arg, _chunkNs, code) => {
    k.set(k.T.upc, t, upc + 2);
    enter_syscall(k, cpu, nr, arg, code[upc * 2 + 3]);
  };
}

/** The `arg` pseudo-op: an operand of the op before it, never executed. */
const ARG_OPCODE = 20;

function unknownOp(k: Kernel, cpu: number, op: number): void {
  k.warn("user-program", `unknown opcode ${op}`, cpu);
  enter_syscall(k, cpu, SYS_EXIT, 127);
}

/** The loop counters' word for nesting level `sp` of task `t`. */
function loopAddr(k: Kernel, t: number, sp: number): number {
  return k.T.loops.base + t * k.T.loops.stride + k.T.loops.off + sp;
}

export interface UserOpDef {
  /** The opcode in program text (code[2 * upc]); fixed: programs are compiled against these numbers. */
  readonly opcode: number;
  /** What the operand (code[2 * upc + 1]) means. */
  readonly arg: string;
  readonly step: UserStep;
}

/**
 * Every op of program text, once: its name (the key, shown in traces), its
 * opcode and its user-mode step. OPCODE and OPCODE_NAMES (program.ts) and
 * user_step's dispatch are derived from this table.
 */
export const USER_OPS = {
  end: {
    opcode: 0,
    arg: "none: falls off the end, exit(0)",
    step: (k, cpu) => enter_syscall(k, cpu, SYS_EXIT, 0),
  },
  loop: {
    opcode: 1,
    arg: "iterations; pushes a loop counter",
    step: (k, cpu, t, upc, arg) => {
      const sp = k.get(k.T.lsp, t);
      if (sp >= LOOP_DEPTH_MAX) {
        k.warn("user-program", `loop nesting beyond ${LOOP_DEPTH_MAX}`, cpu);
        return;
      }
      k.mem.write(loopAddr(k, t, sp), arg);
      k.set(k.T.lsp, t, sp + 1);
      k.set(k.T.upc, t, upc + 1);
    },
  },
  endloop: {
    opcode: 2,
    arg: "pc of the loop body",
    step: (k, _cpu, t, upc, arg) => {
      const sp = k.get(k.T.lsp, t) - 1;
      const a = loopAddr(k, t, sp);
      const left = k.w[a] - 1;
      if (left > 0) {
        k.mem.write(a, left);
        k.set(k.T.upc, t, arg);
      } else {
        k.mem.write(a, 0);
        k.set(k.T.lsp, t, sp);
        k.set(k.T.upc, t, upc + 1);
      }
    },
  },
  compute: {
    opcode: 3,
    arg: "ns of user work",
    step: (k, _cpu, t, upc, arg, chunkNs) => {
      let rem = k.get(k.T.urem, t);
      if (rem === 0) rem = arg;
      const chunk = Math.min(rem, chunkNs);
      k.charge(k.userCycles(chunk));
      rem -= chunk;
      k.set(k.T.urem, t, rem);
      if (rem === 0) k.set(k.T.upc, t, upc + 1);
    },
  },
  syscall: { opcode: 4, arg: "ns in the kernel", step: syscallOp(SYS_WORK) },
  yield: { opcode: 5, arg: "none", step: syscallOp(SYS_SCHED_YIELD, false) },
  sleep: { opcode: 6, arg: "ns", step: syscallOp(SYS_NANOSLEEP) },
  fork: { opcode: 7, arg: "child program id", step: syscallOp(SYS_CLONE, true, CLONE_FORK) },
  clone_thread: { opcode: 8, arg: "child program id", step: syscallOp(SYS_CLONE, true, CLONE_PTHREAD) },
  clone_vm: { opcode: 9, arg: "child program id", step: syscallOp(SYS_CLONE, true, CLONE_VM_ONLY) },
  exec: { opcode: 10, arg: "program id", step: syscallOp(SYS_EXECVE) },
  exit: {
    opcode: 11,
    arg: "exit code",
    step: (k, cpu, _t, _upc, arg) => enter_syscall(k, cpu, SYS_EXIT, arg),
  },
  bind: { opcode: 12, arg: "device | OPEN_PRIVATE (open the device's file)", step: syscallOp(SYS_OPEN) },
  unbind: { opcode: 13, arg: "device (close its newest open file)", step: syscallOp(SYS_CLOSE) },
  enqcmd: {
    opcode: 14,
    arg: "device",
    step: (k, cpu, t, upc, arg) => {
      if (enqcmd_op(k, cpu, t, arg)) k.set(k.T.upc, t, upc + 1);
    },
  },
  wait: {
    opcode: 15,
    arg: "device (poll until this mm's descriptors completed)",
    step: (k, _cpu, t, upc, arg) => {
      // Poll the completion records (UMWAIT): done when none is outstanding.
      k.charge(k.costs.umwait_poll);
      if (wq_outstanding(k, arg, 0, k.get(k.T.mm, t)) === 0) k.set(k.T.upc, t, upc + 1);
    },
  },
  mmap: { opcode: 16, arg: "pages", step: syscallOp(SYS_MMAP) },
  munmap: { opcode: 17, arg: "pages; the next pair is `arg` with the count", step: rangeOp(SYS_MUNMAP) },
  mprotect: { opcode: 18, arg: "as munmap", step: rangeOp(SYS_MPROTECT) },
  touch: {
    opcode: 19,
    arg: "pages: a user access to each of pages 0 .. min(arg, TLB_PAGES)-1",
    step: (k, cpu, t, upc, arg) => {
      const mm = k.get(k.T.mm, t);
      const n = Math.min(arg, TLB_PAGES);
      for (let p = 0; p < n; p++) user_access(k, cpu, mm, p);
      pte_populate(k, mm, arg); // the first touch of a page faults its PTE in
      k.set(k.T.upc, t, upc + 1);
    },
  },
  arg: {
    opcode: ARG_OPCODE,
    arg: "an extra operand of the op before it (never executed)",
    step: (k, cpu) => unknownOp(k, cpu, ARG_OPCODE),
  },
  fpu: {
    opcode: 21,
    arg: "mask of XSTATE components user code writes",
    step: (k, cpu, t, upc, arg) => {
      if (user_fpu_touch(k, cpu, t, arg)) k.set(k.T.upc, t, upc + 1);
    },
  },
  xstate_write: {
    opcode: 22,
    arg: "mask of components a syscall changes in the caller's xstate",
    step: syscallOp(SYS_XSTATE_WRITE),
  },
  kernel_fpu: {
    opcode: 23,
    arg: "none: a syscall that uses the FPU in the kernel",
    step: syscallOp(SYS_KERNEL_FPU, false),
  },
  req_xcomp_perm: {
    opcode: 24,
    arg: "none: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILE_DATA)",
    step: syscallOp(SYS_ARCH_PRCTL, false),
  },
  gp_fault: {
    opcode: 25,
    arg: "none: an instruction that takes #GP whatever IA32_PASID holds (a privileged one)",
    step: (k, cpu) => raise_gp(k, cpu), // the upc stays: a replay after the fixup faults again
  },
  signal: {
    opcode: 26,
    arg: "none: kill(getpid(), sig); the handler's frame is set up on the way back",
    step: syscallOp(SYS_KILL_SELF, false),
  },
  sigreturn: {
    opcode: 27,
    arg: "none: the handler returns, rt_sigreturn",
    step: syscallOp(SYS_RT_SIGRETURN, false),
  },
  set_fixmap: {
    opcode: 28,
    arg: "pages: a syscall whose driver remaps that many kernel fixmap pages",
    step: syscallOp(SYS_SET_FIXMAP),
  },
} as const satisfies Record<string, UserOpDef>;

export type UserOpName = keyof typeof USER_OPS;

/** Steps indexed by opcode (dense: checked when the module loads); an opcode past the end has none. */
const STEPS: readonly UserStep[] = (() => {
  const steps: UserStep[] = [];
  for (const [name, def] of Object.entries(USER_OPS) as [string, UserOpDef][]) {
    if (steps[def.opcode] !== undefined) throw new Error(`user op ${name}: opcode ${def.opcode} taken twice`);
    steps[def.opcode] = def.step;
  }
  if (steps.length !== Object.keys(USER_OPS).length) throw new Error("user op opcodes are not dense");
  return steps;
})();

/** Execute the next op of the current task's program, in user mode. */
export function user_step(k: Kernel, cpu: number, chunkNs: number): void {
  const t = k.curr(cpu);
  const code = k.programs[k.get(k.T.prog, t)].code;
  const upc = k.get(k.T.upc, t);
  const op = code[upc * 2];
  k.metrics.user_ops++;
  const step = STEPS[op];
  if (step === undefined) unknownOp(k, cpu, op);
  else step(k, cpu, t, upc, code[upc * 2 + 1], chunkNs, code);
}
