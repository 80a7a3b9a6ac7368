// arch/x86/mm/tlb.c as steps: switch_mm_irqs_off() with choose_new_asid()
// and load_new_mm_cr3(), lazy TLB, the deferred user-PCID flush, and
// flush_tlb_mm_range() with its shootdown IPIs and flush_tlb_func().
// Semantics are current mainline's (v6.15 without global ASIDs: the CPU stays
// in mm_cpumask(prev) after a switch; should_flush_tlb() skips lazy CPUs and
// CPUs that run another mm, and IPIs a CPU in LOADED_MM_SWITCHING).
// Kernel variant `fea4e317f9e7`: should_flush_tlb() without the SWITCHING
// test (the skipped-IPI window that commit closed).

import {
  ctx_id,
  invlpg,
  invpcid_flush_one,
  invpcid_flush_single_context,
  kern_pcid,
  reload_cr3,
  user_pcid,
  write_cr3,
} from "../hw/tlb.js";
import { PC_ASID_SWITCHES, PC_IPIS, PC_TLB_FLUSHES_RANGE } from "../machine/metrics.js";
import {
  IRQ_CALL_FUNCTION,
  MAX_ASID_AVAILABLE,
  TLB_ENTRIES,
  TLB_PAGES,
  TLBE_WORDS,
} from "../machine/state.js";
import type { Kernel, TlbConfig } from "./kernel.js";
import { mmdropHooks } from "./mm.js";
import { defPath } from "./path.js";
import { raise_irq } from "./sched.js";

/** cpu_tlbstate.loaded_mm while switch_mm_irqs_off() is between mms ((mm*)1 in the kernel). */
export const LOADED_MM_SWITCHING = -1;
/** tlb_single_page_flush_ceiling: ranges of more pages are flushed whole. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;
/** A munmap of at least this many pages frees a page table (freed_tables: IPIs go to lazy CPUs too). */
export const PTRS_PER_PTE = 512;
export const VARIANT_SKIPPED_IPI = "fea4e317f9e7";
/** Kernel variant: switch_mm_irqs_off() without the smp_mb() of 83b0177a6c48 (store buffering). */
export const VARIANT_STORE_BUFFERING = "83b0177a6c48";
/**
 * Kernel variant: user_pcid_flush_mask as the `unsigned short` of v6.15.
 * Under PTI a global ASID's kernel PCID (7 .. 2046) is a bit index past its
 * 16 bits: __set_bit() and the exit path's `bt`/`btr` on a register offset
 * reach the rest of struct tlb_state (fixed by "x86/mm: Fix potential
 * overflow in user_pcid_flush_mask", Rik van Riel, posted June 2025).
 */
export const VARIANT_USER_MASK_U16 = "user-pcid-mask-u16";
/** Bits of the v6.15 mask. */
const USER_MASK_U16_BITS = 16;

// switch_mm_irqs_off()'s a1: the chosen ASID (global ones up to 2045), need_flush, and whether to re-enable IRQs at the end.
const SW_ASID = 0x7ff;
const SW_FLUSH = 1 << 11;
const SW_IRQS_ON = 1 << 12;

// --- cpumasks ----------------------------------------------------------------

function maskAddr(k: Kernel, mm: number, cpu: number): number {
  return k.M.cpumask.at + mm * k.M.cpumask.stride + (cpu >> 5);
}

export function cpumask_test(k: Kernel, mm: number, cpu: number): boolean {
  return (k.w[maskAddr(k, mm, cpu)] & (1 << (cpu & 31))) !== 0;
}

function cpumask_set(k: Kernel, mm: number, cpu: number): void {
  const a = maskAddr(k, mm, cpu);
  k.mem.write(a, k.w[a] | (1 << (cpu & 31)));
}

function cpumask_clear(k: Kernel, mm: number, cpu: number): void {
  const a = maskAddr(k, mm, cpu);
  k.mem.write(a, k.w[a] & ~(1 << (cpu & 31)));
}

function ctxGenAddr(k: Kernel, cpu: number, asid: number): number {
  return k.C.ctx_gen.at + cpu * k.C.ctx_gen.stride + asid;
}

function ctxIdAddr(k: Kernel, cpu: number, asid: number): number {
  return k.C.ctx_id.at + cpu * k.C.ctx_id.stride + asid;
}

// --- the deferred user flush ---------------------------------------------------

/**
 * Words of each CPU's user_pcid_flush_mask: the posted fix sizes it for every
 * kernel PCID the configuration can load (all 2046 with global ASIDs); the
 * v6.15 variant keeps 16 bits and 2048 of the memory after them, where its
 * out-of-range bits land (see user_mask_word()).
 */
export function user_pcid_flush_mask_words(t: TlbConfig, variants: ReadonlySet<string>): number {
  if (variants.has(VARIANT_USER_MASK_U16)) return Math.ceil((MAX_ASID_AVAILABLE + 1) / 32);
  return Math.ceil(((t.invlpgb ? MAX_ASID_AVAILABLE : t.asidSlots) + 1) / 32);
}

// struct tlb_state of v6.15 on x86_64, in bits from user_pcid_flush_mask
// (byte 22): cr4 at 16 (byte 24), ctxs[i] at 80 + 128 i (byte 32 + 16 i),
// each ctx_id (64 bits) then tlb_gen (64 bits).
const TLBSTATE_CTXS_BIT = 80;

/**
 * Under user-pcid-mask-u16, where bit `kpcid` lands in ctxs[] (its bit
 * offset from ctxs[0]) when that is the low half of a ctx_id or tlb_gen the
 * model keeps; else -1: the bit is in the mask's own words, which stand for
 * the 16 bits, cr4, the high halves and what follows the struct (the model
 * reads none of those: a stale bit there costs an extra user flush, never a
 * missed one).
 */
function ctxs_spill(k: Kernel, kpcid: number): number {
  if (kpcid < USER_MASK_U16_BITS || !k.model.variants.has(VARIANT_USER_MASK_U16)) return -1;
  const rel = kpcid - TLBSTATE_CTXS_BIT;
  return rel >= 0 && rel >> 7 < k.model.tlb.asidSlots && (rel & 63) < 32 ? rel : -1;
}

/** The word holding bit `kpcid` of cpu's mask, given ctxs_spill(kpcid); its bit is 1 << ((rel < 0 ? kpcid : rel) & 31). */
function user_mask_word(k: Kernel, cpu: number, kpcid: number, rel: number): number {
  if (rel >= 0) return (rel & 64) === 0 ? ctxIdAddr(k, cpu, rel >> 7) : ctxGenAddr(k, cpu, rel >> 7);
  const f = k.C.user_pcid_flush_mask;
  return f.at + cpu * f.stride + (kpcid >> 5);
}

/** `bt kpcid, user_pcid_flush_mask`. */
export function user_mask_test(k: Kernel, cpu: number, kpcid: number): boolean {
  const rel = ctxs_spill(k, kpcid);
  return (k.w[user_mask_word(k, cpu, kpcid, rel)] & (1 << ((rel < 0 ? kpcid : rel) & 31))) !== 0;
}

/** `btr`: clear the bit (a read-modify-write of its cache line). */
export function user_mask_clear(k: Kernel, cpu: number, kpcid: number): void {
  const rel = ctxs_spill(k, kpcid);
  const a = user_mask_word(k, cpu, kpcid, rel);
  k.mem.write(a, k.w[a] & ~(1 << ((rel < 0 ? kpcid : rel) & 31)));
}

/** The kernel PCIDs pending in cpu's mask (the variant's spilled bits included where they sit in the mask's words). */
export function user_mask_pending(k: Kernel, cpu: number): number[] {
  const f = k.C.user_pcid_flush_mask;
  const out: number[] = [];
  for (let i = 0; i < f.len; i++) {
    const w = k.w[f.at + cpu * f.stride + i];
    for (let b = 0; b < 32; b++) if ((w & (1 << b)) !== 0) out.push(i * 32 + b);
  }
  return out;
}

/** Where the variant's __set_bit(kpcid) lands, for its WARN. */
function user_mask_spill(k: Kernel, kpcid: number): string {
  if (kpcid < TLBSTATE_CTXS_BIT) return `cr4 bit ${kpcid - USER_MASK_U16_BITS}`;
  const rel = kpcid - TLBSTATE_CTXS_BIT;
  const slot = rel >> 7;
  if (slot >= k.model.tlb.asidSlots) return `byte ${22 + (kpcid >> 3)}, past struct tlb_state`;
  return `ctxs[${slot}].${(rel & 64) === 0 ? "ctx_id" : "tlb_gen"} bit ${rel & 63}`;
}

/**
 * invalidate_user_asid(): the user PCID of `asid` must be flushed before
 * user code runs on it again. Mainline sets a bit (non-atomic, idempotent:
 * this CPU only, IRQs off or the bit's owner) that SWITCH_TO_USER_CR3
 * consumes; the `immediate` policy flushes it now with INVPCID.
 */
export function invalidate_user_asid(k: Kernel, cpu: number, asid: number): void {
  const t = k.model.tlb;
  if (!t.pti || !t.pcid) return;
  if (t.userAsidFlush === "immediate") {
    invpcid_flush_single_context(k, cpu, user_pcid(k, asid));
    return;
  }
  const bit = kern_pcid(k, asid);
  if (asid >= (is_global_asid(k, asid) ? MAX_ASID_AVAILABLE : t.asidSlots))
    k.warn("user-mask", `cpu ${cpu}: user_pcid_flush_mask bit ${bit} names no ASID`, cpu);
  else if (bit >= USER_MASK_U16_BITS && k.model.variants.has(VARIANT_USER_MASK_U16))
    k.warn(
      "user-mask",
      `cpu ${cpu}: __set_bit(${bit}) past the 16-bit user_pcid_flush_mask writes ${user_mask_spill(k, bit)}`,
      cpu,
    );
  const rel = ctxs_spill(k, bit);
  const a = user_mask_word(k, cpu, bit, rel);
  k.mem.write(a, k.w[a] | (1 << ((rel < 0 ? bit : rel) & 31)));
}

/** flush_tlb_local(): the kernel PCID now (CR3 reload), the user PCID at exit. */
export function flush_tlb_local(k: Kernel, cpu: number): void {
  invalidate_user_asid(k, cpu, k.get(k.C.loaded_mm_asid, cpu));
  reload_cr3(k, cpu);
}

/** flush_tlb_one_user(): INVLPG, and the user PCID's copy at once (INVPCID) or at exit. */
export function flush_tlb_one_user(k: Kernel, cpu: number, page: number): void {
  invlpg(k, cpu, page);
  const t = k.model.tlb;
  if (!t.pti) return;
  const asid = k.get(k.C.loaded_mm_asid, cpu);
  if (t.invpcid && t.pcid) invpcid_flush_one(k, cpu, user_pcid(k, asid), page);
  else invalidate_user_asid(k, cpu, asid);
}

/** flush_tlb_one_kernel(): under PTI kernel PTEs are not global: the other ASIDs go at the next switch. */
export function flush_tlb_one_kernel(k: Kernel, cpu: number, page: number): void {
  flush_tlb_one_user(k, cpu, page);
  if (k.model.tlb.pti) k.set(k.C.invalidate_other, cpu, 1);
}

// --- choose_new_asid / switch_mm_irqs_off -----------------------------------------

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
  const asid = sw & SW_ASID;
  k.metrics.asid_switches++;
  k.pcpu(cpu, PC_ASID_SWITCHES);
  if ((sw & SW_FLUSH) !== 0) {
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
  const asid = sw & SW_ASID;
  k.set(k.C.loaded_mm, cpu, next);
  k.set(k.C.loaded_mm_asid, cpu, asid);
  if (asid < k.model.tlb.asidSlots && k.w[ctxIdAddr(k, cpu, asid)] !== ctx_id(k, next)) {
    k.warn(
      "asid-slot",
      `cpu ${cpu}: slot ${asid} holds ctx ${k.w[ctxIdAddr(k, cpu, asid)]}, loaded mm ${next}`,
      cpu,
    );
  }
  if ((sw & SW_IRQS_ON) !== 0) k.set(k.C.irqs_off, cpu, 0);
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
  } else if (k.model.variants.has(VARIANT_STORE_BUFFERING) && next !== 0) {
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
 * switch_mm_irqs_off(prev, next): a0 = next mm, a1 = the chosen ASID and
 * flags. Runs with IRQs off (callers outside __schedule(), i.e. activate_mm
 * at exec, get them turned off and back on), so no shootdown IPI lands
 * inside; remote flushers see loaded_mm == LOADED_MM_SWITCHING meanwhile.
 */
export const P_SWITCH_MM = defPath("switch_mm_irqs_off", [
  [
    "switch_mm_irqs_off",
    (k, cpu, fr) => {
      const C = k.C;
      const next = k.arg0(fr);
      const on = k.get(C.irqs_off, cpu) === 0 ? SW_IRQS_ON : 0;
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
          k.setArg1(fr, choose_new_asid(k, cpu, next, gen) | on);
          k.jump(fr, P_SWITCH_MM.pc.load_new_mm_cr3);
          return;
        }
        if (!wasLazy || is_global_asid(k, asid) || k.w[ctxGenAddr(k, cpu, asid)] >= gen) {
          if (on !== 0) k.set(C.irqs_off, cpu, 0);
          k.ret(cpu); // a thread switch, or lazy and up to date: no CR3 write
          return;
        }
        k.set(C.sw_gen, cpu, gen);
        k.setArg1(fr, asid | SW_FLUSH | on);
        k.jump(fr, P_SWITCH_MM.pc.load_new_mm_cr3);
        return;
      }
      k.setArg1(fr, on);
      switch_mm_enter(k, cpu, next);
    },
  ],
  [
    "choose_new_asid",
    (k, cpu, fr) => {
      const next = k.arg0(fr);
      const gen = next === 0 ? 0 : k.get(k.M.tlb_gen, next);
      k.set(k.C.sw_gen, cpu, gen);
      k.setArg1(fr, choose_new_asid(k, cpu, next, gen) | (k.arg1(fr) & SW_IRQS_ON));
    },
  ],
  [
    "load_new_mm_cr3",
    (k, cpu, fr) => {
      drain_store_buffer(k, cpu);
      load_new_mm_cr3(k, cpu, k.arg0(fr), k.arg1(fr));
    },
  ],
  ["loaded_mm = next", (k, cpu, fr) => switch_mm_finish(k, cpu, k.arg0(fr), k.arg1(fr))],
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
function leave_mm(k: Kernel, cpu: number): void {
  k.set(k.C.is_lazy, cpu, 0);
  switch_mm_now(k, cpu, 0, 0);
}

/** switch_mm_irqs_off(NULL, mm) as one atomic action (IRQs off, in an IPI handler). */
function switch_mm_now(k: Kernel, cpu: number, mm: number, gen: number): void {
  switch_mm_enter(k, cpu, mm);
  k.set(k.C.sw_gen, cpu, gen);
  const sw = choose_new_asid(k, cpu, mm, gen);
  load_new_mm_cr3(k, cpu, mm, sw);
  switch_mm_finish(k, cpu, mm, sw);
}

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
  if (loaded === LOADED_MM_SWITCHING) return !k.model.variants.has(VARIANT_SKIPPED_IPI);
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

// --- global ASIDs and INVLPGB (v6.15) ----------------------------------------------

export function is_global_asid(k: Kernel, asid: number): boolean {
  return k.model.tlb.invlpgb && asid >= k.model.tlb.asidSlots; // TLB_NR_DYN_ASIDS
}

export function mm_global_asid(k: Kernel, mm: number): number {
  return mm === 0 || !k.model.tlb.invlpgb ? 0 : k.get(k.M.global_asid, mm);
}

/** The mm has a global ASID and this CPU still runs it on another one. */
function mm_needs_global_asid(k: Kernel, mm: number, asid: number): boolean {
  const g = mm_global_asid(k, mm);
  return g !== 0 && g !== asid;
}

function bitAddr(f: { at: number }, bit: number): number {
  return f.at + (bit >>> 5);
}

function testBit(k: Kernel, f: { at: number }, bit: number): boolean {
  return (k.w[bitAddr(f, bit)] & (1 << (bit & 31))) !== 0;
}

function putBit(k: Kernel, f: { at: number }, bit: number, on: boolean): void {
  const a = bitAddr(f, bit);
  const v = k.w[a];
  k.mem.write(a, on ? v | (1 << (bit & 31)) : v & ~(1 << (bit & 31)));
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
function consider_global_asid(k: Kernel, cpu: number, mm: number): void {
  if (k.get(k.M.global_asid, mm) !== 0) return;
  if ((k.get(k.T.pid, k.curr(cpu)) & 0x1f) !== (k.get(k.G.jiffies, 0) & 0x1f)) return;
  let active = 0;
  for (let c = 0; c < k.params.cpus; c++) {
    if (k.get(k.C.loaded_mm, c) === mm && k.get(k.C.is_lazy, c) === 0) active++;
  }
  if (active > 3) use_global_asid(k, cpu, mm);
}

/** broadcast_tlb_flush(): INVLPGB of the global ASID's kernel and user PCIDs; no IPI, no deferred bit. */
function broadcast_tlb_flush(k: Kernel, mm: number, pages: number): void {
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
function finish_asid_transition(k: Kernel, mm: number): boolean {
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
function mm_free_global_asid(k: Kernel, mm: number): void {
  const asid = k.get(k.M.global_asid, mm);
  if (asid === 0) return;
  putBit(k, k.G.global_asid_freed, asid, true);
  k.set(k.M.global_asid, mm, 0);
  k.set(k.M.asid_transition, mm, 0);
  k.add(k.G.global_asid_available, 0, 1);
}

/** Mark the tracked pages of [0, pages) as changed at generation `gen` (what tlb-stale checks). */
function mark_pages(k: Kernel, mm: number, pages: number, gen: number): void {
  const f = k.M.page_gen;
  const n = Math.min(pages, TLB_PAGES);
  for (let p = 0; p < n; p++) k.mem.write(f.at + mm * f.stride + p, gen);
}

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
      const pages = k.arg0(fr);
      const gen = k.add(k.M.tlb_gen, mm, 1);
      k.set(C.fi_mm, cpu, mm);
      k.set(C.fi_pages, cpu, pages > TLB_SINGLE_PAGE_FLUSH_CEILING ? 0 : pages);
      k.set(C.fi_gen, cpu, gen);
      k.set(C.fi_freed, cpu, k.arg1(fr));
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
      mark_pages(k, k.get(k.C.fi_mm, cpu), k.arg0(fr), k.get(k.C.fi_gen, cpu));
      k.set(k.C.fi_mm, cpu, 0);
      k.add(k.C.preempt_count, cpu, -1);
    },
  ],
]);

// --- the syscalls ---------------------------------------------------------------

export const MEMOP_MUNMAP = 1;
export const MEMOP_MPROTECT = 2;

/**
 * munmap()/mprotect() of pages [0, a0): a1 = count << 2 | op. `count`
 * unmaps in one syscall: that many flushes without a return to user.
 */
export const P_MEMOP = defPath("do_vmi_munmap", [
  [
    "unmap_region",
    (k, cpu, fr) => {
      const pages = k.arg0(fr);
      const freed = (k.arg1(fr) & 3) === MEMOP_MUNMAP && pages >= PTRS_PER_PTE ? 1 : 0;
      k.call(cpu, P_FLUSH_TLB_MM_RANGE, pages, freed);
    },
  ],
  [
    "tlb_finish_mmu",
    (k, _cpu, fr) => {
      const left = (k.arg1(fr) >>> 2) - 1;
      if (left <= 0) return;
      k.setArg1(fr, (left << 2) | (k.arg1(fr) & 3));
      k.jump(fr, 0);
    },
  ],
]);

/**
 * A driver's set_pte_vaddr() of a0 fixmap pages (kmap_local, early_ioremap):
 * with preemption off, flush_tlb_one_kernel() on this CPU for each.
 */
export const P_SET_FIXMAP = defPath("set_pte_vaddr", [
  [
    "flush_tlb_one_kernel",
    (k, cpu, fr) => {
      const pages = k.arg0(fr);
      for (let p = 0; p < pages; p++) flush_tlb_one_kernel(k, cpu, p);
    },
  ],
]);

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
}

mmdropHooks.push(tlb_mm_free);
