// mm_struct lifetime, as kernel/fork.c has it. Two counts:
//   mm_users: users of the address space (threads, CLONE_VM tasks, mmget()).
//             When it reaches 0, __mmput() tears the address space down
//             (exit_mmap, the mmu-notifier release) and drops the one mm_count
//             reference that all users share.
//   mm_count: references to the struct (mmgrab(): lazy-TLB active_mm, bonds).
//             When it reaches 0, __mmdrop() frees it (and, once the PASID
//             issue lands, mm_pasid_drop()).
// Each get/put is an atomic on the real machine: counted in refcount_ops and
// charged as one.

import { MM_FREE, MM_LIVE, MM_ZOMBIE } from "../machine/state.js";
import { iommu_mm_release, mm_pasid_drop, mm_pasid_init } from "./iommu.js";
import type { Kernel } from "./kernel.js";
import { defPath, frameLocals } from "./path.js";

/** mm_alloc(): a new mm with mm_users = mm_count = 1. Returns 0 when no slot is free. */
export function mm_alloc(k: Kernel): number {
  const mm = k.slot_pop(k.G.mm_free, k.M.next_free);
  if (mm === 0) return 0;
  if (k.get(k.M.state, mm) !== MM_FREE) k.warn("mm-refcount", `mm ${mm} on the free list is in use`, -1);
  k.set(k.M.state, mm, MM_LIVE);
  k.set(k.M.users, mm, 1);
  k.set(k.M.count, mm, 1);
  k.set(k.M.gen, mm, k.add(k.G.mm_gen, 0, 1));
  k.add(k.G.nr_mms, 0, 1);
  k.metrics.mm_allocs++;
  k.charge(k.costs.kmalloc);
  mm_pasid_init(k, mm, -1);
  return mm;
}

function refOp(k: Kernel): void {
  k.metrics.refcount_ops++;
  k.charge(k.costs.atomic);
}

/** mmget(): a new user of a live address space. */
export function mmget(k: Kernel, mm: number, cpu: number): void {
  refOp(k);
  if (k.get(k.M.state, mm) !== MM_LIVE || k.get(k.M.users, mm) <= 0) {
    k.warn("mm-use-after-free", `mmget on mm ${mm} with mm_users ${k.get(k.M.users, mm)}`, cpu);
  }
  k.add(k.M.users, mm, 1);
}

/** mmgrab(): pin the struct (not the address space). */
export function mmgrab(k: Kernel, mm: number, cpu: number): void {
  refOp(k);
  if (k.get(k.M.state, mm) === MM_FREE || k.get(k.M.count, mm) <= 0) {
    k.warn("mm-use-after-free", `mmgrab on freed mm ${mm}`, cpu);
  }
  k.add(k.M.count, mm, 1);
}

/** mmdrop(): drop a struct reference; __mmdrop() at zero. */
export function mmdrop(k: Kernel, mm: number, cpu: number): void {
  refOp(k);
  if (k.get(k.M.state, mm) === MM_FREE) {
    k.warn("mm-freed-once", `mmdrop on mm ${mm} that is already freed`, cpu);
    return;
  }
  const count = k.add(k.M.count, mm, -1);
  if (count < 0) k.warn("mm-refcount", `mm ${mm}: mm_count went negative`, cpu);
  if (count === 0) __mmdrop(k, mm, cpu);
}

/** __mmdrop(): the last reference to the struct is gone; mm_pasid_drop() frees its PASID. */
function __mmdrop(k: Kernel, mm: number, cpu: number): void {
  if (k.get(k.M.users, mm) !== 0) k.warn("mm-refcount", `__mmdrop of mm ${mm} with mm_users > 0`, cpu);
  for (const hook of mmdropHooks) hook(k, mm, cpu);
  mm_pasid_drop(k, mm, cpu);
  k.set(k.M.state, mm, MM_FREE);
  k.set(k.M.gen, mm, 0);
  k.slot_push(k.G.mm_free, k.M.next_free, mm);
  k.add(k.G.nr_mms, 0, -1);
  k.metrics.mm_frees++;
  k.charge(k.costs.kfree);
  if (k.trace !== null) k.trace.instant(cpu, "__mmdrop", { mm });
}

/** Functions run by __mmdrop() before the struct is freed (mm_pasid_drop lands here). */
export const mmdropHooks: ((k: Kernel, mm: number, cpu: number) => void)[] = [];

/**
 * What exit_mmap() does after the mmu-notifier release, in order; a hook may
 * call a path (tlb_finish_mmu()'s flush lands here, from kernel/tlb_flush.ts).
 */
export const exitMmapHooks: ((k: Kernel, mm: number, cpu: number) => void)[] = [];

const MMPUT = frameLocals({ mm: [0, 0, 32, "mm"] }, "mmput");

/**
 * mmput(mm): a0 = mm. Drop a user; at zero, __mmput(): exit_mmap() tears the
 * address space down, then the users' shared mm_count reference is dropped.
 */
export const P_MMPUT = defPath("mmput", [
  [
    "atomic_dec_and_test",
    (k, cpu, fr) => {
      const mm = MMPUT.mm.get(k, fr);
      refOp(k);
      if (k.get(k.M.state, mm) !== MM_LIVE) {
        k.warn("mm-use-after-free", `mmput on mm ${mm} that is not live`, cpu);
        k.ret(cpu);
        return;
      }
      const users = k.add(k.M.users, mm, -1);
      if (users < 0) k.warn("mm-refcount", `mm ${mm}: mm_users went negative`, cpu);
      if (users !== 0) k.ret(cpu);
    },
  ],
  [
    "__mmput",
    (k, cpu, fr) => {
      // exit_aio, ksm_exit, exit_mmap: mmu_notifier_release() first, then
      // unmap_vmas() and free_pgtables() into a fullmm gather, whose
      // tlb_finish_mmu() flushes (exitMmapHooks): the address space is gone
      // after this.
      const mm = MMPUT.mm.get(k, fr);
      iommu_mm_release(k, mm, cpu);
      k.set(k.M.state, mm, MM_ZOMBIE);
      for (const hook of exitMmapHooks) hook(k, mm, cpu);
    },
    "exit_mmap",
  ],
  ["mmdrop", (k, cpu, fr) => mmdrop(k, MMPUT.mm.get(k, fr), cpu)],
]);
