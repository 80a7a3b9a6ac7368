// TLB shootdowns (arch/x86/mm/tlb.c): flush_tlb_mm_range() with its
// single-page ceiling, the IPIs to the CPUs in mm_cpumask and their
// flush_tlb_func() with the tlb_gen catch-up, and the syscalls that need
// them (munmap, mprotect, a driver's fixmap change).

import { raise_irq } from "../hw/apic.js";
import { PC_IPIS, PC_TLB_FLUSHES_RANGE } from "../machine/metrics.js";
import { IRQ_CALL_FUNCTION, PT_WORDS, TLB_PAGES } from "../machine/state.js";
import {
  broadcast_tlb_flush,
  consider_global_asid,
  finish_asid_transition,
  mm_global_asid,
  mm_needs_global_asid,
} from "./global_asid.js";
import type { Kernel } from "./kernel.js";
import { exitMmapHooks } from "./mm.js";
import { defPath, frameLocals } from "./path.js";
import { leave_mm, switch_mm_now } from "./tlb.js";
import {
  cpumask_clear,
  cpumask_test,
  ctxGenAddr,
  flush_tlb_local,
  flush_tlb_one_kernel,
  flush_tlb_one_user,
  is_global_asid,
  LOADED_MM_SWITCHING,
  mark_pages,
  PTRS_PER_PTE,
  pte_clear,
  pte_present_beyond,
  pte_present_in,
  TLB_SINGLE_PAGE_FLUSH_CEILING,
} from "./tlbstate.js";

// --- flush_tlb_func -------------------------------------------------------------

/**
 * flush_tlb_func(info of `initiator`) on `cpu` (IRQs off: local with
 * preemption off and nothing else touching cpu_tlbstate, or the IPI handler).
 * Catches the loaded ASID up from its tlb_gen to the mm's, ranged only when
 * exactly one generation behind and this request is that generation.
 */
export function flush_tlb_func(k: Kernel, cpu: number, initiator: number): void {
  const C = k.C;
  const mm = k.get(C.fi_mm, initiator);
  const loaded = k.get(C.loaded_mm, cpu);
  if (mm !== loaded) {
    if (mm !== 0) cpumask_clear(k, mm, cpu); // TLB_REMOTE_WRONG_CPU
    return;
  }
  if (loaded === 0) return;
  // v6.15+: the global-ASID reload and check come before the is_lazy test.
  // The reload is switch_mm_irqs_off(NULL, loaded_mm), which clears is_lazy
  // (was_lazy); a lazy CPU already on the global ASID stays lazy and loaded.
  if (mm_needs_global_asid(k, loaded, k.get(C.loaded_mm_asid, cpu))) {
    k.set(C.is_lazy, cpu, 0);
    switch_mm_now(k, cpu, loaded, k.get(k.M.tlb_gen, loaded));
  }
  if (is_global_asid(k, k.get(C.loaded_mm_asid, cpu))) return; // kept up to date by INVLPGB
  if (k.get(C.is_lazy, cpu) !== 0) {
    leave_mm(k, cpu);
    return;
  }
  const asid = k.get(C.loaded_mm_asid, cpu);
  const ga = ctxGenAddr(k, cpu, asid);
  const local = k.w[ga];
  const mmGen = k.get(k.M.tlb_gen, mm);
  const want = k.get(C.fi_gen, initiator);
  if (want <= local || mmGen === local) return;
  const pages = k.get(C.fi_pages, initiator);
  if (pages !== 0 && want === local + 1 && want === mmGen) {
    for (let p = 0; p < pages; p++) flush_tlb_one_user(k, cpu, p);
    k.metrics.tlb_flushes_range++;
    k.pcpu(cpu, PC_TLB_FLUSHES_RANGE);
  } else {
    flush_tlb_local(k, cpu);
  }
  k.mem.write(ga, mmGen);
}

/** should_flush_tlb(): is `cpu` worth an IPI for a flush of `mm`? */
function should_flush_tlb(k: Kernel, cpu: number, mm: number): boolean {
  if (k.get(k.C.is_lazy, cpu) !== 0) return false;
  const loaded = k.get(k.C.loaded_mm, cpu);
  if (loaded === LOADED_MM_SWITCHING) return !k.model.variants.has("fea4e317f9e7");
  return loaded === mm;
}

/** The CALL_FUNCTION IPI: run every queued request, then release its initiator (csd unlock). */
export function flush_smp_call_function_queue(k: Kernel, cpu: number): void {
  const f = k.C.csd_pending;
  for (let i = 0; i < k.params.cpus; i++) {
    const a = f.at + cpu * f.stride + (i >> 5);
    if ((k.w[a] & (1 << (i & 31))) === 0) continue;
    k.mem.write(a, k.w[a] & ~(1 << (i & 31)));
    flush_tlb_func(k, cpu, i);
    k.add(k.C.fi_waiting, i, -1);
  }
}

// --- flush_tlb_mm_range -----------------------------------------------------------

/**
 * native_flush_tlb_multi(): a shootdown IPI to each CPU of mm_cpumask that
 * should_flush_tlb() picks; to every CPU of the mask (on_each_cpu_mask) when
 * page tables were freed or while mm_in_asid_transition() (v6.15).
 */
function flush_tlb_multi(k: Kernel, cpu: number, mm: number): void {
  const C = k.C;
  const all = k.get(C.fi_freed, cpu) !== 0 || (k.model.tlb.invlpgb && k.get(k.M.asid_transition, mm) !== 0);
  for (let c = 0; c < k.params.cpus; c++) {
    if (c === cpu || !cpumask_test(k, mm, c)) continue;
    if (!all && !should_flush_tlb(k, c, mm)) continue;
    const f = C.csd_pending;
    const a = f.at + c * f.stride + (cpu >> 5);
    k.mem.write(a, k.w[a] | (1 << (cpu & 31)));
    k.add(C.fi_waiting, cpu, 1);
    k.metrics.ipis++;
    k.pcpu(cpu, PC_IPIS);
    k.charge(k.costs.ipi_send);
    raise_irq(k, c, IRQ_CALL_FUNCTION);
  }
}

/**
 * flush_tlb_mm_range()'s locals: a0 = pages from 0 (0 or more than the
 * ceiling: TLB_FLUSH_ALL); a1 = freed_tables and the mm (0: current->mm,
 * resolved at the first step).
 */
export const FLUSH_RANGE = frameLocals(
  { pages: [0], freed: [1, 0, 1], mm: [1, 1, 31, "mm"] },
  "flush_tlb_mm_range",
);

/** The devices whose PASID table maps `mm` (an SVA bond: the IOMMU's mmu notifier is registered). */
function sva_devices(k: Kernel, mm: number): number {
  let n = 0;
  for (let d = 0; d < k.model.devices.length; d++) {
    const pt = k.D.pt.at + d * k.D.pt.stride;
    for (let i = 0; i < k.L.counts.ptSlots; i++) {
      const a = pt + i * PT_WORDS;
      if (k.w[a] !== 0 && k.w[a + 1] === mm) {
        n++;
        break;
      }
    }
  }
  return n;
}

/**
 * flush_tlb_mm_range(mm, 0, pages, freed_tables), its locals in FLUSH_RANGE.
 * The PTE change and inc_mm_tlb_gen() are one step (a full barrier), so any
 * CPU that reads the new tlb_gen also sees the new PTEs. Callers: munmap and
 * mprotect (current->mm), dup_mmap()'s flush_tlb_mm(oldmm) at fork and
 * exit_mmap()'s tlb_finish_mmu() (a fullmm gather: TLB_FLUSH_ALL, freed_tables).
 */
export const P_FLUSH_TLB_MM_RANGE = defPath("flush_tlb_mm_range", [
  [
    "inc_mm_tlb_gen",
    (k, cpu, fr) => {
      const C = k.C;
      k.add(C.preempt_count, cpu, 1); // get_cpu()
      let mm = FLUSH_RANGE.mm.get(k, fr);
      if (mm === 0) {
        mm = k.get(k.T.mm, k.curr(cpu));
        FLUSH_RANGE.mm.set(k, fr, mm);
      }
      const pages = FLUSH_RANGE.pages.get(k, fr);
      const gen = k.add(k.M.tlb_gen, mm, 1);
      k.set(C.fi_mm, cpu, mm);
      k.set(C.fi_pages, cpu, pages > TLB_SINGLE_PAGE_FLUSH_CEILING ? 0 : pages);
      k.set(C.fi_gen, cpu, gen);
      k.set(C.fi_freed, cpu, FLUSH_RANGE.freed.get(k, fr));
      k.charge(k.costs.atomic);
    },
  ],
  [
    "flush_tlb_multi",
    (k, cpu) => {
      const C = k.C;
      const mm = k.get(C.fi_mm, cpu);
      if (mm_global_asid(k, mm) !== 0) {
        broadcast_tlb_flush(k, mm, k.get(C.fi_pages, cpu));
        if (!finish_asid_transition(k, mm)) return; // every CPU on the global ASID: no IPI
      }
      flush_tlb_multi(k, cpu, mm);
      if (k.model.tlb.invlpgb) consider_global_asid(k, cpu, mm);
    },
  ],
  [
    "flush_tlb_func",
    (k, cpu) => {
      if (k.get(k.C.loaded_mm, cpu) === k.get(k.C.fi_mm, cpu)) flush_tlb_func(k, cpu, cpu);
    },
  ],
  [
    "csd_lock_wait",
    (k, cpu, fr) => {
      // Spin (IRQs on: IPIs to this CPU are still served) until every target ran it.
      if (k.get(k.C.fi_waiting, cpu) > 0) k.jump(fr, P_FLUSH_TLB_MM_RANGE.pc.csd_lock_wait);
    },
  ],
  [
    "put_cpu",
    (k, cpu, fr) => {
      // The flush is complete on every CPU that ran the mm: from now on no
      // user access may use an entry older than it. Until here, a CPU that
      // has not taken its IPI yet may still use the old translation, as the
      // kernel allows (the pages are not freed before the flush completes).
      const mm = FLUSH_RANGE.mm.get(k, fr);
      const pages = FLUSH_RANGE.pages.get(k, fr);
      mark_pages(k, mm, pages === 0 ? TLB_PAGES : pages, k.get(k.C.fi_gen, cpu));
      k.set(k.C.fi_mm, cpu, 0);
      k.add(k.C.preempt_count, cpu, -1);
      if (sva_devices(k, mm) === 0) k.ret(cpu); // no secondary TLB to invalidate
    },
  ],
  [
    "mmu_notifier_arch_invalidate_secondary_tlbs",
    (k, cpu, fr) => {
      // intel_arch_invalidate_secondary_tlbs(): the IOMMU's IOTLB and the
      // device TLB (ATS) of every device bound to the mm, for the range,
      // each waited for (qi_submit_sync). The PASID-table entry stays.
      const n = sva_devices(k, FLUSH_RANGE.mm.get(k, fr));
      k.metrics.secondary_tlb_flushes += n;
      k.charge(n * k.costs.secondary_tlb_flush);
      if (k.trace !== null)
        k.trace.instant(cpu, "secondary TLB flush", { mm: FLUSH_RANGE.mm.get(k, fr), devices: n });
    },
  ],
]);

/**
 * flush_tlb_mm(mm) = flush_tlb_mm_range(mm, 0, TLB_FLUSH_ALL, 0, true): what
 * dup_mmap() ends with for the parent's mm (its PTEs were write-protected
 * for COW), and what x86's tlb_flush() does for exit_mmap()'s fullmm gather
 * (tlb_finish_mmu(), freed_tables from free_pgtables()).
 */
export function flush_tlb_mm(k: Kernel, cpu: number, mm: number): void {
  k.call(
    cpu,
    P_FLUSH_TLB_MM_RANGE,
    FLUSH_RANGE.pages.put(0),
    FLUSH_RANGE.freed.put(1) | FLUSH_RANGE.mm.put(mm),
  );
}

exitMmapHooks.push((k, mm, cpu) => {
  pte_clear(k, mm, Number.MAX_SAFE_INTEGER); // unmap_vmas(): every PTE goes
  flush_tlb_mm(k, cpu, mm);
});

// --- the syscalls ---------------------------------------------------------------

export const MEMOP_MUNMAP = 1;
export const MEMOP_MPROTECT = 2;
/** munmap's `tables`: freed when no present PTE of the mm is left (the mapping was alone in its page table). */
export const TABLES_AUTO = 0;
/** munmap's `tables: kept`: other mappings share the page table; free_pgtables() frees nothing. */
export const TABLES_KEPT = 1;
/** munmap's `tables: freed`: the page table goes even though the model still tracks present pages. */
export const TABLES_FREED = 2;
/** mprotect's `change: restrict` (a permission removed): pte_needs_flush() is true. */
export const CHANGE_RESTRICT = 0;
/** mprotect's `change: upgrade` (RO->RW, +X): _PAGE_RW and _PAGE_NX are flush_on_change bits on x86: a flush. */
export const CHANGE_UPGRADE = 1;
/** mprotect's `change: from-none` (PROT_NONE -> accessible): the old PTEs are not present: no flush. */
export const CHANGE_FROM_NONE = 2;

/** do_vmi_munmap()'s locals: a0 = pages; a1 = the op (MEMOP_*), its mode (TABLES_* or CHANGE_*) and the count left. */
export const MEMOP = frameLocals({ pages: [0], op: [1, 0, 2], mode: [1, 2, 2], count: [1, 4, 28] });

/**
 * munmap()/mprotect() of pages [0, pages), `count` times in one syscall:
 * that many ranges alike (each as populated as the first), flushed one by
 * one without a return to user. The mmu_gather flushes only what it
 * gathered: no present PTE in the range, no flush (tlb_flush_mmu_tlbonly()
 * with nothing cleared); mprotect from PROT_NONE changes no present PTE
 * (pte_needs_flush()); a munmap that frees the page table (free_pgtables()
 * -> pte_free_tlb() adds the table's own address with PAGE_SIZE to the
 * gather, include/asm-generic/tlb.h, and sets freed_tables) keeps its range
 * (the model's pages are [0, n) of their table, so the range does not grow)
 * and reaches lazy CPUs too: 6.1 under QEMU made 50 one-page ranged flushes
 * for 50 one-page munmaps of an isolated mapping (docs/vs-kernel.md).
 */
export const P_MEMOP = defPath("do_vmi_munmap", [
  [
    "unmap_region",
    (k, cpu, fr) => {
      const mm = k.get(k.T.mm, k.curr(cpu));
      const pages = MEMOP.pages.get(k, fr);
      const op = MEMOP.op.get(k, fr);
      const mode = MEMOP.mode.get(k, fr);
      if (!pte_present_in(k, mm, pages)) return; // the gather is empty: no flush
      if (op === MEMOP_MPROTECT) {
        if (mode === CHANGE_FROM_NONE) return; // !(oldpte & _PAGE_PRESENT): pte_needs_flush() false
        k.call(cpu, P_FLUSH_TLB_MM_RANGE, FLUSH_RANGE.pages.put(pages), FLUSH_RANGE.mm.put(mm));
        return;
      }
      const freed =
        pages >= PTRS_PER_PTE ||
        mode === TABLES_FREED ||
        (mode === TABLES_AUTO && pte_present_beyond(k, mm, pages) === false);
      k.call(
        cpu,
        P_FLUSH_TLB_MM_RANGE,
        FLUSH_RANGE.pages.put(pages), // past the 33-page ceiling flush_tlb_mm_range() flushes all
        FLUSH_RANGE.freed.put(freed ? 1 : 0) | FLUSH_RANGE.mm.put(mm),
      );
    },
  ],
  [
    "tlb_finish_mmu",
    (k, cpu, fr) => {
      const left = MEMOP.count.get(k, fr) - 1;
      if (left > 0) {
        MEMOP.count.set(k, fr, left);
        k.jump(fr, 0);
        return;
      }
      if (MEMOP.op.get(k, fr) === MEMOP_MUNMAP)
        pte_clear(k, k.get(k.T.mm, k.curr(cpu)), MEMOP.pages.get(k, fr));
    },
  ],
]);

const SET_FIXMAP = frameLocals({ pages: [0] });

/**
 * A driver's set_pte_vaddr() of a0 fixmap pages (kmap_local, early_ioremap):
 * with preemption off, flush_tlb_one_kernel() on this CPU for each.
 */
export const P_SET_FIXMAP = defPath("set_pte_vaddr", [
  [
    "flush_tlb_one_kernel",
    (k, cpu, fr) => {
      const pages = SET_FIXMAP.pages.get(k, fr);
      for (let p = 0; p < pages; p++) flush_tlb_one_kernel(k, cpu, p);
    },
  ],
]);
