// Policy `pasid_msr`: how a task's IA32_PASID (XSTATE component 10) gets its
// mm's PASID. Mainline (`gp-fixup`) waits for each task's first ENQCMD to
// take #GP (traps.ts); the eager schemes of seed 000 (`ipi`, `task-work`,
// `ctxsw-resync`) push the change to the mm's tasks when the PASID is
// allocated or freed.

import { MSR_IA32_PASID_VALID, PASID_MASK, rdmsr_pasid, write_xreg, xs_pasid, xsAddr } from "../hw/xsave.js";
import { XFEATURE_MASK_PASID, XFEATURE_PASID } from "../hw/xstate.js";
import { PC_IPIS } from "../machine/metrics.js";
import { IRQ_PASID, TASK_DEAD, TASK_FREE, TIF_NEED_FPU_LOAD, TIF_PASID_SYNC } from "../machine/state.js";
import { regs_live, write_xs, xstate_write } from "./fpregs.js";
import { pasidChange } from "./iommu.js";
import type { Kernel } from "./kernel.js";
import { defPath } from "./path.js";
import { cpumask_test } from "./tlbstate.js";

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
export function pasid_sync(k: Kernel, cpu: number, t: number): void {
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
  if (k.get(k.C.fpregs_locked, cpu) !== 0 && !k.model.variants.has("ipi-in-bh")) {
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
