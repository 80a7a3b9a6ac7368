// Global ASIDs and INVLPGB (v6.15, arch/x86/mm/tlb.c): an mm active on
// enough CPUs gets one ASID on all of them, flushed by broadcast instead of
// IPIs; the transition from per-CPU ASIDs and its stragglers.

import { kern_pcid, user_pcid } from "../hw/tlb.js";
import { MAX_ASID_AVAILABLE, TLB_ENTRIES, TLB_PAGES, TLBE_WORDS } from "../machine/state.js";
import type { Kernel } from "./kernel.js";
import { cpumask_test, LOADED_MM_SWITCHING, putBit, testBit } from "./tlbstate.js";

// --- global ASIDs and INVLPGB (v6.15) ----------------------------------------------

export function mm_global_asid(k: Kernel, mm: number): number {
  return mm === 0 || !k.model.tlb.invlpgb ? 0 : k.get(k.M.global_asid, mm);
}

/** The mm has a global ASID and this CPU still runs it on another one. */
export function mm_needs_global_asid(k: Kernel, mm: number, asid: number): boolean {
  const g = mm_global_asid(k, mm);
  return g !== 0 && g !== asid;
}

/** INVLPGB of PCID `pcid` (all of it, or pages [0, pages)) on every CPU, then TLBSYNC; `pcid` -1: every PCID. */
function invlpgb_flush(k: Kernel, pcid: number, pages: number): void {
  const w = k.w;
  const n = Math.min(pages, TLB_PAGES);
  for (let c = 0; c < k.params.cpus; c++) {
    const b = k.C.tlb.at + c * k.C.tlb.stride;
    for (let i = 0; i < TLB_ENTRIES; i++) {
      const a = b + i * TLBE_WORDS;
      if (w[a] === 0 || (pcid >= 0 && w[a] !== pcid + 1)) continue;
      if (pages === 0 || w[a + 1] < n) k.mem.write(a, 0);
    }
  }
  k.metrics.invlpgb++;
  k.charge(k.costs.invlpgb);
}

/** reset_global_asid_space(): invlpgb_flush_all_nonglobals(), reclaim the freed ASIDs. */
function reset_global_asid_space(k: Kernel): void {
  invlpgb_flush(k, -1, 0); // invlpgb_flush_all_nonglobals()
  const G = k.G;
  for (let i = 0; i < G.global_asid_used.len; i++) {
    const used = G.global_asid_used.at + i;
    const freed = G.global_asid_freed.at + i;
    if (k.w[freed] !== 0) {
      k.mem.write(used, k.w[used] & ~k.w[freed]);
      k.mem.write(freed, 0);
    }
  }
  k.set(G.last_global_asid, 0, k.model.tlb.asidSlots);
}

/** allocate_global_asid(): the next free ASID above the cursor; 0 when none is left. */
export function allocate_global_asid(k: Kernel): number {
  const G = k.G;
  if (k.get(G.last_global_asid, 0) >= MAX_ASID_AVAILABLE - 1) reset_global_asid_space(k);
  let asid = k.get(G.last_global_asid, 0);
  while (asid < MAX_ASID_AVAILABLE && testBit(k, G.global_asid_used, asid)) asid++;
  if (asid >= MAX_ASID_AVAILABLE || k.get(G.global_asid_available, 0) === 0) return 0;
  putBit(k, G.global_asid_used, asid, true);
  k.set(G.last_global_asid, 0, asid);
  k.add(G.global_asid_available, 0, -1);
  k.metrics.global_asids++;
  return asid;
}

/** use_global_asid(): give the mm a global ASID; its CPUs move over as they switch or get an IPI. */
function use_global_asid(k: Kernel, cpu: number, mm: number): void {
  if (k.get(k.M.global_asid, mm) !== 0 || k.get(k.G.global_asid_available, 0) === 0) return;
  const asid = allocate_global_asid(k);
  if (asid === 0) return;
  k.set(k.M.asid_transition, mm, 1);
  k.set(k.M.global_asid, mm, asid); // smp_store_release()
  if (k.trace !== null) k.trace.instant(cpu, "global ASID", { mm, asid });
}

/**
 * consider_global_asid(), on the IPI branch: sampled ((pid & 0x1f) ==
 * (jiffies & 0x1f)), for an mm active (loaded, not lazy) on more than 3 CPUs.
 */
export function consider_global_asid(k: Kernel, cpu: number, mm: number): void {
  if (k.get(k.M.global_asid, mm) !== 0) return;
  if ((k.get(k.T.pid, k.curr(cpu)) & 0x1f) !== (k.get(k.G.jiffies, 0) & 0x1f)) return;
  let active = 0;
  for (let c = 0; c < k.params.cpus; c++) {
    if (k.get(k.C.loaded_mm, c) === mm && k.get(k.C.is_lazy, c) === 0) active++;
  }
  if (active > 3) use_global_asid(k, cpu, mm);
}

/** broadcast_tlb_flush(): INVLPGB of the global ASID's kernel and user PCIDs; no IPI, no deferred bit. */
export function broadcast_tlb_flush(k: Kernel, mm: number, pages: number): void {
  const asid = mm_global_asid(k, mm);
  invlpgb_flush(k, kern_pcid(k, asid), pages);
  if (k.model.tlb.pti) invlpgb_flush(k, user_pcid(k, asid), pages);
  if (pages === 0) k.metrics.tlb_flushes_full++;
  else k.metrics.tlb_flushes_range++;
}

/**
 * finish_asid_transition(): while a CPU that runs the mm (or is between
 * mms) has not moved to the global ASID, the flush also goes by IPI (true);
 * once all have, the transition is over.
 */
export function finish_asid_transition(k: Kernel, mm: number): boolean {
  if (k.get(k.M.asid_transition, mm) === 0) return false;
  const asid = k.get(k.M.global_asid, mm);
  for (let c = 0; c < k.params.cpus; c++) {
    if (!cpumask_test(k, mm, c)) continue;
    const loaded = k.get(k.C.loaded_mm, c);
    if (loaded === LOADED_MM_SWITCHING) return true;
    if (loaded === mm && k.get(k.C.loaded_mm_asid, c) !== asid) return true;
  }
  k.set(k.M.asid_transition, mm, 0);
  return false;
}

/** mm_free_global_asid(): at mm teardown; reused only after the next wrap's flush. */
export function mm_free_global_asid(k: Kernel, mm: number): void {
  const asid = k.get(k.M.global_asid, mm);
  if (asid === 0) return;
  putBit(k, k.G.global_asid_freed, asid, true);
  k.set(k.M.global_asid, mm, 0);
  k.set(k.M.asid_transition, mm, 0);
  k.add(k.G.global_asid_available, 0, 1);
}
