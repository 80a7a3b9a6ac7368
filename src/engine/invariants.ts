// Named properties, checked by the engine: `step` ones after every CPU step
// (only what that step could have broken, so they stay O(1)), `end` ones once
// the machine is quiescent. Checkers observe; they never change the state.
// The model's own WARN_ONs report under the same names (kernel.warn).

import { rdmsr_pasid } from "../hw/xsave.js";
import { fpregs_state_valid } from "../kernel/fpregs.js";
import { ida_count } from "../kernel/ida.js";
import type { Kernel } from "../kernel/kernel.js";
import { MM_FREE, PF_IDLE, TASK_FREE, TIF_NEED_FPU_LOAD } from "../machine/state.js";

export interface Invariant {
  readonly name: string;
  readonly description: string;
  /** After a step of `cpu`: a message when broken, else null. */
  readonly step?: (k: Kernel, cpu: number) => string | null;
  /** At the end of a run: a message when broken, else null. */
  readonly end?: (k: Kernel) => string | null;
}

const mmUseAfterFree: Invariant = {
  name: "mm-use-after-free",
  description: "a running task's mm and active_mm are allocated mm_structs",
  step(k, cpu) {
    const w = k.w;
    const t = k.curr(cpu);
    const mm = k.get(k.T.mm, t);
    const active = k.get(k.T.active_mm, t);
    const S = k.M.state;
    if (mm !== 0 && w[S.at + mm * S.stride] === MM_FREE) return `task ${t} runs on freed mm ${mm}`;
    if (active !== 0 && w[S.at + active * S.stride] === MM_FREE)
      return `task ${t} borrows freed mm ${active}`;
    return null;
  },
};

const userModeClean: Invariant = {
  name: "sched-atomic",
  description: "user mode runs with preemption enabled, interrupts on and no kernel frames",
  step(k, cpu) {
    if (k.get(k.C.in_user, cpu) === 0) return null;
    if (k.get(k.C.preempt_count, cpu) !== 0)
      return `user mode with preempt_count ${k.get(k.C.preempt_count, cpu)}`;
    if (k.get(k.C.irqs_off, cpu) !== 0) return "user mode with interrupts off";
    if (k.get(k.C.irq_depth, cpu) !== 0) return "user mode inside an interrupt";
    return null;
  },
};

const pasidMsr: Invariant = {
  name: "pasid-msr",
  description: "a task in user mode has IA32_PASID invalid, or equal to its mm's PASID | valid",
  step(k, cpu) {
    if (k.get(k.C.in_user, cpu) === 0) return null;
    const msr = rdmsr_pasid(k, cpu);
    if ((msr & (1 << 31)) === 0) return null;
    const t = k.curr(cpu);
    const want = k.get(k.M.pasid, k.get(k.T.mm, t)) | (1 << 31);
    return msr === want
      ? null
      : `task ${t} in user mode with IA32_PASID ${(msr >>> 0).toString(16)}, its mm's is ${(want >>> 0).toString(16)}`;
  },
};

const fpuRegsLive: Invariant = {
  name: "fpu-owner",
  description:
    "a task in user mode owns its CPU's live FPU registers: TIF_NEED_FPU_LOAD clear, fpu_fpregs_owner_ctx and fpu->last_cpu naming each other",
  step(k, cpu) {
    if (k.get(k.C.in_user, cpu) === 0) return null;
    const t = k.curr(cpu);
    if ((k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) !== 0)
      return `task ${t} in user mode with TIF_NEED_FPU_LOAD set`;
    if (!fpregs_state_valid(k, cpu, t)) {
      return `task ${t} in user mode but cpu ${cpu}'s registers belong to task ${k.get(k.C.fpregs_owner, cpu)} (its last_cpu is ${k.get(k.T.fpu_last_cpu, t)})`;
    }
    return null;
  },
};

const noLeak: Invariant = {
  name: "no-leak",
  description:
    "once every process has exited: no task, files_struct or mm is left, but for mms that idle CPUs still borrow (lazy TLB), each held by exactly those references",
  end(k) {
    if (k.get(k.G.nr_user_tasks, 0) !== 0) return `${k.get(k.G.nr_user_tasks, 0)} tasks never exited`;
    for (let t = 1; t < k.L.task.count; t++) {
      const idle = (k.get(k.T.flags, t) & PF_IDLE) !== 0;
      if (!idle && k.get(k.T.state, t) !== TASK_FREE) return `task slot ${t} not freed`;
    }
    if (k.get(k.G.nr_files, 0) !== 0) return `${k.get(k.G.nr_files, 0)} files_structs not freed`;
    for (let mm = 1; mm < k.L.mm.count; mm++) {
      if (k.get(k.M.state, mm) === MM_FREE) continue;
      let refs = 0;
      for (let cpu = 0; cpu < k.params.cpus; cpu++) {
        if (k.get(k.T.active_mm, k.get(k.C.idle, cpu)) === mm) refs++;
        if (k.get(k.C.prev_mm, cpu) === mm) refs++;
      }
      if (k.get(k.M.users, mm) !== 0)
        return `mm ${mm} has mm_users ${k.get(k.M.users, mm)} after every task exited`;
      if (refs === 0) return `mm ${mm} leaked: mm_count ${k.get(k.M.count, mm)} and no holder`;
      if (k.get(k.M.count, mm) !== refs)
        return `mm ${mm}: mm_count ${k.get(k.M.count, mm)} but ${refs} lazy holders`;
    }
    return null;
  },
};

const pasidLeak: Invariant = {
  name: "pasid-leak",
  description:
    "once every process has exited: no bond or device file is left, and the PASIDs still allocated are exactly the kernel's and those of mms idle CPUs still borrow",
  end(k) {
    if (k.model.devices.length === 0) return null;
    if (k.get(k.G.nr_bonds, 0) !== 0) return `${k.get(k.G.nr_bonds, 0)} SVA bonds left`;
    if (k.get(k.G.nr_open_files, 0) !== 0) return `${k.get(k.G.nr_open_files, 0)} device files left open`;
    let expected = 0;
    for (let d = 0; d < k.model.devices.length; d++) if (k.get(k.D.kernel_pasid, d) !== 0) expected++;
    for (let mm = 1; mm < k.L.mm.count; mm++) {
      if (k.get(k.M.state, mm) !== MM_FREE && k.get(k.M.pasid, mm) !== 0) expected++;
    }
    const live = ida_count(k.mem, k.ida);
    return live === expected ? null : `${live} PASIDs allocated, ${expected} accounted for`;
  },
};

/** Properties that only the model's WARN_ONs report (no separate checker). */
const warnOnly: Invariant[] = [
  {
    name: "mm-refcount",
    description: "mm_users and mm_count never go negative; __mmdrop only with no users",
  },
  { name: "mm-freed-once", description: "every mm_struct is freed exactly once" },
  { name: "files-refcount", description: "files_struct counts never go negative" },
  { name: "task-leak", description: "a dead task holds no mm, active_mm or files when its slot is freed" },
  { name: "runqueue", description: "a task is queued on at most one run queue, once" },
  {
    name: "kernel-stack",
    description: "kernel and interrupt stacks stay within their depth; user mode has no frames",
  },
  { name: "exit", description: "a task exits once and never runs after do_task_dead()" },
  { name: "mm-leak", description: "an mm slot is there for every fork and exec (the layout is big enough)" },
  { name: "files-leak", description: "a files_struct slot is there for every fork" },
  { name: "sched-idle", description: "only the idle task runs the idle loop" },
  { name: "syscall", description: "only the model's syscalls are made" },
  { name: "user-program", description: "user programs stay within their loop depth and opcodes" },
  { name: "timer", description: "a timer fires only for a task that armed it" },
  {
    name: "pasid-reuse",
    description:
      "no PASID is handed out or freed while a device holds an accepted descriptor, a PASID-table entry or a cached translation for it",
  },
  { name: "pasid-freed-once", description: "every allocated PASID is freed exactly once" },
  { name: "pasid-refcount", description: "PASID references and bond counts never go negative" },
  {
    name: "dma-address-space",
    description: "every DMA lands in the address space of the task that submitted it",
  },
  {
    name: "pasid-lost",
    description:
      "a task whose mm has a PASID is never left with IA32_PASID invalid after it activated (no lost XSTATE update: the fixup would never run again)",
  },
  { name: "sva-lock", description: "iommu_sva_lock is taken once and released by its holder" },
  {
    name: "fpu-lost-update",
    description:
      "registers and memory image are never both modified: no XSAVES or XRSTORS overwrites a component the kernel wrote, no register write while the image is authoritative",
  },
  { name: "fpu-state", description: "a task's XSTATE_BV is within its buffer's XCOMP_BV (else XRSTORS #GP)" },
  {
    name: "xstate-copy",
    description:
      "a component written into a task's xstate exists in its buffer, with its size and XSTATE_BV bit",
  },
  {
    name: "enqcmd-pasid",
    description: "every ENQCMD descriptor carries the PASID of the submitting task's mm",
  },
  {
    name: "tlb-stale",
    description:
      "no user-mode access uses a TLB entry of another address space, or one older than its mm's last completed flush of that page",
  },
  {
    name: "cr3",
    description:
      "CR3 names the task's mm and the loaded ASID's PCID in user mode; no PCID or NOFLUSH bits without CR4.PCIDE",
  },
  {
    name: "nmi-cr3",
    description: "an NMI returns to the CR3 it interrupted: the same page table, PCID and user half",
  },
  { name: "asid-slot", description: "the loaded ASID slot's ctx_id is the loaded mm's" },
  { name: "user-mask", description: "user_pcid_flush_mask names only kernel PCIDs of slots that exist" },
];

export const CORE_INVARIANTS: readonly Invariant[] = [
  mmUseAfterFree,
  userModeClean,
  pasidMsr,
  fpuRegsLive,
  noLeak,
  pasidLeak,
  ...warnOnly,
];
