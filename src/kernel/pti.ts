// The PTI CR3 macros of arch/x86/entry/calling.h. Entry from user mode
// switches to the kernel half of the PGD without a flush (NOFLUSH with PCID;
// without PCID every CR3 write flushes); the way out tests the CPU's
// user_pcid_flush_mask bit for the kernel PCID in CR3 and flushes the user
// PCID only when it is set, clearing it: the one place a bit is consumed.
// Both run with IRQs off on this CPU, and the mask is per-CPU, so the test
// and clear need no atomic; only an NMI could come in between, and it
// consumes the bit itself when it returns to a user CR3 (PARANOID_RESTORE_CR3).

import { KERN_PCID_MASK, PTI_USER_PCID_BIT, user_pcid, write_cr3 } from "../hw/tlb.js";
import { IRQ_NMI } from "../machine/state.js";
import type { Kernel } from "./kernel.js";
import { defPath } from "./path.js";
import { user_mask_clear, user_mask_test } from "./tlbstate.js";

/** SWITCH_TO_KERNEL_CR3: clear bits 11 and 12, NOFLUSH when PCID is on. Part of the entry instruction's step. */
export function switch_to_kernel_cr3(k: Kernel, cpu: number): void {
  const C = k.C;
  const pcid = k.get(C.cr3_pcid, cpu) & KERN_PCID_MASK;
  write_cr3(k, cpu, k.get(C.cr3_mm, cpu), pcid, false, k.model.tlb.pcid);
}

/** SWITCH_TO_USER_CR3: bt (or btr) on the mask, NOFLUSH unless the bit was set, OR in 0x1800. */
function switch_to_user_cr3(k: Kernel, cpu: number): void {
  const C = k.C;
  const t = k.model.tlb;
  const mm = k.get(C.cr3_mm, cpu);
  check_user_cr3(k, cpu, mm);
  if (!t.pcid) {
    write_cr3(k, cpu, mm, 0, true, false);
    return;
  }
  const kpcid = k.get(C.cr3_pcid, cpu) & KERN_PCID_MASK;
  const set = user_mask_test(k, cpu, kpcid);
  if (set || t.userFlushTest === "btr") {
    // btr: a read-modify-write of the mask's cache line, taken exclusive.
    k.charge(k.costs.user_mask_rmw);
    user_mask_clear(k, cpu, kpcid);
  }
  write_cr3(k, cpu, mm, kpcid | PTI_USER_PCID_BIT, true, !set);
}

/** WARN_ONs on the way out: CR3 names the task's mm and its loaded slot's kernel PCID. */
function check_user_cr3(k: Kernel, cpu: number, mm: number): void {
  const C = k.C;
  const taskMm = k.get(k.T.mm, k.curr(cpu));
  if (mm !== taskMm || k.get(C.loaded_mm, cpu) !== taskMm) {
    k.warn(
      "cr3",
      `cpu ${cpu}: exit to user with CR3 on mm ${mm}, loaded_mm ${k.get(C.loaded_mm, cpu)}, task mm ${taskMm}`,
      cpu,
    );
  }
  const asid = k.get(C.loaded_mm_asid, cpu);
  if ((k.get(C.cr3_pcid, cpu) & KERN_PCID_MASK) !== (user_pcid(k, asid) & KERN_PCID_MASK)) {
    k.warn("cr3", `cpu ${cpu}: CR3 PCID ${k.get(C.cr3_pcid, cpu)} but loaded ASID ${asid}`, cpu);
  }
}

/** The exit_to_user hook under PTI: the last thing before SYSRET/IRET (IRQs are off). */
export const P_SWITCH_TO_USER_CR3 = defPath("SWITCH_TO_USER_CR3", [
  ["SWITCH_TO_USER_CR3", (k, cpu) => switch_to_user_cr3(k, cpu)],
]);

/**
 * An NMI (asm_exc_nmi): SAVE_AND_SWITCH_TO_KERNEL_CR3 on the way in, the
 * handler (perf: it touches no TLB state), PARANOID_RESTORE_CR3 on the way
 * out. Taken at any step boundary, IRQs off or not, but not inside another
 * NMI. The CR3 it returns to must name the page table and PCID it
 * interrupted (property `nmi-cr3`).
 */
export const P_NMI = defPath("exc_nmi", [
  [
    "SAVE_AND_SWITCH_TO_KERNEL_CR3",
    (k, cpu) => {
      const C = k.C;
      k.metrics.nmis++;
      k.set(C.nmi_cr3_mm, cpu, k.get(C.cr3_mm, cpu));
      k.set(C.nmi_cr3_pcid, cpu, k.get(C.cr3_pcid, cpu));
      k.set(C.nmi_cr3_user, cpu, k.get(C.cr3_user, cpu));
      if (k.model.tlb.pti && k.get(C.cr3_user, cpu) !== 0) switch_to_kernel_cr3(k, cpu);
    },
  ],
  ["nmi_handle", () => {}],
  [
    "PARANOID_RESTORE_CR3",
    (k, cpu) => {
      const C = k.C;
      const t = k.model.tlb;
      const mm = k.get(C.nmi_cr3_mm, cpu);
      const pcid = k.get(C.nmi_cr3_pcid, cpu);
      const user = k.get(C.nmi_cr3_user, cpu) !== 0;
      if (t.pti && user) {
        if (!t.pcid) {
          write_cr3(k, cpu, mm, 0, true, false);
        } else {
          // btr k, mask; jc: a pending flush of this user PCID is done here.
          const kpcid = pcid & KERN_PCID_MASK;
          const set = user_mask_test(k, cpu, kpcid);
          if (set) user_mask_clear(k, cpu, kpcid);
          k.charge(k.costs.user_mask_rmw);
          write_cr3(k, cpu, mm, pcid, true, !set);
        }
      } else if (t.nmiRestoreCr3 === "always" && t.pti) {
        // Before 6.9 (bb998361999e), RESTORE_CR3 rewrote a kernel CR3 too.
        write_cr3(k, cpu, mm, pcid, false, t.pcid); // a kernel CR3 can always resume NOFLUSH
      }
      if (
        k.get(C.cr3_mm, cpu) !== mm ||
        k.get(C.cr3_pcid, cpu) !== pcid ||
        (k.get(C.cr3_user, cpu) !== 0) !== user
      ) {
        k.warn(
          "nmi-cr3",
          `cpu ${cpu}: the NMI returns with CR3 (mm ${k.get(C.cr3_mm, cpu)}, PCID ${k.get(C.cr3_pcid, cpu)}) where it came with (mm ${mm}, PCID ${pcid})`,
          cpu,
        );
      }
    },
  ],
  [
    "iret",
    (k, cpu) => {
      k.ret(cpu);
      k.set(k.C.in_nmi, cpu, 0);
      if (k.get(k.C.nmi_from_user, cpu) !== 0) {
        k.set(k.C.nmi_from_user, cpu, 0);
        k.set(k.C.in_user, cpu, 1);
      }
    },
  ],
]);

/** Take a pending NMI on `cpu`: it nests on whatever runs, user or kernel, IRQs off or on. */
export function enter_nmi(k: Kernel, cpu: number): void {
  const C = k.C;
  k.set(C.pending, cpu, k.get(C.pending, cpu) & ~IRQ_NMI);
  k.set(C.in_nmi, cpu, 1);
  if (k.get(C.in_user, cpu) !== 0) {
    k.set(C.nmi_from_user, cpu, 1);
    k.set(C.in_user, cpu, 0);
  }
  k.set(C.halted, cpu, 0);
  k.callIrq(cpu, P_NMI);
}
