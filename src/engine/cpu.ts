// One transition of a CPU, as the hardware sees it: take a pending interrupt
// if IF allows, else execute the next step of the kernel path on top of the
// current stack, else (user mode) the next op of the task's program. This is
// the hot loop: no allocation, plain array reads.

import { enter_irq } from "../kernel/irq.js";
import type { Kernel } from "../kernel/kernel.js";
import { enter_nmi } from "../kernel/pti.js";
import { FR_PATH, FR_PC, IRQ_NMI } from "../machine/state.js";
import { user_step } from "../user/ops.js";
import { OPCODE_NAMES } from "../user/program.js";

/** Can `cpu` make progress? A halted CPU waits for an interrupt. */
export function cpu_runnable(k: Kernel, cpu: number): boolean {
  if (k.get(k.C.halted, cpu) === 0) return true;
  return k.get(k.C.pending, cpu) !== 0;
}

/**
 * Run one transition on `cpu`; returns its cost in cycles. Compute ops run in
 * chunks of at most `chunkNs`, so that interrupts land between chunks.
 */
export function cpu_step(k: Kernel, cpu: number, chunkNs: number): number {
  k.extra = 0;
  const C = k.C;
  const w = k.w;
  const cb = C.curr.base + cpu * C.curr.stride;
  // The APIC: an interrupt is taken at an instruction boundary when IF is
  // set; an NMI whatever IF says, but not inside another NMI.
  const pending = w[cb + C.pending.off];
  if (pending !== 0) {
    if ((pending & IRQ_NMI) !== 0 && w[cb + C.in_nmi.off] === 0) {
      enter_nmi(k, cpu);
      return k.costs.irq_entry + k.extra;
    }
    if (w[cb + C.irqs_off.off] === 0 && w[cb + C.irq_depth.off] === 0 && pending !== IRQ_NMI) {
      enter_irq(k, cpu);
      return k.costs.irq_entry + k.extra;
    }
  }
  const paths = k.paths;
  const fr = k.topFrame(cpu);
  if (fr >= 0) {
    const p = paths[w[fr + FR_PATH]];
    const pc = w[fr + FR_PC];
    const s = p.steps[pc];
    k.mem.write(fr + FR_PC, pc + 1);
    const rets = k.rets;
    if (k.trace !== null) k.trace.stepBegin?.(cpu);
    s.fn(k, cpu, fr);
    // Only a path's last step, or a step that returned, can leave a finished
    // frame on top (frames it pushed are fresh, and a switched-to stack never
    // holds one).
    if (pc + 1 >= p.steps.length || k.rets !== rets) pop_finished(k, cpu);
    if (k.trace !== null) k.trace.stepEnd?.(cpu);
    return k.stepCost[p.id][pc] + k.extra;
  }
  if (w[cb + C.in_user.off] === 0) {
    k.warn("kernel-stack", `cpu ${cpu}: no kernel frame and not in user mode`, cpu);
    k.set(C.in_user, cpu, 1);
  }
  user_step(k, cpu, chunkNs);
  return k.costs.user_op + k.extra;
}

/** What `cpu_step` would do next on `cpu`, in words (for traces; not the hot loop). */
export function cpu_peek(k: Kernel, cpu: number): string {
  const C = k.C;
  const pending = k.get(C.pending, cpu);
  if ((pending & IRQ_NMI) !== 0 && k.get(C.in_nmi, cpu) === 0) return "NMI entry";
  if (pending !== 0 && pending !== IRQ_NMI && k.get(C.irqs_off, cpu) === 0 && k.get(C.irq_depth, cpu) === 0) {
    return "interrupt entry";
  }
  const paths = k.paths;
  const fr = k.topFrame(cpu);
  if (fr >= 0) {
    const p = paths[k.w[fr + FR_PATH]];
    return `${p.name}: ${p.steps[k.w[fr + FR_PC]].name}`;
  }
  const t = k.curr(cpu);
  const code = k.programs[k.get(k.T.prog, t)].code;
  return `user: ${OPCODE_NAMES[code[k.get(k.T.upc, t) * 2]] ?? "?"}`;
}

/**
 * Returning is part of the step that finishes a path: pop every frame that
 * has run off its end, so that no step boundary (where interrupts and
 * preemption may come in) ever sees a finished frame on a stack.
 */
function pop_finished(k: Kernel, cpu: number): void {
  const paths = k.paths;
  const w = k.w;
  for (;;) {
    const fr = k.topFrame(cpu);
    if (fr < 0 || w[fr + FR_PC] < paths[w[fr + FR_PATH]].steps.length) return;
    k.ret(cpu);
  }
}
