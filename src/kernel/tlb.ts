// arch/x86/mm/tlb.c as steps: switch_mm_irqs_off() with choose_new_asid()
// and load_new_mm_cr3(), lazy TLB, the deferred user-PCID flush, and
// flush_tlb_mm_range() with its shootdown IPIs and flush_tlb_func().
// Semantics are current mainline's (v6.15 without global ASIDs: the CPU stays
// in mm_cpumask(prev) after a switch; should_flush_tlb() skips lazy CPUs and
// CPUs that run another mm, and IPIs a CPU in LOADED_MM_SWITCHING).
// Kernel variant `fea4e317f9e7`: should_flush_tlb() without the SWITCHING
// test (the skipped-IPI window that commit closed).

import { ctx_id, kern_pcid, write_cr3 } from "../hw/tlb.js";
import { PC_ASID_SWITCHES } from "../machine/metrics.js";
import { MAX_ASID_AVAILABLE, TLB_PAGES } from "../machine/state.js";
import { mm_free_global_asid, mm_global_asid, mm_needs_global_asid } from "./global_asid.js";
import type { Kernel } from "./kernel.js";
import { mmdropHooks } from "./mm.js";
import { defPath, frameLocals } from "./path.js";
import {
  cpumask_clear,
  cpumask_set,
  cpumask_test,
  ctxGenAddr,
  ctxIdAddr,
  invalidate_user_asid,
  is_global_asid,
  LOADED_MM_SWITCHING,
  mark_pages,
  putBit,
} from "./tlbstate.js";

// --- choose_new_asid / switch_mm_irqs_off -----------------------------------------

/**
 * switch_mm_irqs_off()'s locals: a0 = next mm; a1 = `sw`, the ASID slot
 * chosen, whether loading it flushes, and whether IRQs go back on at the
 * end (the ASID 11 bits: global ones go up to 2045). choose_new_asid()
 * returns asid | flush as such a word, which load_new_mm_cr3() and
 * switch_mm_finish() take whole.
 */
const SWITCH_MM = frameLocals(
  {
    next: [0, 0, 32, "mm"],
    sw: [1],
    asid: [1, 0, 11],
    flush: [1, 11, 1],
    irqsOn: [1, 12, 1],
  },
  "switch_mm_irqs_off",
);
const SW_FLUSH = SWITCH_MM.flush.put(1);

/** clear_asid_other(): forget every dynamic slot but the loaded one. */
function clear_asid_other(k: Kernel, cpu: number): void {
  if (!k.model.tlb.pti) k.warn("asid-slot", `cpu ${cpu}: invalidate_other without PTI`, cpu);
  const loaded = k.get(k.C.loaded_mm_asid, cpu);
  for (let a = 0; a < k.model.tlb.asidSlots; a++) if (a !== loaded) k.mem.write(ctxIdAddr(k, cpu, a), 0);
  k.set(k.C.invalidate_other, cpu, 0);
}

/**
 * choose_new_asid(next, next_tlb_gen): the slot already holding next's ctx_id
 * (flush if its tlb_gen is behind), else the round-robin cursor's slot
 * (slot 0 follows the last one), which always flushes. Returns asid | SW_FLUSH.
 */
export function choose_new_asid(k: Kernel, cpu: number, next: number, gen: number): number {
  const t = k.model.tlb;
  if (!t.pcid) return 0 | SW_FLUSH;
  // Global ASIDs are kept up to date on every CPU by INVLPGB: never a flush.
  const global = mm_global_asid(k, next);
  if (global !== 0) return global;
  if (k.get(k.C.invalidate_other, cpu) !== 0) clear_asid_other(k, cpu);
  const ctx = ctx_id(k, next);
  for (let a = 0; a < t.asidSlots; a++) {
    if (k.w[ctxIdAddr(k, cpu, a)] !== ctx) continue;
    return a | (k.w[ctxGenAddr(k, cpu, a)] < gen ? SW_FLUSH : 0);
  }
  let a = k.get(k.C.next_asid, cpu);
  k.set(k.C.next_asid, cpu, a + 1);
  if (a >= t.asidSlots) {
    a = 0;
    k.set(k.C.next_asid, cpu, 1);
  }
  return a | SW_FLUSH;
}

/**
 * load_new_mm_cr3(): a flushing load records {ctx_id, tlb_gen} in the slot
 * and defers the user PCID's flush; otherwise the NOFLUSH load keeps both.
 */
function load_new_mm_cr3(k: Kernel, cpu: number, next: number, sw: number): void {
  const asid = SWITCH_MM.asid.of(sw);
  k.metrics.asid_switches++;
  k.pcpu(cpu, PC_ASID_SWITCHES);
  if (SWITCH_MM.flush.of(sw) !== 0) {
    k.mem.write(ctxIdAddr(k, cpu, asid), ctx_id(k, next));
    k.mem.write(ctxGenAddr(k, cpu, asid), k.get(k.C.sw_gen, cpu));
    invalidate_user_asid(k, cpu, asid);
    write_cr3(k, cpu, next, kern_pcid(k, asid), false, false);
  } else {
    write_cr3(k, cpu, next, kern_pcid(k, asid), false, true);
  }
}

/** The end of switch_mm_irqs_off(): loaded_mm = next; the slot must name next. */
function switch_mm_finish(k: Kernel, cpu: number, next: number, sw: number): void {
  const asid = SWITCH_MM.asid.of(sw);
  k.set(k.C.loaded_mm, cpu, next);
  k.set(k.C.loaded_mm_asid, cpu, asid);
  if (asid < k.model.tlb.asidSlots && k.w[ctxIdAddr(k, cpu, asid)] !== ctx_id(k, next)) {
    k.warn(
      "asid-slot",
      `cpu ${cpu}: slot ${asid} holds ctx ${k.w[ctxIdAddr(k, cpu, asid)]}, loaded mm ${next}`,
      cpu,
    );
  }
  if (SWITCH_MM.irqsOn.of(sw) !== 0) k.set(k.C.irqs_off, cpu, 0);
}

/**
 * The SWITCHING store and the mm_cpumask bit: an atomic if new, else
 * smp_mb() (83b0177a6c48); either drains the store buffer, so the tlb_gen
 * load that follows cannot pass the store. Variant `83b0177a6c48` (before
 * the fix): with the bit already set nothing fences, and the store waits in
 * this CPU's store buffer (x86-TSO) while the load goes ahead; it drains at
 * the serializing CR3 write. Remote CPUs read the old loaded_mm meanwhile.
 */
function switch_mm_enter(k: Kernel, cpu: number, next: number): void {
  if (next !== 0 && !cpumask_test(k, next, cpu)) {
    k.set(k.C.loaded_mm, cpu, LOADED_MM_SWITCHING);
    cpumask_set(k, next, cpu); // LOCK BTS: a full barrier
  } else if (k.model.variants.has("83b0177a6c48") && next !== 0) {
    k.set(k.C.sb_loaded_mm, cpu, LOADED_MM_SWITCHING + 2);
  } else {
    k.set(k.C.loaded_mm, cpu, LOADED_MM_SWITCHING); // then smp_mb()
  }
  k.charge(k.costs.atomic);
}

/** Drain this CPU's store buffer (a serializing instruction: the CR3 write). */
function drain_store_buffer(k: Kernel, cpu: number): void {
  const sb = k.get(k.C.sb_loaded_mm, cpu);
  if (sb === 0) return;
  k.set(k.C.loaded_mm, cpu, sb - 2);
  k.set(k.C.sb_loaded_mm, cpu, 0);
}

/**
 * switch_mm_irqs_off(prev, next), its locals in SWITCH_MM. Runs with IRQs off (callers outside __schedule(), i.e. activate_mm
 * at exec, get them turned off and back on), so no shootdown IPI lands
 * inside; remote flushers see loaded_mm == LOADED_MM_SWITCHING meanwhile.
 */
export const P_SWITCH_MM = defPath("switch_mm_irqs_off", [
  [
    "switch_mm_irqs_off",
    (k, cpu, fr) => {
      const C = k.C;
      const next = SWITCH_MM.next.get(k, fr);
      const on = SWITCH_MM.irqsOn.put(k.get(C.irqs_off, cpu) === 0 ? 1 : 0);
      k.set(C.irqs_off, cpu, 1);
      const prev = k.get(C.loaded_mm, cpu);
      const wasLazy = k.get(C.is_lazy, cpu) !== 0;
      if (wasLazy) k.set(C.is_lazy, cpu, 0);
      if (prev === next) {
        const asid = k.get(C.loaded_mm_asid, cpu);
        const gen = k.get(k.M.tlb_gen, next); // after smp_mb(): a flush we were lazy for shows here
        if (mm_needs_global_asid(k, next, asid)) {
          // Transitioning to the mm's global ASID: reload (mm_needs_global_asid()).
          k.set(C.sw_gen, cpu, gen);
          SWITCH_MM.sw.set(k, fr, choose_new_asid(k, cpu, next, gen) | on);
          k.jump(fr, P_SWITCH_MM.pc.load_new_mm_cr3);
          return;
        }
        if (!wasLazy || is_global_asid(k, asid) || k.w[ctxGenAddr(k, cpu, asid)] >= gen) {
          if (on !== 0) k.set(C.irqs_off, cpu, 0);
          k.ret(cpu); // a thread switch, or lazy and up to date: no CR3 write
          return;
        }
        k.set(C.sw_gen, cpu, gen);
        SWITCH_MM.sw.set(k, fr, SWITCH_MM.asid.put(asid) | SW_FLUSH | on);
        k.jump(fr, P_SWITCH_MM.pc.load_new_mm_cr3);
        return;
      }
      SWITCH_MM.sw.set(k, fr, on);
      switch_mm_enter(k, cpu, next);
    },
  ],
  [
    "choose_new_asid",
    (k, cpu, fr) => {
      const next = SWITCH_MM.next.get(k, fr);
      const gen = next === 0 ? 0 : k.get(k.M.tlb_gen, next);
      k.set(k.C.sw_gen, cpu, gen);
      const on = SWITCH_MM.irqsOn.put(SWITCH_MM.irqsOn.get(k, fr));
      SWITCH_MM.sw.set(k, fr, choose_new_asid(k, cpu, next, gen) | on);
    },
  ],
  [
    "load_new_mm_cr3",
    (k, cpu, fr) => {
      drain_store_buffer(k, cpu);
      load_new_mm_cr3(k, cpu, SWITCH_MM.next.get(k, fr), SWITCH_MM.sw.get(k, fr));
    },
  ],
  [
    "loaded_mm = next",
    (k, cpu, fr) => switch_mm_finish(k, cpu, SWITCH_MM.next.get(k, fr), SWITCH_MM.sw.get(k, fr)),
  ],
]);

/**
 * enter_lazy_tlb(): a kernel thread keeps the mm loaded; flushes may skip
 * this CPU. Under `lazy_tlb: init-mm` (4.15-4.18, where
 * tlb_defer_switch_to_init_mm() deferred only without PCID) a CPU with PCID
 * switches to init_mm at once (a slot lookup or allocation like any switch)
 * and, as switch_mm_irqs_off() did then, leaves mm_cpumask(prev).
 */
export function enter_lazy_tlb(k: Kernel, cpu: number): void {
  const prev = k.get(k.C.loaded_mm, cpu);
  if (prev === 0) return; // init_mm is never lazy
  if (k.model.tlb.lazyTlb === "init-mm" && k.model.tlb.pcid) {
    switch_mm_now(k, cpu, 0, 0);
    cpumask_clear(k, prev, cpu);
    return;
  }
  k.set(k.C.is_lazy, cpu, 1);
}

/** leave_mm(): switch to init_mm at once (in an IPI handler, IRQs off: one atomic action). */
export function leave_mm(k: Kernel, cpu: number): void {
  k.set(k.C.is_lazy, cpu, 0);
  switch_mm_now(k, cpu, 0, 0);
}

/** switch_mm_irqs_off(NULL, mm) as one atomic action (IRQs off, in an IPI handler). */
export function switch_mm_now(k: Kernel, cpu: number, mm: number, gen: number): void {
  switch_mm_enter(k, cpu, mm);
  k.set(k.C.sw_gen, cpu, gen);
  const sw = choose_new_asid(k, cpu, mm, gen);
  load_new_mm_cr3(k, cpu, mm, sw);
  switch_mm_finish(k, cpu, mm, sw);
}

// --- boot and teardown ------------------------------------------------------------

/** initialize_tlbstate_and_flush(): init_mm in slot 0 (ctx 1), next_asid 1, a flushing CR3. */
export function tlb_boot_cpu(k: Kernel, cpu: number): void {
  const C = k.C;
  k.set(C.loaded_mm, cpu, 0);
  k.set(C.loaded_mm_asid, cpu, 0);
  k.set(C.next_asid, cpu, 1);
  k.mem.write(ctxIdAddr(k, cpu, 0), ctx_id(k, 0));
  k.set(C.cr3_mm, cpu, 0);
  k.set(C.cr3_pcid, cpu, kern_pcid(k, 0));
}

/**
 * The global ASID space at boot: the cursor at the top (the first allocation
 * resets and flushes); machine.global_asids_in_use ASIDs above the dynamic
 * ones already held by mms outside the scenario. jiffies from
 * machine.initial_jiffies (the kernel's INITIAL_JIFFIES).
 */
export function tlb_boot_global(k: Kernel): void {
  const t = k.model.tlb;
  k.set(k.G.last_global_asid, 0, MAX_ASID_AVAILABLE);
  k.set(k.G.global_asid_available, 0, Math.max(0, MAX_ASID_AVAILABLE - t.asidSlots - 1 - t.globalAsidsInUse));
  for (let i = 0; i < t.globalAsidsInUse; i++) putBit(k, k.G.global_asid_used, t.asidSlots + i, true);
  if (t.invlpgb) k.set(k.G.jiffies, 0, t.initialJiffies);
}

/** At __mmdrop(): no CPU may still have the mm loaded; its TLB state goes with the struct. */
export function tlb_mm_free(k: Kernel, mm: number, cpu: number): void {
  for (let c = 0; c < k.params.cpus; c++) {
    if (k.get(k.C.loaded_mm, c) === mm)
      k.warn("mm-use-after-free", `mm ${mm} freed while loaded on cpu ${c}`, cpu);
  }
  k.set(k.M.tlb_gen, mm, 0);
  mm_free_global_asid(k, mm);
  const m = k.M.cpumask;
  for (let i = 0; i < m.len; i++) k.mem.write(m.at + mm * m.stride + i, 0);
  mark_pages(k, mm, TLB_PAGES, 0);
  k.set(k.M.ptes, mm, 0);
  k.set(k.M.ptes_end, mm, 0);
}

mmdropHooks.push(tlb_mm_free);
