// A DSA-like device with a shared work queue (drivers/dma/idxd, as the
// hardware behaves): ENQCMD puts a descriptor tagged with a PASID into the
// queue, or is refused with ZF=1 when the queue is full; the device completes
// descriptors in order, each with a DMA that the IOMMU translates through the
// device's PASID table into whatever address space the entry maps at that
// moment. DRAIN_PASID waits until the accepted descriptors of one PASID are
// done.

import { DESC_WORDS } from "../machine/state.js";
import type { Hw } from "./hw.js";

export interface DeviceParams {
  name: string;
  wqDepth: number;
  latencyNs: number;
  /** min(the device's PASID width, the IOMMU's): PASIDs 1 .. maxPasids-1 are usable. */
  maxPasids: number;
  /** A dedicated work queue: idxd_cdev_open() gives -EBUSY while it has a client. */
  dedicated: boolean;
  /** The IOMMU the device sits behind (an index): SVA domains are per mm per IOMMU. */
  iommu: number;
  /** The driver reserves a kernel PASID at probe (idxd's kernel work queue). */
  kernelWq: boolean;
}

function descAddr(k: Hw, d: number, i: number): number {
  return k.D.wq.at + d * k.D.wq.stride + (i % k.model.devices[d].wqDepth) * DESC_WORDS;
}

/** ENQCMD's enqueue: false (ZF=1) when the queue is full. */
export function wq_submit(k: Hw, d: number, pasid: number, mm: number, task: number): boolean {
  const n = k.get(k.D.wq_count, d);
  if (n >= k.model.devices[d].wqDepth) return false;
  const a = descAddr(k, d, k.get(k.D.wq_head, d) + n);
  k.mem.write(a, pasid);
  k.mem.write(a + 1, mm);
  k.mem.write(a + 2, task);
  k.set(k.D.wq_count, d, n + 1);
  k.link.deviceKick(d);
  return true;
}

/** Accepted descriptors on device `d` with this PASID (and, if mm != 0, from this mm). */
export function wq_outstanding(k: Hw, d: number, pasid: number, mm: number): number {
  const head = k.get(k.D.wq_head, d);
  const n = k.get(k.D.wq_count, d);
  let c = 0;
  for (let i = 0; i < n; i++) {
    const a = descAddr(k, d, head + i);
    if ((pasid === 0 || k.w[a] === pasid) && (mm === 0 || k.w[a + 1] === mm)) c++;
  }
  return c;
}

/**
 * The device completes its oldest descriptor: the DMA goes through the IOMMU
 * (`translate` returns the mm the PASID maps to now, 0 for a fault, which the
 * torn-down entry ignores); then a drain waiting for this PASID may finish.
 */
export function wq_complete<K extends Hw>(
  k: K,
  d: number,
  translate: (k: K, d: number, pasid: number) => number,
): void {
  const n = k.get(k.D.wq_count, d);
  if (n === 0) return;
  const head = k.get(k.D.wq_head, d);
  const a = descAddr(k, d, head);
  const pasid = k.w[a];
  const submitter = k.w[a + 1];
  const mm = translate(k, d, pasid);
  if (mm === 0) {
    k.metrics.dma_faults++;
  } else {
    k.metrics.dma_writes++;
    if (mm !== submitter) {
      k.warn(
        "dma-address-space",
        `${k.model.devices[d].name}: DMA for PASID ${pasid} landed in mm ${mm}, submitted from mm ${submitter}`,
        -1,
      );
    }
  }
  k.mem.write(a, 0);
  k.mem.write(a + 1, 0);
  k.mem.write(a + 2, 0);
  k.set(k.D.wq_head, d, (head + 1) % k.model.devices[d].wqDepth);
  k.set(k.D.wq_count, d, n - 1);
  k.metrics.descriptors_completed++;
  if (k.trace !== null) {
    if (k.trace.complete !== undefined) k.trace.complete(d, pasid, mm);
    else k.trace.instant(-1, `${k.model.devices[d].name}: complete`, { pasid, mm });
  }
}
