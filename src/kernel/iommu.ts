// The IOMMU's SVA side (drivers/iommu/iommu-sva.c, v6.8+), with the lifetime
// policies the seed threads argued about:
//   mm        (mainline) the first bind allocates, every later bind reuses,
//             mm_pasid_drop() frees at __mmdrop();
//   unbind    (5.10) freed at the mm's last unbind, after the drain;
//   task-refcount (Sep 2021) a reference per bond and per task that
//             submitted; freed when the last one goes;
//   static    every mm gets one at creation, freed at __mmdrop().
// Kernel variants: `free-at-mmput` (5.18-rc1: mm_pasid_drop() in __mmput(),
// before exit_files() drained the device) and `no-drain` (release without
// DRAIN_PASID).
//
// PASIDs come from one global IDA over [1, max_pasids - 1] (0 is
// IOMMU_NO_PASID), lowest free first: so a freed PASID is the next one handed
// out, which is why a PASID must not return while a device may still use it.

import { DESC_WORDS, PT_WORDS } from "../machine/state.js";
import { ida_alloc_range, ida_count, ida_free } from "./ida.js";
import type { Kernel } from "./kernel.js";

export const ENOSPC = 28;
export const EOVERFLOW = 75;
export const EMFILE = 24;

// --- the allocator, with the no-reuse rule checked where it matters --------

/** iommu_alloc_global_pasid(): the lowest free PASID below `max`, or 0 (ENOSPC). */
export function iommu_alloc_global_pasid(k: Kernel, max: number, cpu: number): number {
  const pasid = ida_alloc_range(k.mem, k.ida, 1, max - 1);
  if (pasid < 0) return 0;
  k.metrics.pasid_allocs++;
  k.charge(k.costs.kmalloc);
  const live = ida_count(k.mem, k.ida);
  if (live > k.metrics.pasid_peak) k.metrics.pasid_peak = live;
  const user = device_user_of(k, pasid);
  if (user !== null) {
    k.warn("pasid-reuse", `PASID ${pasid} handed out while ${user}`, cpu);
  }
  if (k.trace !== null) k.trace.instant(cpu, "pasid_alloc", { pasid });
  return pasid;
}

/** iommu_free_global_pasid(): back to the allocator, once, and only when no device still uses it. */
export function iommu_free_global_pasid(k: Kernel, pasid: number, cpu: number): void {
  if (!ida_free(k.mem, k.ida, pasid)) {
    k.warn("pasid-freed-once", `PASID ${pasid} freed but not allocated`, cpu);
    return;
  }
  k.metrics.pasid_frees++;
  k.charge(k.costs.kfree);
  const user = device_user_of(k, pasid);
  if (user !== null) k.warn("pasid-reuse", `PASID ${pasid} freed while ${user}`, cpu);
  if (k.trace !== null) k.trace.instant(cpu, "pasid_free", { pasid });
}

/** Does any device still hold something for `pasid`? A description, or null. */
export function device_user_of(k: Kernel, pasid: number): string | null {
  const D = k.D;
  for (let d = 0; d < k.model.devices.length; d++) {
    const name = k.model.devices[d].name;
    const depth = k.model.devices[d].wqDepth;
    const head = k.get(D.wq_head, d);
    const n = k.get(D.wq_count, d);
    const wq = D.wq.at + d * D.wq.stride;
    for (let i = 0; i < n; i++) {
      if (k.w[wq + ((head + i) % depth) * DESC_WORDS] === pasid)
        return `${name} holds an accepted descriptor for it`;
    }
    if (pt_find(k, d, pasid) >= 0) return `${name}'s PASID table still maps it`;
    const tlb = D.tlb.at + d * D.tlb.stride;
    for (let i = 0; i < k.L.counts.tlbSlots; i++) {
      if (k.w[tlb + i * PT_WORDS] === pasid) return `${name} still caches a translation for it`;
    }
    if (k.get(D.kernel_pasid, d) === pasid) return `${name}'s kernel work queue owns it`;
  }
  return null;
}

// --- the PASID table and the translation cache of a device ----------------

export function pt_find(k: Kernel, d: number, pasid: number): number {
  const pt = k.D.pt.at + d * k.D.pt.stride;
  for (let i = 0; i < k.L.counts.ptSlots; i++) if (k.w[pt + i * PT_WORDS] === pasid) return pt + i * PT_WORDS;
  return -1;
}

/** iommu_attach_device_pasid(): a present entry mapping `pasid` to `mm`. False when the table is full. */
export function pt_set(k: Kernel, d: number, pasid: number, mm: number): boolean {
  const a = pt_find(k, d, 0);
  if (a < 0) return false;
  k.mem.write(a, pasid);
  k.mem.write(a + 1, mm);
  return true;
}

/** intel_pasid_tear_down_entry(): clear the present entry (the flush is a separate step). */
export function pt_clear(k: Kernel, d: number, pasid: number): void {
  const a = pt_find(k, d, pasid);
  if (a < 0) return;
  k.mem.write(a, 0);
  k.mem.write(a + 1, 0);
}

/** PASID-cache, IOTLB and device-TLB invalidation for `pasid` on a device. */
export function flush_pasid_caches(k: Kernel, d: number, pasid: number): void {
  const tlb = k.D.tlb.at + d * k.D.tlb.stride;
  for (let i = 0; i < k.L.counts.tlbSlots; i++) {
    const a = tlb + i * PT_WORDS;
    if (k.w[a] === pasid) {
      k.mem.write(a, 0);
      k.mem.write(a + 1, 0);
    }
  }
  k.charge(k.costs.iotlb_flush);
}

/** The device's translation: PASID table entry, cached on the way. Returns the mm, or 0 (fault). */
export function iommu_translate(k: Kernel, d: number, pasid: number): number {
  const tlb = k.D.tlb.at + d * k.D.tlb.stride;
  let free = -1;
  for (let i = 0; i < k.L.counts.tlbSlots; i++) {
    const a = tlb + i * PT_WORDS;
    if (k.w[a] === pasid) return k.w[a + 1];
    if (free < 0 && k.w[a] === 0) free = a;
  }
  const e = pt_find(k, d, pasid);
  if (e < 0) return 0;
  const mm = k.w[e + 1];
  const slot = free >= 0 ? free : tlb + (pasid % k.L.counts.tlbSlots) * PT_WORDS; // evict by hash
  k.mem.write(slot, pasid);
  k.mem.write(slot + 1, mm);
  return mm;
}

// --- the lifetime policies -------------------------------------------------

/** The PASID a bind of `mm` to device `d` uses: reuse, allocate, or an errno (negative). */
export function iommu_alloc_mm_data(k: Kernel, d: number, mm: number, cpu: number): number {
  const max = k.model.devices[d].maxPasids;
  const have = k.get(k.M.pasid, mm);
  if (have !== 0) return have >= max ? -EOVERFLOW : have;
  if (k.model.lifetime === "static") return -ENOSPC; // its creation-time allocation failed
  const pasid = iommu_alloc_global_pasid(k, max, cpu);
  if (pasid === 0) return -ENOSPC;
  k.set(k.M.pasid, mm, pasid);
  pasidChange.allocated(k, mm, cpu);
  return pasid;
}

type PasidChangeFn = (k: Kernel, mm: number, cpu: number) => void;
/**
 * What the FPU side does when a live mm's PASID is allocated or freed (the
 * pasid_msr policies); fpu.ts plugs in, so that this file need not import it.
 */
export const pasidChange: { allocated: PasidChangeFn; freed: PasidChangeFn } = {
  allocated() {},
  freed() {},
};

/** mm_pasid_drop(): at __mmdrop() (or __mmput() under `free-at-mmput`). */
export function mm_pasid_drop(k: Kernel, mm: number, cpu: number): void {
  const pasid = k.get(k.M.pasid, mm);
  if (pasid === 0) return;
  k.set(k.M.pasid, mm, 0);
  iommu_free_global_pasid(k, pasid, cpu);
  // The lifetimes that free a PASID while the mm lives (`unbind`,
  // `task-refcount`) need every task of the mm to forget it. Under gp-fixup
  // that is modelled as one atomic step (the "perfect" of seed 000): the
  // MSRs and saved components are cleared and pasid_activated too, so the
  // next ENQCMD takes the #GP fixup again. The eager policies tell the tasks
  // their own way, step by step.
  if (k.get(k.M.users, mm) > 0) pasidChange.freed(k, mm, cpu);
}

/** `static`: every mm gets a PASID when it is created (if any is left). */
export function mm_pasid_init(k: Kernel, mm: number, cpu: number): void {
  if (k.model.lifetime !== "static" || k.model.devices.length === 0) return;
  const max = k.model.devices.reduce((m, dev) => Math.min(m, dev.maxPasids), 1 << k.model.pasidBits);
  const pasid = iommu_alloc_global_pasid(k, max, cpu);
  k.set(k.M.pasid, mm, pasid);
}

/** A reference under `task-refcount`: one per bond and one per task that submitted. */
export function pasid_get(k: Kernel, mm: number): void {
  if (k.model.lifetime !== "task-refcount") return;
  k.add(k.M.pasid_refs, mm, 1);
  k.metrics.refcount_ops++;
  k.charge(k.costs.atomic);
}

export function pasid_put(k: Kernel, mm: number, cpu: number): void {
  if (k.model.lifetime !== "task-refcount") return;
  k.metrics.refcount_ops++;
  k.charge(k.costs.atomic);
  const refs = k.add(k.M.pasid_refs, mm, -1);
  if (refs < 0) k.warn("pasid-refcount", `mm ${mm}: PASID references went negative`, cpu);
  if (refs === 0) mm_pasid_drop(k, mm, cpu);
}

/** After a bond of `mm` is gone: the `unbind` lifetime frees at the last one. */
export function mm_bond_put(k: Kernel, mm: number, cpu: number): void {
  const n = k.add(k.M.nr_bonds, mm, -1);
  if (n < 0) k.warn("pasid-refcount", `mm ${mm}: bond count went negative`, cpu);
  if (n === 0 && k.model.lifetime === "unbind") mm_pasid_drop(k, mm, cpu);
}

/**
 * The mmu-notifier release at exit_mmap() (intel_mm_release): every PASID
 * entry of the mm is torn down with faults ignored (DMA for it now faults
 * quietly instead of walking freed page tables) and the caches flushed. The
 * PASID itself stays allocated: the bonds still hold the mm.
 */
export function iommu_mm_release(k: Kernel, mm: number, cpu: number): void {
  for (let d = 0; d < k.model.devices.length; d++) {
    const pt = k.D.pt.at + d * k.D.pt.stride;
    for (let i = 0; i < k.L.counts.ptSlots; i++) {
      const a = pt + i * PT_WORDS;
      if (k.w[a] === 0 || k.w[a + 1] !== mm) continue;
      const pasid = k.w[a];
      k.mem.write(a, 0);
      k.mem.write(a + 1, 0);
      flush_pasid_caches(k, d, pasid);
    }
  }
  if (k.model.variants.has("free-at-mmput")) mm_pasid_drop(k, mm, cpu); // the 5.18-rc1 bug
}
