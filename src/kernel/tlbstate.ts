// cpu_tlbstate and what hangs off it (arch/x86/mm/tlb.c, asm/tlbflush.h):
// mm_cpumask, the per-CPU ASID slots (ctx_id, tlb_gen), PTI's deferred
// user-ASID flush mask (user_pcid_flush_mask) and the local flush
// primitives the switch and the shootdown share.

import {
  invlpg,
  invpcid_flush_one,
  invpcid_flush_single_context,
  kern_pcid,
  reload_cr3,
  user_pcid,
} from "../hw/tlb.js";
import { MAX_ASID_AVAILABLE, TLB_PAGES } from "../machine/state.js";
import type { Kernel, TlbConfig } from "./kernel.js";
import type { KernelVariant } from "./policy.js";

/** cpu_tlbstate.loaded_mm while switch_mm_irqs_off() is between mms ((mm*)1 in the kernel). */
export const LOADED_MM_SWITCHING = -1;
/** tlb_single_page_flush_ceiling: ranges of more pages are flushed whole. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;
/** A munmap of at least this many pages frees a page table (freed_tables: IPIs go to lazy CPUs too). */
export const PTRS_PER_PTE = 512;
/*
 * Kernel variant `user-pcid-mask-u16`: user_pcid_flush_mask as the `unsigned
 * short` of v6.15. Under PTI a global ASID's kernel PCID (7 .. 2046) is a bit
 * index past its 16 bits: __set_bit() and the exit path's `bt`/`btr` on a
 * register offset reach the rest of struct tlb_state (fixed by "x86/mm: Fix
 * potential overflow in user_pcid_flush_mask", Rik van Riel, posted June 2025).
 */
/** Bits of the v6.15 mask. */
const USER_MASK_U16_BITS = 16;

// --- cpumasks ----------------------------------------------------------------

function maskAddr(k: Kernel, mm: number, cpu: number): number {
  return k.M.cpumask.at + mm * k.M.cpumask.stride + (cpu >> 5);
}

export function cpumask_test(k: Kernel, mm: number, cpu: number): boolean {
  return (k.w[maskAddr(k, mm, cpu)] & (1 << (cpu & 31))) !== 0;
}

export function cpumask_set(k: Kernel, mm: number, cpu: number): void {
  const a = maskAddr(k, mm, cpu);
  k.mem.write(a, k.w[a] | (1 << (cpu & 31)));
}

export function cpumask_clear(k: Kernel, mm: number, cpu: number): void {
  const a = maskAddr(k, mm, cpu);
  k.mem.write(a, k.w[a] & ~(1 << (cpu & 31)));
}

export function ctxGenAddr(k: Kernel, cpu: number, asid: number): number {
  return k.C.ctx_gen.at + cpu * k.C.ctx_gen.stride + asid;
}

export function ctxIdAddr(k: Kernel, cpu: number, asid: number): number {
  return k.C.ctx_id.at + cpu * k.C.ctx_id.stride + asid;
}

// --- the deferred user flush ---------------------------------------------------

/**
 * Words of each CPU's user_pcid_flush_mask: the posted fix sizes it for every
 * kernel PCID the configuration can load (all 2046 with global ASIDs); the
 * v6.15 variant keeps 16 bits and 2048 of the memory after them, where its
 * out-of-range bits land (see user_mask_word()).
 */
export function user_pcid_flush_mask_words(t: TlbConfig, variants: ReadonlySet<KernelVariant>): number {
  if (variants.has("user-pcid-mask-u16")) return Math.ceil((MAX_ASID_AVAILABLE + 1) / 32);
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
  if (kpcid < USER_MASK_U16_BITS || !k.model.variants.has("user-pcid-mask-u16")) return -1;
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
  else if (bit >= USER_MASK_U16_BITS && k.model.variants.has("user-pcid-mask-u16"))
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

export function is_global_asid(k: Kernel, asid: number): boolean {
  return k.model.tlb.invlpgb && asid >= k.model.tlb.asidSlots; // TLB_NR_DYN_ASIDS
}

function bitAddr(f: { at: number }, bit: number): number {
  return f.at + (bit >>> 5);
}

export function testBit(k: Kernel, f: { at: number }, bit: number): boolean {
  return (k.w[bitAddr(f, bit)] & (1 << (bit & 31))) !== 0;
}

export function putBit(k: Kernel, f: { at: number }, bit: number, on: boolean): void {
  const a = bitAddr(f, bit);
  const v = k.w[a];
  k.mem.write(a, on ? v | (1 << (bit & 31)) : v & ~(1 << (bit & 31)));
}

/** Mark the tracked pages of [0, pages) as changed at generation `gen` (what tlb-stale checks). */
export function mark_pages(k: Kernel, mm: number, pages: number, gen: number): void {
  const f = k.M.page_gen;
  const n = Math.min(pages, TLB_PAGES);
  for (let p = 0; p < n; p++) k.mem.write(f.at + mm * f.stride + p, gen);
}

// --- present PTEs ------------------------------------------------------------------

/** Pages 0 .. PTE_BITS-1 are tracked one bit each in mm.ptes; beyond, mm.ptes_end is an extent [PTE_BITS, end). */
const PTE_BITS = 31;

function lowMask(pages: number): number {
  return pages >= PTE_BITS ? 0x7fffffff : (1 << pages) - 1;
}

/** A user access faulted pages [0, pages) in: their PTEs are present. */
export function pte_populate(k: Kernel, mm: number, pages: number): void {
  k.set(k.M.ptes, mm, k.get(k.M.ptes, mm) | lowMask(pages));
  if (pages > PTE_BITS && pages > k.get(k.M.ptes_end, mm)) k.set(k.M.ptes_end, mm, pages);
}

/** Is any PTE of [0, pages) present (what zap_pte_range() / change_pte_range() would find)? */
export function pte_present_in(k: Kernel, mm: number, pages: number): boolean {
  if ((k.get(k.M.ptes, mm) & lowMask(pages)) !== 0) return true;
  return pages > PTE_BITS && k.get(k.M.ptes_end, mm) > PTE_BITS;
}

/** Is a PTE present past [0, pages) (so the page table still maps something and is not freed)? */
export function pte_present_beyond(k: Kernel, mm: number, pages: number): boolean {
  if ((k.get(k.M.ptes, mm) & ~lowMask(pages)) !== 0) return true;
  return k.get(k.M.ptes_end, mm) > Math.max(pages, PTE_BITS);
}

/** munmap cleared [0, pages). The extent past PTE_BITS goes only when covered whole (kept otherwise: an over-approximation). */
export function pte_clear(k: Kernel, mm: number, pages: number): void {
  k.set(k.M.ptes, mm, k.get(k.M.ptes, mm) & ~lowMask(pages));
  if (pages >= k.get(k.M.ptes_end, mm)) k.set(k.M.ptes_end, mm, 0);
}
