// The FPU/XSTATE machinery of a task's life (arch/x86/kernel/fpu): the FPU
// part of the context switch (XSAVES the outgoing task's live registers and
// marks the incoming one), the restore on the way out to user (XRSTORS
// unless the registers are still valid), clone and exec, the AMX permission
// request, and kernel-mode FPU use (kernel_fpu_begin, softirqs).

import { lineCost, MSR_IA32_PASID_VALID, write_xreg, xsAddr, xsaves } from "../hw/xsave.js";
import {
  XFEATURE_MASK_PASID,
  XFEATURE_MASK_XTILE_DATA,
  XFEATURE_PASID,
  XSAVE_HDR_SIZE,
} from "../hw/xstate.js";
import { TASK_DEAD, TASK_FREE, TIF_NEED_FPU_LOAD, XFEATURE_MAX } from "../machine/state.js";
import { fpregs_restore_userregs, next_user_value, save_if_live, userTask, xstate_write } from "./fpregs.js";
import type { Kernel } from "./kernel.js";
import { pasid_sync } from "./pasid_msr.js";
import { defPath, frameLocals, type KPath } from "./path.js";
import { P_SCHED_YIELD } from "./sleep.js";

const EINVAL = 22;

// --- context switch and the way out to user --------------------------------------------------

const SWITCH_FPU = frameLocals({ prev: [0, 0, 32, "task"], next: [1, 0, 32, "task"] }, "switch_fpu");

/** switch_fpu_prepare/finish: a0 = prev, a1 = next. */
export const P_SWITCH_FPU = defPath("switch_fpu", [
  [
    "save_fpregs_to_fpstate",
    (k, cpu, fr) => {
      const prev = SWITCH_FPU.prev.get(k, fr);
      const next = SWITCH_FPU.next.get(k, fr);
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

// --- clone, exec ----------------------------------------------------------------------------

const FPU_CLONE = frameLocals({ child: [0, 0, 32, "task"] }, "fpu_clone");

/**
 * fpu_clone(): a0 = child, in the kernel's order. fpstate_reset() gives the
 * child the default permissions and a default-sized buffer (dynamic
 * components are caller-saved and stay behind), then, for a user parent,
 * under fpregs_lock(): if the parent has TIF_NEED_FPU_LOAD its registers are
 * restored first (fpregs_restore_userregs(): an XRSTORS unless they are
 * still valid here, and the parent's registers are live from then on), then
 * save_fpregs_to_fpstate(dst_fpu) XSAVES them into the child's buffer: a
 * different buffer from the last XRSTORS's, so every non-init component of
 * the child's XCOMP_BV is written, PASID included. Then: the permissions of
 * the group leader unless CLONE_THREAD (fpu_inherit_perms(); the model keeps
 * them on every thread, so a thread gets the same), and "Children never
 * inherit PASID state": its XSTATE_BV bit is cleared. A kernel-thread
 * parent ('minimal') gives the init state. Under the eager policies a
 * CLONE_VM child gets its mm's PASID state instead.
 */
export const P_FPU_CLONE = defPath("fpu_clone", [
  [
    "fpu_clone",
    (k, cpu, fr) => {
      const child = FPU_CLONE.child.get(k, fr);
      const parent = k.curr(cpu);
      const L = k.model.xstate;
      k.set(k.T.pasid_activated, child, 0); // dup_task_struct()
      k.set(k.T.fpu_last_cpu, child, -1);
      k.set(k.T.tif, child, k.get(k.T.tif, child) | TIF_NEED_FPU_LOAD);
      k.set(k.T.xcomp_bv, child, L.defaultXcomp); // fpstate_reset()
      k.set(k.T.xs_newer, child, 0);
      k.set(k.T.xfeatures, child, 0);
      for (let i = 0; i < XFEATURE_MAX; i++)
        if (k.w[xsAddr(k, child, i)] !== 0) k.mem.write(xsAddr(k, child, i), 0);
      if (!userTask(k, parent)) {
        // minimal: memcpy of init_fpstate's legacy area and header.
        k.set(k.T.fpu_perm, child, 0);
        k.charge(lineCost(k, XSAVE_HDR_SIZE));
        return;
      }
      k.set(k.T.fpu_perm, child, k.get(k.T.fpu_perm, parent));
      k.add(k.C.fpregs_locked, cpu, 1); // fpregs_lock()
      if ((k.get(k.T.tif, parent) & TIF_NEED_FPU_LOAD) !== 0) fpregs_restore_userregs(k, cpu, parent);
      // The last XRSTORS here was from the parent's buffer (or init_fpstate): never the child's.
      if (k.get(k.C.xrstor_task, cpu) === child)
        k.warn("fpu-state", `fpu_clone: task ${child}'s buffer is this CPU's last XRSTORS source`, cpu);
      xsaves(k, cpu, child); // save_fpregs_to_fpstate(dst_fpu)
      k.add(k.C.fpregs_locked, cpu, -1);
      const bv = k.get(k.T.xfeatures, child) & ~XFEATURE_MASK_PASID; // "Children never inherit PASID state."
      k.set(k.T.xfeatures, child, bv);
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
 * fpu_flush_thread() at exec: fpstate_reset() (the default-sized buffer and
 * the default permissions: an ARCH_REQ_XCOMP_PERM grant does not survive
 * exec, Documentation/arch/x86/xstate.rst) and fpu_reset_fpregs() (the image
 * reset to init, the PASID component included, loaded before user code
 * runs). Mainline leaves pasid_activated: dup_task_struct() is the only
 * place that clears it (docs/findings/exec-pasid-activated.md); variant
 * `exec-clears-pasid-activated` is the proposed fix and clears it here.
 */
export const P_FPU_FLUSH_THREAD = defPath("fpu_flush_thread", [
  [
    "fpstate_reset",
    (k, cpu) => {
      const t = k.curr(cpu);
      k.set(k.T.fpu_perm, t, 0); // fpu->perm.__state_perm = fpu_kernel_cfg.default_features
      for (let i = 0; i < XFEATURE_MAX; i++) if (k.w[xsAddr(k, t, i)] !== 0) k.mem.write(xsAddr(k, t, i), 0);
      k.set(k.T.xfeatures, t, 0);
      k.set(k.T.xcomp_bv, t, k.model.xstate.defaultXcomp);
      k.set(k.T.xs_newer, t, 0);
      k.set(k.T.fpu_last_cpu, t, -1);
      k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_NEED_FPU_LOAD);
      if (k.model.variants.has("exec-clears-pasid-activated")) k.set(k.T.pasid_activated, t, 0);
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

// --- kernel-mode FPU use -----------------------------------------------------------------

const KERNEL_FPU = frameLocals({ save: [0] });

/**
 * A syscall that uses the FPU in the kernel (crypto, RAID), as 5.10's
 * kernel_fpu_begin() did it: inside fpregs_lock() with interrupts on, mark
 * the user registers for reload, then save them, then take the registers.
 * a0 = 1 when there are user registers to save.
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
      KERNEL_FPU.save.set(k, fr, save ? 1 : 0);
      if (save) k.set(k.T.tif, t, tif | TIF_NEED_FPU_LOAD);
    },
  ],
  [
    "save_fpregs_to_fpstate",
    (k, cpu, fr) => {
      if (KERNEL_FPU.save.get(k, fr) === 0) return;
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

const XSTATE_WRITE = frameLocals({ mask: [0] });

/**
 * A syscall that changes components of the caller's xstate (a0 = mask), one
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
      for (let m = XSTATE_WRITE.mask.get(k, fr); m !== 0; m &= m - 1)
        xstate_write(k, cpu, t, 31 - Math.clz32(m & -m), v);
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

export type { KPath };
