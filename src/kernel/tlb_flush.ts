// TLB shootdowns (arch/x86/mm/tlb.c): flush_tlb_mm_range() with its
// single-page ceiling, the IPIs to the CPUs in mm_cpumask and their
// flush_tlb_func() with the tlb_gen catch-up, and the syscalls that need
// them (munmap, mprotect, a driver's fixmap change).

import { raise_irq } from "../hw/apic.js";
import { PC_IPIS, PC_TLB_FLUSHES_RANGE } from "../machine/metrics.js";
import { IRQ_CALL_FUNCTION } from "../machine/state.js";
import {
  broadcast_tlb_flush,
  consider_global_asid,
  finish_asid_transition,
  mm_global_asid,
  mm_needs_global_asid,
} from "./global_asid.js";
import type { Kernel } from "./kernel.js";
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
  if (k.get(C.is_lazy, cpu) !== 0) {
    leave_mm(k, cpu);
    return;
  }
  if (mm_needs_global_asid(k, loaded, k.get(C.loaded_mm_asid, cpu))) {
    // A straggler: reload onto the mm's global ASID (switch_mm_irqs_off(NULL, loaded_mm)).
    switch_mm_now(k, cpu, loaded, k.get(k.M.tlb_gen, loaded));
  }
  // Broadcast ASIDs are always kept up to date with INVLPGB.
  if (is_global_asid(k, k.get(C.loaded_mm_asid, cpu))) return;
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

/** flush_tlb_multi(): a shootdown IPI to each CPU of mm_cpumask that should_flush_tlb() picks. */
function flush_tlb_multi(k: Kernel, cpu: number, mm: number): void {
  const C = k.C;
  const freed = k.get(C.fi_freed, cpu) !== 0;
  for (let c = 0; c < k.params.cpus; c++) {
    if (c === cpu || !cpumask_test(k, mm, c)) continue;
    if (!freed && !should_flush_tlb(k, c, mm)) continue;
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

const FLUSH_RANGE = frameLocals({ pages: [0], freed: [1] });

/**
 * flush_tlb_mm_range(current->mm, 0, pages): a0 = pages, a1 = freed_tables.
 * The PTE change and inc_mm_tlb_gen() are one step (a full barrier), so any
 * CPU that reads the new tlb_gen also sees the new PTEs.
 */
export const P_FLUSH_TLB_MM_RANGE = defPath("flush_tlb_mm_range", [
  [
    "inc_mm_tlb_gen",
    (k, cpu, fr) => {
      const C = k.C;
      k.add(C.preempt_count, cpu, 1); // get_cpu()
      const mm = k.get(k.T.mm, k.curr(cpu));
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
      mark_pages(k, k.get(k.C.fi_mm, cpu), FLUSH_RANGE.pages.get(k, fr), k.get(k.C.fi_gen, cpu));
      k.set(k.C.fi_mm, cpu, 0);
      k.add(k.C.preempt_count, cpu, -1);
    },
  ],
]);

// --- the syscalls ---------------------------------------------------------------

export const MEMOP_MUNMAP = 1;
export const MEMOP_MPROTECT = 2;

/** do_vmi_munmap()'s locals: a0 = pages; a1 = the op (MEMOP_*) and how many times (the count left). */
export const MEMOP = frameLocals({ pages: [0], op: [1, 0, 2], count: [1, 2, 30] });

/**
 * munmap()/mprotect() of pages [0, pages), `count` times in one syscall:
 * that many flushes without a return to user.
 */
export const P_MEMOP = defPath("do_vmi_munmap", [
  [
    "unmap_region",
    (k, cpu, fr) => {
      const pages = MEMOP.pages.get(k, fr);
      const freed = MEMOP.op.get(k, fr) === MEMOP_MUNMAP && pages >= PTRS_PER_PTE ? 1 : 0;
      k.call(cpu, P_FLUSH_TLB_MM_RANGE, FLUSH_RANGE.pages.put(pages), FLUSH_RANGE.freed.put(freed));
    },
  ],
  [
    "tlb_finish_mmu",
    (k, _cpu, fr) => {
      const left = MEMOP.count.get(k, fr) - 1;
      if (left <= 0) return;
      MEMOP.count.set(k, fr, left);
      k.jump(fr, 0);
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
