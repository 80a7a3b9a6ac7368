// Whose registers are live, and changing a task's xstate (arch/x86/kernel/fpu/
// core.c and context.h, and seed 004's helpers of fpu/xstate.c): the helpers
// the switch, the traps, the signals and the PASID schemes share.
//
// Per CPU: fpu_fpregs_owner_ctx and the fpregs_lock() depth (the registers
// themselves are hw/xsave.ts). Per task: fpu->last_cpu, TIF_NEED_FPU_LOAD,
// fpu->perm and pasid_activated. A component's bytes are its CPUID size;
// the model keeps one word of value per component (docs/model-vs-kernel.md).

import { lineCost, write_xreg, xrstors, xsAddr, xsaves } from "../hw/xsave.js";
import { XFEATURE_PASID, xfeatureName } from "../hw/xstate.js";
import { PF_KTHREAD, TIF_NEED_FPU_LOAD } from "../machine/state.js";
import type { Kernel } from "./kernel.js";

export function userTask(k: Kernel, t: number): boolean {
  return (k.get(k.T.flags, t) & PF_KTHREAD) === 0;
}

/** fpregs_state_valid(): this CPU's registers still hold exactly `t`'s image. */
export function fpregs_state_valid(k: Kernel, cpu: number, t: number): boolean {
  return k.get(k.C.fpregs_owner, cpu) === t && k.get(k.T.fpu_last_cpu, t) === cpu;
}

/** `t` (current on `cpu`) runs on its live registers: in user mode, or in the kernel with TIF_NEED_FPU_LOAD clear. */
export function regs_live(k: Kernel, cpu: number, t: number): boolean {
  return k.get(k.C.in_user, cpu) !== 0 || (k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) === 0;
}

/** Write one component of `t`'s memory image and invalidate its registers (__fpu_invalidate_fpregs_state). */
export function write_xs(k: Kernel, t: number, i: number, v: number): void {
  const bit = 1 << i;
  k.mem.write(xsAddr(k, t, i), v);
  const bv = k.get(k.T.xfeatures, t);
  k.set(k.T.xfeatures, t, v === 0 ? bv & ~bit : bv | bit);
  k.set(k.T.xs_newer, t, k.get(k.T.xs_newer, t) | bit);
  k.set(k.T.fpu_last_cpu, t, -1);
}

/** save_fpregs_to_fpstate() of the current task, if its registers are live. */
export function save_if_live(k: Kernel, cpu: number, t: number): void {
  if (!userTask(k, t) || (k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) !== 0) return;
  xsaves(k, cpu, t);
  k.set(k.T.fpu_last_cpu, t, cpu);
  k.set(k.C.fpregs_owner, cpu, t);
}

/** fpregs_restore_userregs(): load `t`'s registers unless they are still valid here. */
export function fpregs_restore_userregs(k: Kernel, cpu: number, t: number): void {
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
export function fpregs_mark_activate(k: Kernel, cpu: number, t: number): void {
  k.set(k.C.fpregs_owner, cpu, t);
  k.set(k.T.fpu_last_cpu, t, cpu);
  k.set(k.T.tif, t, k.get(k.T.tif, t) & ~TIF_NEED_FPU_LOAD);
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

/** A fresh, nonzero value for a component `t` writes (its pid and a counter). */
export function next_user_value(k: Kernel, t: number): number {
  const gen = (k.get(k.T.fpu_gen, t) + 1) & 0xffff;
  k.set(k.T.fpu_gen, t, gen);
  return ((k.get(k.T.pid, t) & 0x7fff) << 16) | gen | 1;
}
