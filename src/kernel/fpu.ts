// The FPU/XSTATE machinery (arch/x86/kernel/fpu) and the IA32_PASID MSR as
// supervisor component 10 of it (arch/x86/kernel/traps.c).
//
// Per CPU: the live registers (one word per component; 0 is the init state),
// the components modified since the last XRSTORS and whose buffer that was
// (the hardware's modified optimisation), fpu_fpregs_owner_ctx, and the
// fpregs_lock() depth. Per task: the XSAVES image (header XSTATE_BV and
// XCOMP_BV, one word per component), fpu->last_cpu, TIF_NEED_FPU_LOAD,
// fpu->perm and pasid_activated. A component's bytes are its CPUID size;
// the model keeps one word of value per component (docs/model-vs-kernel.md).
//
// Context switch XSAVES the outgoing task's live registers (init and
// modified optimisations) and marks the incoming one; the way out to user
// XRSTORS unless the registers are still valid. ENQCMD with the MSR's valid
// bit clear takes #GP; policy `pasid_msr` says how the MSR gets its value:
// the mainline #GP fixup, or one of the eager schemes of seed 000.

import {
  lineCost,
  MSR_IA32_PASID_VALID,
  PASID_MASK,
  rdmsr_pasid,
  write_xreg,
  xregAddr,
  xrstors,
  xs_pasid,
  xs_value,
  xsAddr,
  xsaves,
} from "../hw/xsave.js";
import {
  XFEATURE_MASK_PASID,
  XFEATURE_MASK_XTILE_DATA,
  XFEATURE_PASID,
  XSAVE_HDR_SIZE,
  xfeatureName,
} from "../hw/xstate.js";
import { PC_IPIS } from "../machine/metrics.js";
import { IRQ_PASID, PF_KTHREAD, TASK_DEAD, TASK_FREE, XFEATURE_MAX } from "../machine/state.js";
import { P_EXIT_TO_USER } from "./entry.js";
import { pasidChange } from "./iommu.js";
import type { Kernel } from "./kernel.js";
import { defPath, type KPath } from "./path.js";
import { P_EXIT } from "./process.js";
import { switch_to_kernel_cr3 } from "./pti.js";
import { P_SCHED_YIELD } from "./sleep.js";

/** Task flag: the FPU registers must be restored from the task's image before user code runs. */
export const TIF_NEED_FPU_LOAD = 1 << 5;
/** Task flag: a PASID update is pending (task_work, or an IPI's update deferred out of an fpregs_lock() section). */
export const TIF_PASID_SYNC = 1 << 6;
const SIGILL = 4;
const SIGSEGV = 11;
const EINVAL = 22;

export const VARIANT_GP_IRQS_ON = "gp-fixup-irqs-on";
export const VARIANT_IPI_IN_BH = "ipi-in-bh";

export type PasidMsrPolicy = "gp-fixup" | "ipi" | "task-work" | "ctxsw-resync";
export type XstateHelper = "lock-and-load" | "update" | "replace";

function userTask(k: Kernel, t: number): boolean {
  return (k.get(k.T.flags, t) & PF_KTHREAD) === 0;
}

/** fpregs_state_valid(): this CPU's registers still hold exactly `t`'s image. */
export function fpregs_state_valid(k: Kernel, cpu: number, t: number): boolean {
  return k.get(k.C.fpregs_owner, cpu) === t && k.get(k.T.fpu_last_cpu, t) === cpu;
}

/** `t` (current on `cpu`) runs on its live registers: in user mode, or in the kernel with TIF_NEED_FPU_LOAD clear. */
function regs_live(k: Kernel, cpu: number, t: number): boolean {
  return k.get(k.C.in_user, cpu) !== 0 || (k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) === 0;
}

/** Write one component of `t`'s memory image and invalidate its registers (__fpu_invalidate_fpregs_state). */
function write_xs(k: Kernel, t: number, i: number, v: number): void {
  const bit = 1 << i;
  k.mem.write(xsAddr(k, t, i), v);
  const bv = k.get(k.T.xfeatures, t);
  k.set(k.T.xfeatures, t, v === 0 ? bv & ~bit : bv | bit);
  k.set(k.T.xs_newer, t, k.get(k.T.xs_newer, t) | bit);
  k.set(k.T.fpu_last_cpu, t, -1);
}

/** save_fpregs_to_fpstate() of the current task, if its registers are live. */
function save_if_live(k: Kernel, cpu: number, t: number): void {
  if (!userTask(k, t) || (k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) !== 0) return;
  xsaves(k, cpu, t);
  k.set(k.T.fpu_last_cpu, t, cpu);
  k.set(k.C.fpregs_owner, cpu, t);
}

/** fpregs_restore_userregs(): load `t`'s registers unless they are still valid here. */
function fpregs_restore_userregs(k: Kernel, cpu: number, t: number): void {
  if (!fpregs_state_valid(k, cpu, t)) {
    xrstors(k, cpu, t);
  } else if (k.get(k.T.xs_newer, t) !== 0) {
    k.warn(
      "fpu-lost-update",
      `task ${t}: registers still valid, so the kernel's write to its image (${xfeatureName(31 - Math.clz32(k.get(k.T.xs_newer, t)))}) is never loaded`,
      cpu,
    );
    k.set(k.T.xs_newer, t, 0);
  }
  fpregs_mark_activate(k, cpu, t);
}

/** fpregs_mark_activate(): this CPU's registers are `t`'s and current. */
function fpregs_mark_activate(k: Kernel, cpu: number, t: number): void {
  k.set(k.C.fpregs_owner, cpu, t);
  k.set(k.T.fpu_last_cpu, t, cpu);
  k.set(k.T.tif, t, k.get(k.T.tif, t) & ~TIF_NEED_FPU_LOAD);
}

// --- context switch and the way out to user --------------------------------------------------

/** switch_fpu_prepare/finish: a0 = prev, a1 = next. */
export const P_SWITCH_FPU = defPath("switch_fpu", [
  [
    "save_fpregs_to_fpstate",
    (k, cpu, fr) => {
      const prev = k.arg0(fr);
      const next = k.arg1(fr);
      save_if_live(k, cpu, prev);
      if (!userTask(k, next)) return;
      k.set(k.T.tif, next, k.get(k.T.tif, next) | TIF_NEED_FPU_LOAD);
      const policy = k.model.pasidMsr;
      if (policy === "ipi" || policy === "ctxsw-resync") {
        // 5.10's update_pasid() in switch_to(), or the resync of seed 000's
        // "perfect": next's PASID state follows its mm's on every switch.
        k.charge(k.costs.pasid_resync);
        pasid_sync(k, cpu, next);
      }
    },
  ],
]);

/** The FPU part of exit_to_user_mode_prepare(): restore the registers if they are not live. */
export const P_FPU_RESTORE = defPath("switch_fpu_return", [
  [
    "fpregs_restore_userregs",
    (k, cpu) => {
      const t = k.curr(cpu);
      if ((k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) !== 0) fpregs_restore_userregs(k, cpu, t);
    },
  ],
]);

/**
 * task_work_run() of the PASID update (policies `task-work`, `ctxsw-resync`,
 * and `ipi`'s updates deferred out of an fpregs_lock() section), on the way
 * out to user before the registers are restored.
 */
export const P_PASID_TASK_WORK = defPath("pasid_task_work", [
  [
    "task_work_run",
    (k, cpu) => {
      const t = k.curr(cpu);
      const tif = k.get(k.T.tif, t);
      if ((tif & TIF_PASID_SYNC) === 0) return;
      k.set(k.T.tif, t, tif & ~TIF_PASID_SYNC);
      k.metrics.task_works++;
      k.charge(k.costs.task_work);
      pasid_sync(k, cpu, t);
    },
  ],
]);

// --- clone, exec ----------------------------------------------------------------------------

/**
 * fpu_clone(): a0 = child. The child gets a default-sized buffer holding the
 * parent's current state (its live registers, saved straight into the
 * child's buffer: dynamic components are caller-saved and stay behind), its
 * permissions, and never the PASID (it takes its own #GP). Under the eager
 * policies a CLONE_VM child gets its mm's PASID state instead.
 */
export const P_FPU_CLONE = defPath("fpu_clone", [
  [
    "fpu_clone",
    (k, cpu, fr) => {
      const child = k.arg0(fr);
      const parent = k.curr(cpu);
      const L = k.model.xstate;
      k.set(k.T.pasid_activated, child, 0); // dup_task_struct()
      k.set(k.T.fpu_last_cpu, child, -1);
      k.set(k.T.tif, child, k.get(k.T.tif, child) | TIF_NEED_FPU_LOAD);
      k.set(k.T.xcomp_bv, child, L.defaultXcomp);
      k.set(k.T.fpu_perm, child, userTask(k, parent) ? k.get(k.T.fpu_perm, parent) : 0);
      k.set(k.T.xs_newer, child, 0);
      for (let i = 0; i < XFEATURE_MAX; i++)
        if (k.w[xsAddr(k, child, i)] !== 0) k.mem.write(xsAddr(k, child, i), 0);
      const live = userTask(k, parent) && (k.get(k.T.tif, parent) & TIF_NEED_FPU_LOAD) === 0;
      let bv = 0;
      let bytes = XSAVE_HDR_SIZE;
      for (let m = L.defaultXcomp & ~XFEATURE_MASK_PASID; m !== 0; m &= m - 1) {
        const bit = m & -m;
        const i = 31 - Math.clz32(bit);
        const v = !userTask(k, parent) ? 0 : live ? k.w[xregAddr(k, cpu, i)] : xs_value(k, parent, i);
        k.mem.write(xsAddr(k, child, i), v);
        if (v !== 0) {
          bv |= bit;
          bytes += L.sizes[i];
        }
      }
      k.set(k.T.xfeatures, child, bv); // "Children never inherit PASID state."
      k.metrics.xsaves_bytes += bytes;
      k.charge(k.costs.xsaves + lineCost(k, bytes));
      if (k.model.pasidMsr !== "gp-fixup" && (L.features & XFEATURE_MASK_PASID) !== 0) {
        const pasid = k.get(k.M.pasid, k.get(k.T.mm, child));
        if (pasid !== 0) {
          k.mem.write(xsAddr(k, child, XFEATURE_PASID), pasid | MSR_IA32_PASID_VALID);
          k.set(k.T.xfeatures, child, bv | XFEATURE_MASK_PASID);
          k.set(k.T.pasid_activated, child, 1);
        }
      }
    },
  ],
]);

/**
 * fpu_flush_thread() at exec: the dynamic buffer is freed and the image reset
 * to init (the PASID component included), to be loaded before user code
 * runs. pasid_activated is not touched: dup_task_struct() is the only place
 * that clears it (docs/findings.md).
 */
export const P_FPU_FLUSH_THREAD = defPath("fpu_flush_thread", [
  [
    "fpstate_reset",
    (k, cpu) => {
      const t = k.curr(cpu);
      for (let i = 0; i < XFEATURE_MAX; i++) if (k.w[xsAddr(k, t, i)] !== 0) k.mem.write(xsAddr(k, t, i), 0);
      k.set(k.T.xfeatures, t, 0);
      k.set(k.T.xcomp_bv, t, k.model.xstate.defaultXcomp);
      k.set(k.T.xs_newer, t, 0);
      k.set(k.T.fpu_last_cpu, t, -1);
      k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_NEED_FPU_LOAD);
    },
  ],
]);

/** A new task's FPU state at boot (the scenario's initial processes). */
export function fpu_init_task(k: Kernel, t: number): void {
  k.set(k.T.xcomp_bv, t, k.model.xstate.defaultXcomp);
  k.set(k.T.fpu_perm, t, k.model.xcompPermAtBoot);
  k.set(k.T.fpu_last_cpu, t, -1);
  k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_NEED_FPU_LOAD);
}

// --- user code touching its registers; XFD and AMX permission -----------------------------

/** A fresh, nonzero value for a component `t` writes (its pid and a counter). */
function next_user_value(k: Kernel, t: number): number {
  const gen = (k.get(k.T.fpu_gen, t) + 1) & 0xffff;
  k.set(k.T.fpu_gen, t, gen);
  return ((k.get(k.T.pid, t) & 0x7fff) << 16) | gen | 1;
}

/**
 * User code writes the components in `mask` (an `fpu` op). A dynamic
 * component its buffer lacks is armed in XFD: #NM, whose handler expands the
 * buffer if the process has permission (handle_xfd_event) and SIGILL
 * otherwise. Returns false when the op must run again (after the #NM).
 */
export function user_fpu_touch(k: Kernel, cpu: number, t: number, mask: number): boolean {
  if ((mask & XFEATURE_MASK_XTILE_DATA) !== 0 && (k.get(k.T.xcomp_bv, t) & XFEATURE_MASK_XTILE_DATA) === 0) {
    k.metrics.xfd_faults++;
    k.set(k.C.in_user, cpu, 0);
    k.set(k.C.irqs_off, cpu, 1);
    if (k.model.tlb.pti) switch_to_kernel_cr3(k, cpu);
    k.call(cpu, P_EXC_NM);
    return false;
  }
  const v = next_user_value(k, t);
  for (let m = mask; m !== 0; m &= m - 1) {
    const bit = m & -m;
    write_xreg(k, cpu, 31 - Math.clz32(bit), v);
  }
  return true;
}

/** exc_device_not_available() for an XFD-armed component: handle_xfd_event(). */
export const P_EXC_NM = defPath("exc_device_not_available", [
  [
    "handle_xfd_event",
    (k, cpu, fr) => {
      const t = k.curr(cpu);
      k.set(k.C.irqs_off, cpu, 0);
      if ((k.get(k.T.fpu_perm, t) & XFEATURE_MASK_XTILE_DATA) === 0) {
        if (k.trace !== null) k.trace.instant(cpu, "XFD #NM without permission: SIGILL", { task: t });
        k.jump(fr, P_EXC_NM.pc.force_sig_sigill);
      }
    },
  ],
  [
    "fpstate_realloc",
    (k, cpu) => {
      // xfd_enable_feature(): a bigger buffer (vzalloc), the state copied over, XFD disarmed.
      const t = k.curr(cpu);
      save_if_live(k, cpu, t);
      const xcomp = k.get(k.T.xcomp_bv, t) | XFEATURE_MASK_XTILE_DATA;
      k.set(k.T.xcomp_bv, t, xcomp);
      k.set(k.T.fpu_last_cpu, t, -1);
      k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_NEED_FPU_LOAD);
      k.charge(k.costs.fpstate_realloc + lineCost(k, k.model.xstate.sizes[18]));
    },
  ],
  [
    "irqentry_exit_to_user",
    (k, cpu) => {
      k.ret(cpu);
      k.call(cpu, P_EXIT_TO_USER);
    },
  ],
  [
    "force_sig_sigill",
    (k, cpu) => {
      k.metrics.sigill++;
      k.ret(cpu);
      k.call(cpu, P_EXIT, 128 + SIGILL);
    },
  ],
]);

/** arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILE_DATA): for the whole thread group. */
export function arch_req_xcomp_perm(k: Kernel, cpu: number): number {
  const t = k.curr(cpu);
  if ((k.model.xstate.features & XFEATURE_MASK_XTILE_DATA) === 0) {
    if (k.trace !== null) k.trace.instant(cpu, "ARCH_REQ_XCOMP_PERM: -EINVAL", { task: t });
    return -EINVAL;
  }
  const tgid = k.get(k.T.tgid, t);
  for (let u = 1; u < k.L.task.count; u++) {
    const st = k.get(k.T.state, u);
    if (st === TASK_FREE || st === TASK_DEAD || k.get(k.T.tgid, u) !== tgid) continue;
    k.set(k.T.fpu_perm, u, k.get(k.T.fpu_perm, u) | XFEATURE_MASK_XTILE_DATA);
  }
  return 0;
}

// --- changing one component of a task's xstate (seed 004) ----------------------------------

/**
 * Set component `i` of `t` (the current task of `cpu`) to `v`, hiding
 * whether the live registers, the memory image or the init state holds it.
 * Policy `xstate_helper` picks how:
 * - `lock-and-load` (fpregs_lock_and_load(), mainline since the CET work):
 *   if the registers are not live, restore them all now, then write the
 *   register;
 * - `update` (read-modify-write): the current value is materialised first
 *   (read from the registers or the image, or the init value filled in),
 *   then written back changed;
 * - `replace`: a whole new value, nothing read.
 * With `xstate_check`, the value goes through a kmalloc'ed copy whose size
 * and XSTATE_BV bit are checked before it goes into the task.
 */
export function xstate_write(k: Kernel, cpu: number, t: number, i: number, v: number): void {
  const L = k.model.xstate;
  const bit = 1 << i;
  const size = L.sizes[i];
  const helper = k.model.xstateHelper;
  if ((L.features & bit) === 0 || (k.get(k.T.xcomp_bv, t) & bit) === 0) {
    k.warn(
      "xstate-copy",
      `${xfeatureName(i)} is not in task ${t}'s buffer (xcomp_bv ${k.get(k.T.xcomp_bv, t).toString(16)}): get_xsave_addr() returns NULL`,
      cpu,
    );
    return;
  }
  if (k.model.xstateCheck && helper !== "lock-and-load") {
    // The debug copy: kmalloc, fill, check size and XSTATE_BV bit, copy in, kfree.
    k.charge(k.costs.kmalloc + k.costs.kfree + lineCost(k, size));
    k.metrics.xstate_helper_bytes += size;
  }
  const live = regs_live(k, cpu, t);
  k.set(k.C.fpregs_locked, cpu, k.get(k.C.fpregs_locked, cpu) + 1);
  k.metrics.xstate_helper_bytes += size; // the new value itself
  if (helper === "lock-and-load") {
    if (!live) fpregs_restore_userregs(k, cpu, t);
    write_xreg(k, cpu, i, v);
    k.charge(i === XFEATURE_PASID ? k.costs.wrmsr : lineCost(k, size));
  } else {
    if (helper === "update") {
      // Materialise the current value: from the registers, the image, or the init value.
      k.metrics.xstate_helper_bytes += size;
      k.charge(live && i === XFEATURE_PASID ? k.costs.rdmsr : lineCost(k, size));
    }
    if (live) {
      write_xreg(k, cpu, i, v);
      k.charge(i === XFEATURE_PASID ? k.costs.wrmsr : lineCost(k, size));
    } else {
      write_xs(k, t, i, v);
      k.charge(lineCost(k, size));
    }
  }
  k.set(k.C.fpregs_locked, cpu, k.get(k.C.fpregs_locked, cpu) - 1);
}

// --- pasid_msr: how a task's IA32_PASID gets its mm's PASID -----------------------------------

/** The task's PASID state from its mm: PASID | valid, or 0. */
function mm_pasid_state(k: Kernel, t: number): number {
  const pasid = k.get(k.M.pasid, k.get(k.T.mm, t));
  return pasid === 0 ? 0 : pasid | MSR_IA32_PASID_VALID;
}

/**
 * Bring `t`'s PASID component in line with its mm (update_pasid() of 5.10,
 * or the task_work of the eager schemes), through the xstate helper.
 */
function pasid_sync(k: Kernel, cpu: number, t: number): void {
  if ((k.model.xstate.features & XFEATURE_MASK_PASID) === 0) return;
  if (k.get(k.T.mm, t) === 0) return; // !current->mm
  const want = mm_pasid_state(k, t);
  const live = regs_live(k, cpu, t);
  const have = live ? rdmsr_pasid(k, cpu) : xs_pasid(k, t);
  if (have === want) return;
  xstate_write(k, cpu, t, XFEATURE_PASID, want);
  k.set(k.T.pasid_activated, t, want === 0 ? 0 : 1);
  k.metrics.pasid_msr_writes++;
  if (k.trace !== null) k.trace.instant(cpu, "PASID sync", { task: t, pasid: want & PASID_MASK });
}

/**
 * The mm's PASID changed (allocated at the first bind, or freed by a
 * lifetime that frees while the mm lives): tell its tasks, as the eager
 * policies do.
 * - `ipi`: IPI every CPU in mm_cpumask(mm); the handler updates whatever task
 *   runs there; the others catch up at their next switch_to().
 * - `task-work`: task_work_add() to every task using the mm (a walk over all
 *   tasks: CLONE_VM without CLONE_THREAD has no list), and IPI those running.
 * - `ctxsw-resync`: IPI the CPUs running the mm's tasks (task_work there);
 *   the rest resync at their next switch.
 * `gp-fixup` needs nothing: each task takes its own #GP.
 */
export function pasid_mm_changed(k: Kernel, mm: number, cpu: number): void {
  const policy = k.model.pasidMsr;
  if (policy === "gp-fixup") return;
  const self = cpu >= 0 ? k.curr(cpu) : 0;
  if (policy === "task-work") {
    for (let t = 1; t < k.L.task.count; t++) {
      k.charge(k.costs.step); // the walk
      if (k.get(k.T.mm, t) !== mm) continue;
      const st = k.get(k.T.state, t);
      if (st === TASK_FREE || st === TASK_DEAD) continue;
      k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_PASID_SYNC); // task_work_add(TWA_SIGNAL)
    }
  }
  for (let c = 0; c < k.params.cpus; c++) {
    const t = k.curr(c);
    const onMask = policy === "ipi" ? cpumask_test(k, mm, c) : k.get(k.T.mm, t) === mm;
    if (!onMask) continue;
    if (c === cpu) {
      // The binding CPU needs no IPI: on_each_cpu_mask() runs the function
      // here directly, and the task_work schemes queue it for this task too.
      if (policy === "ipi") pasid_ipi(k, cpu);
      else if (t === self && k.get(k.T.mm, t) === mm) k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_PASID_SYNC);
      continue;
    }
    if (policy !== "ipi" && k.get(k.T.mm, t) === mm) k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_PASID_SYNC);
    k.metrics.ipis++;
    k.pcpu(cpu, PC_IPIS);
    k.charge(k.costs.ipi_send);
    k.set(k.C.pending, c, k.get(k.C.pending, c) | IRQ_PASID);
    k.link.kick(c);
  }
}

function cpumask_test(k: Kernel, mm: number, c: number): boolean {
  return (k.w[k.M.cpumask.at + mm * k.M.cpumask.stride + (c >>> 5)] & (1 << (c & 31))) !== 0;
}

/**
 * The PASID IPI's handler on `cpu`. Under `ipi` it updates the current task
 * (5.10's _load_pasid -> update_pasid); inside an fpregs_lock() section it
 * must not touch FPU state, so the update waits for the way out to user.
 * Variant `ipi-in-bh` (5.10 as merged) updates anyway: the section's XSAVES
 * then overwrites it, a lost update. Under `task-work`/`ctxsw-resync` the
 * IPI only kicks the task into the exit path, where its task_work runs.
 */
export function pasid_ipi(k: Kernel, cpu: number): void {
  if (k.model.pasidMsr !== "ipi") return;
  const t = k.curr(cpu);
  if (k.get(k.T.mm, t) === 0) return;
  if (k.get(k.C.fpregs_locked, cpu) !== 0 && !k.model.variants.has(VARIANT_IPI_IN_BH)) {
    k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_PASID_SYNC);
    return;
  }
  // 5.10 wrote the register or the image directly, whatever the helper policy.
  const want = mm_pasid_state(k, t);
  if ((k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) === 0) {
    if (rdmsr_pasid(k, cpu) === want) return;
    write_xreg(k, cpu, XFEATURE_PASID, want);
  } else {
    if (xs_pasid(k, t) === want) return;
    write_xs(k, t, XFEATURE_PASID, want);
  }
  k.set(k.T.pasid_activated, t, want === 0 ? 0 : 1);
  k.metrics.pasid_msr_writes++;
  k.charge(k.costs.wrmsr);
}

// --- kernel-mode FPU use -----------------------------------------------------------------

/**
 * A syscall that uses the FPU in the kernel (crypto, RAID), as 5.10's
 * kernel_fpu_begin() did it: inside fpregs_lock() with interrupts on, mark
 * the user registers for reload, then save them, then take the registers.
 */
export const P_KERNEL_FPU = defPath("kernel_fpu_begin", [
  [
    "fpregs_lock",
    (k, cpu) => {
      k.add(k.C.preempt_count, cpu, 1);
      k.add(k.C.fpregs_locked, cpu, 1);
    },
  ],
  [
    "set_thread_flag_need_fpu_load",
    (k, cpu, fr) => {
      const t = k.curr(cpu);
      const tif = k.get(k.T.tif, t);
      const save = userTask(k, t) && (tif & TIF_NEED_FPU_LOAD) === 0;
      k.setArg0(fr, save ? 1 : 0);
      if (save) k.set(k.T.tif, t, tif | TIF_NEED_FPU_LOAD);
    },
  ],
  [
    "save_fpregs_to_fpstate",
    (k, cpu, fr) => {
      if (k.arg0(fr) === 0) return;
      const t = k.curr(cpu);
      xsaves(k, cpu, t);
      k.set(k.T.fpu_last_cpu, t, cpu);
    },
  ],
  ["__cpu_invalidate_fpregs_state", (k, cpu) => kernel_fpu_use(k, cpu)],
  [
    "kernel_fpu_end",
    (k, cpu) => {
      k.add(k.C.fpregs_locked, cpu, -1);
      k.add(k.C.preempt_count, cpu, -1);
    },
  ],
]);

/**
 * A syscall that changes components of the caller's xstate (a1 = mask), one
 * helper call each. It first waits for a contended lock (it yields), so the
 * write finds the registers saved when another task ran meanwhile: where the
 * helpers differ (lock-and-load restores everything first, update reads the
 * image, replace reads nothing).
 */
export const P_XSTATE_WRITE = defPath("xstate_write_syscall", [
  ["mutex_lock", (k, cpu) => k.call(cpu, P_SCHED_YIELD)],
  [
    "xstate_write",
    (k, cpu, fr) => {
      const t = k.curr(cpu);
      const v = next_user_value(k, t);
      for (let m = k.arg0(fr); m !== 0; m &= m - 1) xstate_write(k, cpu, t, 31 - Math.clz32(m & -m), v);
    },
  ],
]);

// --- signals ---------------------------------------------------------------------------

/** Task flag: a signal with a handler is pending (the model's signals return from the handler at once). */
export const TIF_SIGPENDING = 1 << 7;

function frameAddr(k: Kernel, t: number, i: number): number {
  return k.T.sigframe.at + t * k.T.sigframe.stride + i;
}

/**
 * handle_signal() -> setup_rt_frame(), for its FPU part: the user
 * components go to the signal frame (XSAVE from the live registers, or a
 * copy of the image), then fpu__clear_user_states() resets only the user
 * components: with the registers not live it first restores the supervisor
 * ones from the image (os_xrstor_supervisor), so IA32_PASID survives.
 */
export const P_HANDLE_SIGNAL = defPath("handle_signal", [
  [
    "copy_fpstate_to_sigframe",
    (k, cpu) => {
      const t = k.curr(cpu);
      const tif = k.get(k.T.tif, t);
      k.set(k.T.tif, t, tif & ~TIF_SIGPENDING);
      const L = k.model.xstate;
      const live = (tif & TIF_NEED_FPU_LOAD) === 0;
      let bytes = XSAVE_HDR_SIZE;
      for (let m = L.features & ~L.supervisor; m !== 0; m &= m - 1) {
        const bit = m & -m;
        const i = 31 - Math.clz32(bit);
        const v = live ? k.w[xregAddr(k, cpu, i)] : xs_value(k, t, i);
        if (k.w[frameAddr(k, t, i)] !== v) k.mem.write(frameAddr(k, t, i), v);
        if (v !== 0) bytes += L.sizes[i];
      }
      k.metrics.xsaves_bytes += bytes;
      k.charge(k.costs.xsaves + lineCost(k, bytes));
    },
  ],
  [
    "fpu__clear_user_states",
    (k, cpu) => {
      const t = k.curr(cpu);
      const L = k.model.xstate;
      if ((k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) !== 0 && !fpregs_state_valid(k, cpu, t)) {
        // os_xrstor_supervisor(): the supervisor components from the image.
        let bytes = XSAVE_HDR_SIZE;
        for (let m = L.supervisor; m !== 0; m &= m - 1) {
          const bit = m & -m;
          const i = 31 - Math.clz32(bit);
          k.mem.write(xregAddr(k, cpu, i), xs_value(k, t, i));
          if (xs_value(k, t, i) !== 0) bytes += L.sizes[i];
        }
        k.metrics.xrstors_bytes += bytes;
        k.charge(k.costs.xrstors + lineCost(k, bytes));
      }
      // restore_fpregs_from_init_fpstate(XFEATURE_MASK_USER_RESTORE), then fpregs_mark_activate().
      for (let m = L.features & ~L.supervisor; m !== 0; m &= m - 1) {
        const i = 31 - Math.clz32(m & -m);
        if (k.w[xregAddr(k, cpu, i)] !== 0) write_xreg(k, cpu, i, 0);
      }
      k.set(k.C.xrstor_task, cpu, 0);
      k.set(k.T.xs_newer, t, 0);
      fpregs_mark_activate(k, cpu, t);
    },
  ],
]);

/** rt_sigreturn(): fpu__restore_sig(): the user components back from the frame (XRSTOR). */
export const P_SIGRETURN = defPath("rt_sigreturn", [
  [
    "fpu__restore_sig",
    (k, cpu) => {
      const t = k.curr(cpu);
      const L = k.model.xstate;
      if ((k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) !== 0) fpregs_restore_userregs(k, cpu, t);
      let bytes = XSAVE_HDR_SIZE;
      for (let m = L.features & ~L.supervisor; m !== 0; m &= m - 1) {
        const i = 31 - Math.clz32(m & -m);
        const v = k.w[frameAddr(k, t, i)];
        if (k.w[xregAddr(k, cpu, i)] !== v) write_xreg(k, cpu, i, v);
        if (v !== 0) bytes += L.sizes[i];
      }
      k.metrics.xrstors_bytes += bytes;
      k.charge(k.costs.xrstors + lineCost(k, bytes));
    },
  ],
]);

/**
 * A softirq that uses the FPU (machine.softirq_fpu), run on the way out of
 * an interrupt: kernel_fpu_begin() from softirq context saves the
 * interrupted task's live user registers first. Not inside an
 * fpregs_lock() section: local_bh_disable() holds softirqs back there.
 */
export function softirq_kernel_fpu(k: Kernel, cpu: number): void {
  if (k.get(k.C.fpregs_locked, cpu) !== 0) return;
  const t = k.curr(cpu);
  const tif = k.get(k.T.tif, t);
  if (userTask(k, t) && (tif & TIF_NEED_FPU_LOAD) === 0) {
    k.set(k.T.tif, t, tif | TIF_NEED_FPU_LOAD);
    xsaves(k, cpu, t);
    k.set(k.T.fpu_last_cpu, t, cpu);
  }
  kernel_fpu_use(k, cpu);
}

/** __cpu_invalidate_fpregs_state(), then the kernel's own FPU work clobbers the vector registers. */
function kernel_fpu_use(k: Kernel, cpu: number): void {
  k.set(k.C.fpregs_owner, cpu, 0);
  k.set(k.C.xrstor_task, cpu, 0);
  k.metrics.kernel_fpu++;
  k.charge(k.costs.kernel_fpu);
  const L = k.model.xstate;
  for (let i = 1; i <= 2; i++) if ((L.features & (1 << i)) !== 0) write_xreg(k, cpu, i, -1);
}

// --- #GP ---------------------------------------------------------------------------------

/**
 * exc_general_protection() from user mode: try_fixup_enqcmd_gp() first, with
 * IRQs still off (no preemption or softirq can come between its checks and
 * the MSR write). Fixed: return and replay the instruction. Otherwise SIGSEGV.
 * A #GP that was not ENQCMD's gets the same one fixup and replay first.
 * Kernel variant `gp-fixup-irqs-on` (seed 000): the handler enables
 * interrupts first and the checks and the write are separate steps, so a
 * preemption between them can restore the task's old XSTATE image over the
 * write ("preemption or BH here: kaboom").
 */
export const P_EXC_GP = defPath("exc_general_protection", [
  [
    "cond_local_irq_enable",
    (k, cpu) => {
      if (k.model.variants.has(VARIANT_GP_IRQS_ON)) k.set(k.C.irqs_off, cpu, 0);
    },
  ],
  [
    "try_fixup_enqcmd_gp",
    (k, cpu, fr) => {
      const mainline = !k.model.variants.has(VARIANT_GP_IRQS_ON);
      if (mainline && k.get(k.C.irqs_off, cpu) === 0) k.warn("sched-atomic", "#GP fixup with IRQs on", cpu);
      const t = k.curr(cpu);
      const pasid = k.get(k.M.pasid, k.get(k.T.mm, t));
      // cpu_feature_enabled(X86_FEATURE_ENQCMD): the fixup exists only for the gp-fixup scheme here.
      const feature =
        k.model.pasidMsr === "gp-fixup" && (k.model.xstate.features & XFEATURE_MASK_PASID) !== 0;
      if (!feature || pasid === 0 || k.get(k.T.pasid_activated, t) !== 0) {
        if (
          pasid !== 0 &&
          k.get(k.T.pasid_activated, t) !== 0 &&
          (rdmsr_pasid(k, cpu) & MSR_IA32_PASID_VALID) === 0
        ) {
          k.warn(
            "pasid-lost",
            `task ${t} has activated but its IA32_PASID is invalid: no fixup will run again`,
            cpu,
          );
        }
        k.jump(fr, P_EXC_GP.pc.force_sig_segv);
        return;
      }
      if (mainline) wrmsr_pasid(k, cpu, t, pasid);
      else k.setArg0(fr, pasid); // the variant writes in the next step
    },
  ],
  [
    "wrmsrl",
    (k, cpu, fr) => {
      if (k.model.variants.has(VARIANT_GP_IRQS_ON)) wrmsr_pasid(k, cpu, k.curr(cpu), k.arg0(fr));
    },
  ],
  [
    "irqentry_exit_to_user",
    (k, cpu) => {
      // Back to user through the common exit work; IRET replays the ENQCMD.
      k.ret(cpu);
      k.set(k.C.irqs_off, cpu, 0);
      k.call(cpu, P_EXIT_TO_USER);
    },
  ],
  [
    "force_sig_segv",
    (k, cpu) => {
      k.metrics.sigsegv++;
      if (k.trace !== null) k.trace.instant(cpu, "SIGSEGV", { task: k.curr(cpu) });
      k.set(k.C.irqs_off, cpu, 0);
      k.ret(cpu);
      k.call(cpu, P_EXIT, 128 + SIGSEGV);
    },
  ],
]);

/** wrmsrl(MSR_IA32_PASID, pasid | valid) and current->pasid_activated = 1. */
function wrmsr_pasid(k: Kernel, cpu: number, t: number, pasid: number): void {
  if ((k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) !== 0) {
    // Andy Lutomirski's point: with the image authoritative, a bare WRMSR is lost at the next XRSTORS.
    k.warn("fpu-lost-update", `WRMSR IA32_PASID for task ${t} while TIF_NEED_FPU_LOAD is set`, cpu);
  }
  write_xreg(k, cpu, XFEATURE_PASID, pasid | MSR_IA32_PASID_VALID);
  k.set(k.T.pasid_activated, t, 1);
  k.metrics.pasid_msr_writes++;
  k.charge(k.costs.wrmsr);
  if (k.trace !== null) k.trace.instant(cpu, "#GP fixup: IA32_PASID", { task: t, pasid });
}

/** The hardware's #GP from user mode: into the handler with IRQs off. */
export function raise_gp(k: Kernel, cpu: number): void {
  k.metrics.gp_faults++;
  k.set(k.C.in_user, cpu, 0);
  k.set(k.C.irqs_off, cpu, 1);
  if (k.model.tlb.pti) switch_to_kernel_cr3(k, cpu);
  k.call(cpu, P_EXC_GP);
}

/**
 * Clear the PASID state of every task of `mm` at once (the idealised IPI of
 * the gp-fixup scheme): every image is cleared; a task whose registers are
 * live on its CPU gets its MSR cleared there too (it may be between XSAVES
 * and the switch), any other has its cached registers invalidated.
 */
export function pasid_clear_mm_tasks(k: Kernel, mm: number): void {
  for (let t = 1; t < k.L.task.count; t++) {
    if (k.get(k.T.mm, t) !== mm || k.get(k.T.pasid_activated, t) === 0) continue;
    k.set(k.T.pasid_activated, t, 0);
    k.metrics.pasid_msr_writes++;
    k.mem.write(xsAddr(k, t, XFEATURE_PASID), 0);
    k.set(k.T.xfeatures, t, k.get(k.T.xfeatures, t) & ~XFEATURE_MASK_PASID);
    const c = k.get(k.T.cpu, t);
    if (k.curr(c) === t && (k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) === 0) write_xreg(k, c, XFEATURE_PASID, 0);
    else k.set(k.T.fpu_last_cpu, t, -1);
  }
}

pasidChange.allocated = pasid_mm_changed;
pasidChange.freed = (k, mm, cpu) => {
  if (k.model.pasidMsr === "gp-fixup") pasid_clear_mm_tasks(k, mm);
  else pasid_mm_changed(k, mm, cpu);
};

export type { KPath };
