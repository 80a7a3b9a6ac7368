// The IA32_PASID MSR as the FPU code carries it (arch/x86/kernel/fpu,
// arch/x86/kernel/traps.c), for the PASID component (XSTATE 10, supervisor)
// only: the live MSR per CPU; per task the saved image of the component
// (0 is its init state: XSTATE_BV bit 10 clear), TIF_NEED_FPU_LOAD, and
// pasid_activated. Context switch saves the outgoing task's live state
// (XSAVES) and marks the incoming one; the way out to user restores it
// (XRSTORS) unless this CPU's registers still hold it. ENQCMD with the MSR's
// valid bit clear takes #GP; try_fixup_enqcmd_gp(), first in the #GP handler
// with IRQs still off, writes the MSR once per task.
// Simplified: the other XSTATE components, their sizes and the update/replace
// helpers are not modelled yet (xsaves_bytes and xrstors_bytes stay 0).

import { PF_KTHREAD } from "../machine/state.js";
import { P_EXIT_TO_USER } from "./entry.js";
import type { Kernel } from "./kernel.js";
import { defPath } from "./path.js";
import { P_EXIT } from "./process.js";
import { switch_to_kernel_cr3 } from "./pti.js";

export const MSR_IA32_PASID_VALID = 1 << 31;
export const PASID_MASK = 0xfffff;
/** Task flag: the FPU registers must be restored from the task's image before user code runs. */
export const TIF_NEED_FPU_LOAD = 1 << 5;
const SIGSEGV = 11;

function userTask(k: Kernel, t: number): boolean {
  return (k.get(k.T.flags, t) & PF_KTHREAD) === 0;
}

/** switch_fpu_prepare/finish: a0 = prev, a1 = next. */
export const P_SWITCH_FPU = defPath("switch_fpu", [
  [
    "save_fpregs_to_fpstate",
    (k, cpu, fr) => {
      const prev = k.arg0(fr);
      const next = k.arg1(fr);
      if (userTask(k, prev) && (k.get(k.T.tif, prev) & TIF_NEED_FPU_LOAD) === 0) {
        // XSAVES: the init optimisation leaves XSTATE_BV bit 10 clear when the MSR is 0.
        k.set(k.T.xs_pasid, prev, k.get(k.C.ia32_pasid, cpu));
        k.set(k.T.fpu_last_cpu, prev, cpu);
        k.set(k.C.fpregs_owner, cpu, prev);
      }
      if (userTask(k, next)) k.set(k.T.tif, next, k.get(k.T.tif, next) | TIF_NEED_FPU_LOAD);
    },
  ],
]);

/** The FPU part of exit_to_user_mode_prepare(): restore the registers if they are not live. */
export const P_FPU_RESTORE = defPath("switch_fpu_return", [
  [
    "fpregs_restore_userregs",
    (k, cpu) => {
      const t = k.curr(cpu);
      const tif = k.get(k.T.tif, t);
      if ((tif & TIF_NEED_FPU_LOAD) === 0) return;
      // fpregs_state_valid(): this CPU still holds this task's registers.
      const valid = k.get(k.C.fpregs_owner, cpu) === t && k.get(k.T.fpu_last_cpu, t) === cpu;
      if (!valid) k.set(k.C.ia32_pasid, cpu, k.get(k.T.xs_pasid, t)); // XRSTORS
      k.set(k.C.fpregs_owner, cpu, t);
      k.set(k.T.fpu_last_cpu, t, cpu);
      k.set(k.T.tif, t, tif & ~TIF_NEED_FPU_LOAD);
    },
  ],
]);

/** fpu_clone(): a0 = child. The child's PASID component is cleared: it takes its own #GP. */
export const P_FPU_CLONE = defPath("fpu_clone", [
  [
    "fpu_clone",
    (k, cpu, fr) => {
      const child = k.arg0(fr);
      // The parent's live state is copied, then XFEATURE_PASID is cleared in the copy.
      k.set(k.T.xs_pasid, child, 0);
      k.set(k.T.pasid_activated, child, 0); // dup_task_struct()
      k.set(k.T.fpu_last_cpu, child, -1);
      k.set(k.T.tif, child, k.get(k.T.tif, child) | TIF_NEED_FPU_LOAD);
      void cpu;
    },
  ],
]);

/**
 * fpu_flush_thread() at exec: the image is reset to init (the PASID component
 * included) and reloaded before user code runs. pasid_activated is not
 * touched: dup_task_struct() is the only place that clears it.
 */
export const P_FPU_FLUSH_THREAD = defPath("fpu_flush_thread", [
  [
    "fpstate_reset",
    (k, cpu) => {
      const t = k.curr(cpu);
      k.set(k.T.xs_pasid, t, 0);
      k.set(k.T.fpu_last_cpu, t, -1);
      k.set(k.T.tif, t, k.get(k.T.tif, t) | TIF_NEED_FPU_LOAD);
    },
  ],
]);

/**
 * exc_general_protection() from user mode: try_fixup_enqcmd_gp() first, with
 * IRQs still off (no preemption or softirq can come between its checks and
 * the MSR write). Fixed: return and replay the instruction. Otherwise SIGSEGV.
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
      if (pasid === 0 || k.get(k.T.pasid_activated, t) !== 0) {
        if (pasid !== 0) {
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

export const VARIANT_GP_IRQS_ON = "gp-fixup-irqs-on";

/** wrmsrl(MSR_IA32_PASID, pasid | valid) and current->pasid_activated = 1. */
function wrmsr_pasid(k: Kernel, cpu: number, t: number, pasid: number): void {
  k.set(k.C.ia32_pasid, cpu, pasid | MSR_IA32_PASID_VALID);
  k.set(k.T.pasid_activated, t, 1);
  k.metrics.pasid_msr_writes++;
  k.charge(k.cost("wrmsr"));
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
