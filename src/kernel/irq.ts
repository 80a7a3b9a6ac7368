// Interrupts (arch/x86/kernel/irq.c, idtentry): taking a pending vector,
// its handler (the tick, the reschedule, call-function and PASID IPIs), and
// irqentry_exit(): softirqs, preemption of kernel code, or the way out to
// user.

import { IRQ_CALL_FUNCTION, IRQ_PASID, IRQ_RESCHED, IRQ_TIMER, TIF_NEED_RESCHED } from "../machine/state.js";
import { P_EXIT_TO_USER } from "./entry.js";
import { softirq_kernel_fpu } from "./fpu.js";
import type { Kernel } from "./kernel.js";
import { pasid_ipi } from "./pasid_msr.js";
import { defPath, frameLocals } from "./path.js";
import { switch_to_kernel_cr3 } from "./pti.js";
import { P_SCHEDULE, SM_PREEMPT, scheduler_tick } from "./sched.js";
import { flush_smp_call_function_queue } from "./tlb_flush.js";

/** preempt_schedule_irq(): preemption on the way out of an interrupt to kernel code. */
export const P_PREEMPT_SCHEDULE_IRQ = defPath("preempt_schedule_irq", [
  ["preempt_schedule_irq", (k, cpu) => k.call(cpu, P_SCHEDULE, SM_PREEMPT)],
]);

const IRQ = frameLocals({ fromUser: [0] });

/**
 * An interrupt: the hardware pushed the frame and cleared IF; a0 = 1 when it
 * interrupted user mode. Handles one pending vector, then irqentry_exit().
 */
export const P_IRQ = defPath("common_interrupt", [
  [
    "irqentry_enter",
    (k, cpu) => {
      k.metrics.interrupts++;
      const pending = k.get(k.C.pending, cpu);
      const bit = pending & -pending; // lowest pending vector first
      k.set(k.C.pending, cpu, pending & ~bit);
      if (bit === IRQ_TIMER) {
        k.charge(k.costs.tick);
        scheduler_tick(k, cpu);
      } else if (bit === IRQ_RESCHED) {
        // scheduler_ipi(): TIF_NEED_RESCHED is already set; the exit path acts on it.
      } else if (bit === IRQ_CALL_FUNCTION) {
        flush_smp_call_function_queue(k, cpu);
      } else if (bit === IRQ_PASID) {
        pasid_ipi(k, cpu);
      }
    },
    "irq_entry",
  ],
  [
    "irqentry_exit",
    (k, cpu, fr) => {
      const fromUser = IRQ.fromUser.get(k, fr) !== 0;
      if (k.model.softirqFpu) softirq_kernel_fpu(k, cpu); // irq_exit(): softirqs, if BHs are enabled
      k.ret(cpu);
      if (fromUser) {
        k.set(k.C.irqs_off, cpu, 0);
        k.call(cpu, P_EXIT_TO_USER);
        return;
      }
      const t = k.curr(cpu);
      if (
        k.get(k.C.irq_depth, cpu) === 0 &&
        k.get(k.C.preempt_count, cpu) === 0 &&
        (k.get(k.T.tif, t) & TIF_NEED_RESCHED) !== 0 &&
        t !== k.get(k.C.idle, cpu)
      ) {
        // irqentry_exit_cond_resched(): still with IRQs off, so no second
        // interrupt can come in before preempt_schedule_irq() disables
        // preemption (it found that hole: preemptions nested on one stack).
        k.call(cpu, P_PREEMPT_SCHEDULE_IRQ);
        return;
      }
      k.set(k.C.irqs_off, cpu, 0); // IRET restores the interrupted IF (it was on)
    },
    "irq_exit",
  ],
]);

/** Take an interrupt: leave user mode or halt, push the handler frame. */
export function enter_irq(k: Kernel, cpu: number): void {
  const fromUser = k.get(k.C.in_user, cpu);
  if (fromUser !== 0 && k.model.tlb.pti) switch_to_kernel_cr3(k, cpu);
  k.set(k.C.in_user, cpu, 0);
  k.set(k.C.halted, cpu, 0);
  k.set(k.C.irqs_off, cpu, 1);
  k.callIrq(cpu, P_IRQ, IRQ.fromUser.put(fromUser));
}
