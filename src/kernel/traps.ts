// The traps an ASID or XSTATE question meets (arch/x86/kernel/traps.c):
// #NM from user code touching an XFD-armed component (AMX's first use), and
// #GP with its ENQCMD fixup, try_fixup_enqcmd_gp(): the one place mainline
// writes IA32_PASID.

import { lineCost, MSR_IA32_PASID_VALID, rdmsr_pasid, write_xreg } from "../hw/xsave.js";
import { XFEATURE_MASK_PASID, XFEATURE_MASK_XTILE_DATA, XFEATURE_PASID } from "../hw/xstate.js";
import { TIF_NEED_FPU_LOAD } from "../machine/state.js";
import { P_EXIT_TO_USER } from "./entry.js";
import { next_user_value, save_if_live } from "./fpregs.js";
import type { Kernel } from "./kernel.js";
import { defPath, frameLocals } from "./path.js";
import { P_EXIT } from "./process.js";
import { switch_to_kernel_cr3 } from "./pti.js";

const SIGILL = 4;
const SIGSEGV = 11;

// --- user code touching its registers; XFD and AMX permission -----------------------------

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

// --- #GP ---------------------------------------------------------------------------------

const EXC_GP = frameLocals({ pasid: [0] });

/**
 * exc_general_protection() from user mode: try_fixup_enqcmd_gp() first, with
 * IRQs still off (no preemption or softirq can come between its checks and
 * the MSR write). Fixed: return and replay the instruction. Otherwise SIGSEGV.
 * A #GP that was not ENQCMD's gets the same one fixup and replay first.
 * Kernel variant `gp-fixup-irqs-on` (seed 000): the handler enables
 * interrupts first and the checks and the write are separate steps, so a
 * preemption between them can restore the task's old XSTATE image over the
 * write ("preemption or BH here: kaboom"). a0 = the PASID the variant's
 * separate wrmsrl step writes.
 */
export const P_EXC_GP = defPath("exc_general_protection", [
  [
    "cond_local_irq_enable",
    (k, cpu) => {
      if (k.model.variants.has("gp-fixup-irqs-on")) k.set(k.C.irqs_off, cpu, 0);
    },
  ],
  [
    "try_fixup_enqcmd_gp",
    (k, cpu, fr) => {
      const mainline = !k.model.variants.has("gp-fixup-irqs-on");
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
      else EXC_GP.pasid.set(k, fr, pasid); // the variant writes in the next step
    },
  ],
  [
    "wrmsrl",
    (k, cpu, fr) => {
      if (k.model.variants.has("gp-fixup-irqs-on")) wrmsr_pasid(k, cpu, k.curr(cpu), EXC_GP.pasid.get(k, fr));
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
