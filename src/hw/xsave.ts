// The XSAVE feature set as the CPU implements it: the per-CPU register file
// (one word per component; 0 is the init state), the modified-tracking of
// XRSTORS, and XSAVES/XRSTORS between the registers and a task's buffer in
// the compacted format. IA32_PASID is supervisor component 10: RDMSR and
// WRMSR of it are reads and writes of that register.

import { XFEATURE_MAX } from "../machine/state.js";
import type { Hw } from "./hw.js";
import {
  XFEATURE_PASID,
  XSAVE_HDR_OFFSET,
  XSAVE_HDR_SIZE,
  xfeature_get_offset,
  xfeatureName,
  xstate_calculate_size,
} from "./xstate.js";

export const MSR_IA32_PASID_VALID = 1 << 31;
export const PASID_MASK = 0xfffff;
// --- addresses of the per-component words --------------------------------------------------

export function xsAddr(k: Hw, t: number, i: number): number {
  return k.T.xs.at + t * k.T.xs.stride + i;
}

export function xregAddr(k: Hw, cpu: number, i: number): number {
  return k.C.xregs.at + cpu * k.C.xregs.stride + i;
}

/** RDMSR IA32_PASID: the live register of component 10. */
export function rdmsr_pasid(k: Hw, cpu: number): number {
  return k.w[xregAddr(k, cpu, XFEATURE_PASID)];
}

/** The PASID component of `t`'s memory image (0 when XSTATE_BV bit 10 is clear). */
export function xs_pasid(k: Hw, t: number): number {
  return xs_value(k, t, XFEATURE_PASID);
}

/** The value of component `i` in `t`'s memory image (0: init state). */
export function xs_value(k: Hw, t: number, i: number): number {
  return (k.get(k.T.xfeatures, t) & (1 << i)) === 0 ? 0 : k.w[xsAddr(k, t, i)];
}

/** The live value of component `i` on `cpu`. */
export function xreg_value(k: Hw, cpu: number, i: number): number {
  return k.w[xregAddr(k, cpu, i)];
}

/** Cycles to move `bytes` through the cache (XSAVES, XRSTORS, memcpy, memset). */
export function lineCost(k: Hw, bytes: number): number {
  return ((bytes + 63) >>> 6) * k.costs.xstate_line;
}

/** Write a live register (WRMSR, or an XRSTORS of one component from a kernel buffer). */
export function write_xreg(k: Hw, cpu: number, i: number, v: number): void {
  k.mem.write(xregAddr(k, cpu, i), v);
  k.set(k.C.xmodified, cpu, k.get(k.C.xmodified, cpu) | (1 << i));
}

/**
 * `t`'s XSAVES buffer as bytes, compacted format: the header at 512
 * (XSTATE_BV, XCOMP_BV with bit 63) and each component present in
 * XSTATE_BV at xfeature_get_offset(xcomp_bv, i). The model keeps one word
 * per component: it fills the first 4 bytes (the PASID component: the MSR's
 * 8 bytes), the rest stays zero. For tests and `replay`; not the step loop.
 */
export function xsave_image(k: Hw, t: number): Uint8Array {
  const L = k.model.xstate;
  const xcomp = k.get(k.T.xcomp_bv, t);
  const bv = k.get(k.T.xfeatures, t);
  const buf = new Uint8Array(xstate_calculate_size(L, xcomp));
  const dv = new DataView(buf.buffer);
  dv.setUint32(XSAVE_HDR_OFFSET, bv >>> 0, true);
  dv.setUint32(XSAVE_HDR_OFFSET + 8, xcomp >>> 0, true);
  dv.setUint32(XSAVE_HDR_OFFSET + 12, 0x80000000, true); // XCOMP_BV[63]: compacted
  for (let i = 0; i < XFEATURE_MAX; i++) {
    if ((bv & (1 << i)) === 0) continue;
    dv.setUint32(xfeature_get_offset(L, xcomp, i), k.w[xsAddr(k, t, i)] >>> 0, true);
  }
  return buf;
}

// --- XSAVES / XRSTORS ----------------------------------------------------------------------

/**
 * XSAVES of `cpu`'s registers into `t`'s buffer (os_xsave). Components in
 * their init state only clear their XSTATE_BV bit (init optimisation);
 * components unchanged since the last XRSTORS from this same buffer are
 * skipped (modified optimisation). Overwriting a component the kernel wrote
 * into the image after the registers were loaded loses that write.
 */
export function xsaves(k: Hw, cpu: number, t: number): void {
  const sizes = k.model.xstate.sizes;
  const xcomp = k.get(k.T.xcomp_bv, t);
  const mod = k.get(k.C.xmodified, cpu);
  const sameBuf = k.get(k.C.xrstor_task, cpu) === t;
  const newer = k.get(k.T.xs_newer, t);
  let bv = k.get(k.T.xfeatures, t);
  let bytes = XSAVE_HDR_SIZE;
  for (let m = xcomp; m !== 0; m &= m - 1) {
    const bit = m & -m;
    const i = 31 - Math.clz32(bit);
    const v = k.w[xregAddr(k, cpu, i)];
    if (sameBuf && (mod & bit) === 0 && (newer & bit) === 0) continue; // modified optimisation
    if ((newer & bit) !== 0 && (v !== 0 || (bv & bit) !== 0)) {
      k.warn(
        "fpu-lost-update",
        `XSAVES of task ${t} overwrites the ${xfeatureName(i)} value the kernel wrote into its image`,
        cpu,
      );
    }
    if (v === 0) {
      bv &= ~bit; // init optimisation: nothing written
      continue;
    }
    k.mem.write(xsAddr(k, t, i), v);
    bv |= bit;
    bytes += sizes[i];
  }
  k.set(k.T.xfeatures, t, bv);
  k.set(k.T.xs_newer, t, 0);
  k.metrics.xsaves_bytes += bytes;
  k.charge(k.costs.xsaves + lineCost(k, bytes));
}

/**
 * XRSTORS of `t`'s buffer into `cpu`'s registers: components with their
 * XSTATE_BV bit set load from memory, the others their init value.
 */
export function xrstors(k: Hw, cpu: number, t: number): void {
  const L = k.model.xstate;
  const xcomp = k.get(k.T.xcomp_bv, t);
  const bv = k.get(k.T.xfeatures, t);
  if ((bv & ~xcomp) !== 0) {
    k.warn("fpu-state", `task ${t}: XSTATE_BV ${bv.toString(16)} not within XCOMP_BV: XRSTORS #GP`, cpu);
  }
  let bytes = XSAVE_HDR_SIZE;
  for (let m = L.features; m !== 0; m &= m - 1) {
    const bit = m & -m;
    const i = 31 - Math.clz32(bit);
    if ((bv & bit) !== 0) {
      k.mem.write(xregAddr(k, cpu, i), k.w[xsAddr(k, t, i)]);
      bytes += L.sizes[i];
    } else if (k.w[xregAddr(k, cpu, i)] !== 0) {
      k.mem.write(xregAddr(k, cpu, i), 0);
    }
  }
  k.set(k.C.xmodified, cpu, 0);
  k.set(k.C.xrstor_task, cpu, t);
  k.set(k.T.xs_newer, t, 0);
  k.metrics.xrstors_bytes += bytes;
  k.charge(k.costs.xrstors + lineCost(k, bytes));
}
