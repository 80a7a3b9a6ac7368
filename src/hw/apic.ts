// The local APIC, as far as the model needs it: an interrupt raised on a CPU
// (a timer, an IPI) is a pending bit, delivered at the next instruction
// boundary where IF allows (engine/cpu.ts).

import type { Machine } from "../machine/machine.js";

/** Raise an interrupt on a CPU (the APIC delivers it when IF allows). */
export function raise_irq(k: Machine, cpu: number, bit: number): void {
  k.set(k.C.pending, cpu, k.get(k.C.pending, cpu) | bit);
  k.link.kick(cpu);
}
