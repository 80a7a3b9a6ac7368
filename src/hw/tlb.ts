// The hardware side of address-space IDs: CR3 (page table, PCID, the PTI
// user bits, NOFLUSH) and a small PCID-tagged TLB of user translations that
// keeps every entry until an invalidation the architecture requires removes
// it (AMD APM / SDM rules, reference section 5):
//   - a CR3 write with PCIDE=1 and bit 63 clear invalidates the NEW PCID's
//     non-global entries; with bit 63 set it invalidates nothing;
//   - with PCIDE=0 only PCID 0 is cached and every CR3 write flushes it;
//   - INVLPG removes the address in the current PCID; INVPCID type 0 one
//     address in a given PCID, type 1 every entry of a given PCID.
// A model that flushed more than this would hide missing-flush bugs.
// Entries remember the ctx_id of the mm whose page table filled them and the
// mm's tlb_gen then; `user_access` checks them against the mm's last
// completed flush of the page (the `tlb-stale` property: between a flush
// request and its completion the kernel lets other CPUs use the old entry).

import { PC_CR3_WRITES, PC_TLB_FLUSHES_FULL, PC_USER_ASID_FLUSHES } from "../machine/metrics.js";
import { TLB_ENTRIES, TLB_PAGES, TLBE_WORDS } from "../machine/state.js";
import type { Hw } from "./hw.js";

export const PTI_USER_PCID_BIT = 0x800; // X86_CR3_PTI_PCID_USER_BIT (11)
/** The kernel-PCID part of CR3 that the entry code uses as a bit index (`andq $0x7FF`). */
export const KERN_PCID_MASK = 0x7ff;
/** init_mm's ctx_id; user mms get mm.gen + 1 (>= 2), never reused, as last_mm_ctx_id does. */
export const INIT_MM_CTX_ID = 1;

/** ctx_id of an mm slot (0 = init_mm). mm.gen is the allocation counter, unique per allocation. */
export function ctx_id(k: Hw, mm: number): number {
  return mm === 0 ? INIT_MM_CTX_ID : k.get(k.M.gen, mm) + 1;
}

/** kern_pcid(asid) = asid + 1 (PCID 0 is left to PCID-unaware code); 0 without the PCID feature. */
export function kern_pcid(k: Hw, asid: number): number {
  return k.model.tlb.pcid ? asid + 1 : 0;
}

export function user_pcid(k: Hw, asid: number): number {
  return kern_pcid(k, asid) | PTI_USER_PCID_BIT;
}

function tlbBase(k: Hw, cpu: number): number {
  const f = k.C.tlb;
  return f.at + cpu * f.stride;
}

function countFlush(k: Hw, cpu: number, pcid: number, user: boolean): void {
  k.metrics.tlb_flushes_full++;
  k.pcpu(cpu, PC_TLB_FLUSHES_FULL);
  if (user) {
    k.metrics.user_asid_flushes++;
    k.pcpu(cpu, PC_USER_ASID_FLUSHES);
  }
  if (k.trace !== null) k.trace.instant(cpu, user ? "user PCID flush" : "PCID flush", { pcid });
}

/** Remove every entry of PCID `pcid` (CR3 write without NOFLUSH, INVPCID type 1). */
function tlb_flush_pcid(k: Hw, cpu: number, pcid: number): void {
  const b = tlbBase(k, cpu);
  const w = k.w;
  for (let i = 0; i < TLB_ENTRIES; i++) {
    const a = b + i * TLBE_WORDS;
    if (w[a] === pcid + 1) k.mem.write(a, 0);
  }
}

/** Remove the entry for (`pcid`, `page`) (INVLPG in the current PCID, INVPCID type 0). */
function tlb_flush_one(k: Hw, cpu: number, pcid: number, page: number): void {
  if (page >= TLB_PAGES) return; // the model keeps no entries for untracked pages
  const b = tlbBase(k, cpu);
  const w = k.w;
  for (let i = 0; i < TLB_ENTRIES; i++) {
    const a = b + i * TLBE_WORDS;
    if (w[a] === pcid + 1 && w[a + 1] === page) k.mem.write(a, 0);
  }
}

/**
 * MOV to CR3. `noflush` is bit 63 (#GP without PCIDE, which the kernel never
 * does: a WARN here). Counts the write, and the flush when it is one.
 */
export function write_cr3(
  k: Hw,
  cpu: number,
  mm: number,
  pcid: number,
  user: boolean,
  noflush: boolean,
): void {
  const C = k.C;
  if (!k.model.tlb.pcid && (noflush || pcid !== 0)) {
    k.warn("cr3", `cpu ${cpu}: CR3 with PCID ${pcid} / NOFLUSH while CR4.PCIDE is clear`, cpu);
  }
  k.set(C.cr3_mm, cpu, mm);
  k.set(C.cr3_pcid, cpu, pcid);
  k.set(C.cr3_user, cpu, user ? 1 : 0);
  k.set(C.cr3_noflush, cpu, noflush ? 1 : 0);
  k.metrics.cr3_writes++;
  k.pcpu(cpu, PC_CR3_WRITES);
  k.charge(k.costs.cr3_write);
  if (noflush) return;
  k.charge(k.costs.tlb_flush);
  tlb_flush_pcid(k, cpu, pcid);
  countFlush(k, cpu, pcid, user || (pcid & PTI_USER_PCID_BIT) !== 0);
}

/** write_cr3(__read_cr3()): CR3[63] reads as 0, so this flushes the current PCID. */
export function reload_cr3(k: Hw, cpu: number): void {
  const C = k.C;
  write_cr3(k, cpu, k.get(C.cr3_mm, cpu), k.get(C.cr3_pcid, cpu), k.get(C.cr3_user, cpu) !== 0, false);
}

/** INVLPG: the address in the current PCID. */
export function invlpg(k: Hw, cpu: number, page: number): void {
  k.charge(k.costs.invlpg);
  tlb_flush_one(k, cpu, k.get(k.C.cr3_pcid, cpu), page);
}

/** INVPCID type 0: one address in `pcid`. */
export function invpcid_flush_one(k: Hw, cpu: number, pcid: number, page: number): void {
  k.charge(k.costs.invpcid);
  tlb_flush_one(k, cpu, pcid, page);
}

/** INVPCID type 1: every entry of `pcid`. */
export function invpcid_flush_single_context(k: Hw, cpu: number, pcid: number): void {
  k.charge(k.costs.invpcid);
  tlb_flush_pcid(k, cpu, pcid);
  countFlush(k, cpu, pcid, (pcid & PTI_USER_PCID_BIT) !== 0);
}

/**
 * A user-mode access to `page` of the current task's mm, through the TLB:
 * a hit must be a translation of this mm no older than the mm's last
 * completed flush of the page (`tlb-stale`); a miss walks the page table (CR3's)
 * and fills an entry, evicting round-robin (eviction is always allowed).
 */
export function user_access(k: Hw, cpu: number, mm: number, page: number): void {
  const C = k.C;
  const pcid = k.get(C.cr3_pcid, cpu);
  if (k.get(C.cr3_mm, cpu) !== mm) {
    k.warn("cr3", `cpu ${cpu}: user mode with CR3 on mm ${k.get(C.cr3_mm, cpu)}, task's mm ${mm}`, cpu);
  }
  const ctx = ctx_id(k, mm);
  const b = tlbBase(k, cpu);
  const w = k.w;
  for (let i = 0; i < TLB_ENTRIES; i++) {
    const a = b + i * TLBE_WORDS;
    if (w[a] !== pcid + 1 || w[a + 1] !== page) continue;
    if (w[a + 2] !== ctx) {
      k.warn(
        "tlb-stale",
        `cpu ${cpu}: page ${page} of mm ${mm} hit PCID ${pcid}'s entry of ctx ${w[a + 2]}`,
        cpu,
      );
      return;
    }
    const last = k.w[k.M.page_gen.at + mm * k.M.page_gen.stride + page];
    if (w[a + 3] < last) {
      k.warn(
        "tlb-stale",
        `cpu ${cpu}: page ${page} of mm ${mm} used through an entry of tlb_gen ${w[a + 3]}, flushed at ${last}`,
        cpu,
      );
    }
    return;
  }
  const n = k.get(C.tlb_next, cpu);
  const a = b + n * TLBE_WORDS;
  k.mem.write(a, pcid + 1);
  k.mem.write(a + 1, page);
  k.mem.write(a + 2, ctx);
  k.mem.write(a + 3, k.get(k.M.tlb_gen, mm));
  k.set(C.tlb_next, cpu, (n + 1) % TLB_ENTRIES);
  k.charge(k.costs.tlb_fill);
}
