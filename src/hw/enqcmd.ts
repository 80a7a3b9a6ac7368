// ENQCMD: a 64-byte descriptor stored to a device's portal, its PASID field
// taken from IA32_PASID[19:0]. With the MSR's valid bit clear the CPU raises
// #GP and nothing is sent; with a full queue the device refuses it (ZF=1).

import { wq_submit } from "./device.js";
import type { Hw } from "./hw.js";
import { MSR_IA32_PASID_VALID, PASID_MASK, rdmsr_pasid } from "./xsave.js";

/** The descriptor went into the queue. */
export const ENQCMD_ACCEPTED = 0;
/** ZF=1: the queue is full; software tries again. */
export const ENQCMD_RETRY = 1;
/** #GP: IA32_PASID's valid bit is clear. */
export const ENQCMD_GP = 2;

/** ENQCMD by `task` of `mm` on `cpu` to device `d`'s portal (mapped: the caller checked). */
export function enqcmd(k: Hw, cpu: number, d: number, mm: number, task: number): number {
  const msr = rdmsr_pasid(k, cpu);
  if ((msr & MSR_IA32_PASID_VALID) === 0) return ENQCMD_GP;
  if (!wq_submit(k, d, msr & PASID_MASK, mm, task)) return ENQCMD_RETRY;
  if (k.trace !== null) k.trace.submit?.(cpu, d, msr & PASID_MASK);
  return ENQCMD_ACCEPTED;
}
