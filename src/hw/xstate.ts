// The XSTATE layout (arch/x86/kernel/fpu/xstate.c): which components the CPU
// enumerates (CPUID leaf 0xD), their sizes, standard offsets and 64-byte
// alignment flags, and the compacted offsets of one buffer computed from its
// own xcomp_bv, as xfeature_get_offset() does. Boot-time only: nothing here
// runs in the step loop.

import { XFEATURE_MAX } from "../machine/state.js";

export { XFEATURE_MAX };

/** Component numbers (enum xfeature). */
export const XFEATURE_FP = 0;
export const XFEATURE_SSE = 1;
export const XFEATURE_YMM = 2;
export const XFEATURE_OPMASK = 5;
export const XFEATURE_ZMM_Hi256 = 6;
export const XFEATURE_Hi16_ZMM = 7;
export const XFEATURE_PKRU = 9;
export const XFEATURE_PASID = 10;
export const XFEATURE_XTILE_CFG = 17;
export const XFEATURE_XTILE_DATA = 18;

export const XFEATURE_MASK_PASID = 1 << XFEATURE_PASID;
export const XFEATURE_MASK_XTILE_DATA = 1 << XFEATURE_XTILE_DATA;

/** The legacy region (x87 + SSE, 512 bytes) and the XSAVE header (64 bytes). */
export const XSAVE_LEGACY_SIZE = 512;
export const XSAVE_HDR_SIZE = 64;
export const XSAVE_HDR_OFFSET = 512;
/** Where the extended components start in either format. */
export const FXSAVE_SIZE_WITH_HDR = XSAVE_LEGACY_SIZE + XSAVE_HDR_SIZE;

export interface XComponentSpec {
  /** The scenario's name for it (machine.xfeatures). */
  readonly name: string;
  readonly nr: number;
  /** The kernel struct the kernel checks CPUID's size against (check_xstate_against_struct). */
  readonly struct: string;
  readonly size: number;
  /** Standard-format offset (CPUID(0xD,i).EBX); -1 for supervisor components (compacted only). */
  readonly offset: number;
  /** CPUID(0xD,i).ECX[1]: 64-byte aligned in the compacted format. */
  readonly align64: boolean;
  readonly supervisor: boolean;
  /** Dynamic (XFD-armed until the process asks for it with ARCH_REQ_XCOMP_PERM). */
  readonly dynamic: boolean;
}

/** A Sapphire-Rapids-like CPUID table (no MPX, CET off); only the AMX components are aligned. */
export const XCOMPONENTS: readonly XComponentSpec[] = [
  {
    name: "x87",
    nr: 0,
    struct: "fxregs_state (x87 part)",
    size: 160,
    offset: 0,
    align64: false,
    supervisor: false,
    dynamic: false,
  },
  {
    name: "sse",
    nr: 1,
    struct: "fxregs_state (XMM part)",
    size: 256,
    offset: 160,
    align64: false,
    supervisor: false,
    dynamic: false,
  },
  {
    name: "avx",
    nr: 2,
    struct: "ymmh_struct",
    size: 256,
    offset: 576,
    align64: false,
    supervisor: false,
    dynamic: false,
  },
  {
    name: "opmask",
    nr: 5,
    struct: "avx_512_opmask_state",
    size: 64,
    offset: 1088,
    align64: false,
    supervisor: false,
    dynamic: false,
  },
  {
    name: "zmm_hi256",
    nr: 6,
    struct: "avx_512_zmm_uppers_state",
    size: 512,
    offset: 1152,
    align64: false,
    supervisor: false,
    dynamic: false,
  },
  {
    name: "hi16_zmm",
    nr: 7,
    struct: "avx_512_hi16_state",
    size: 1024,
    offset: 1664,
    align64: false,
    supervisor: false,
    dynamic: false,
  },
  {
    name: "pkru",
    nr: 9,
    struct: "pkru_state",
    size: 8,
    offset: 2688,
    align64: false,
    supervisor: false,
    dynamic: false,
  },
  {
    name: "pasid",
    nr: 10,
    struct: "ia32_pasid_state",
    size: 8,
    offset: -1,
    align64: false,
    supervisor: true,
    dynamic: false,
  },
  {
    name: "amx_tilecfg",
    nr: 17,
    struct: "xtile_cfg",
    size: 64,
    offset: 2752,
    align64: true,
    supervisor: false,
    dynamic: false,
  },
  {
    name: "amx_tiledata",
    nr: 18,
    struct: "xtile_data",
    size: 8192,
    offset: 2816,
    align64: true,
    supervisor: false,
    dynamic: true,
  },
];

const BY_NAME = new Map(XCOMPONENTS.map((c) => [c.name, c]));
const BY_NR = new Map(XCOMPONENTS.map((c) => [c.nr, c]));

/** The components a scenario name stands for (`amx` is TILECFG and TILEDATA). */
export function xfeatureNumbers(name: string): number[] {
  if (name === "amx") return [XFEATURE_XTILE_CFG, XFEATURE_XTILE_DATA];
  const c = BY_NAME.get(name);
  return c === undefined ? [] : [c.nr];
}

export function xfeatureName(nr: number): string {
  return BY_NR.get(nr)?.name ?? `xfeature ${nr}`;
}

/** What a scenario may override of one component's CPUID(0xD,i) entry. */
export interface CpuidOverride {
  size?: number;
  offset?: number;
  align64?: boolean;
}

/** The machine's XSTATE layout: what boot computes from CPUID and keeps in fpu_kernel_cfg. */
export interface XstateLayout {
  /** Enabled components (XCR0 | IA32_XSS). */
  readonly features: number;
  readonly supervisor: number;
  /** Dynamic components (XFD): not in a task's buffer until permitted and first used. */
  readonly dynamic: number;
  /** The default buffer's xcomp_bv (every enabled feature but the dynamic ones). */
  readonly defaultXcomp: number;
  /** Per component number: its size, standard offset and alignment (0 / -1 / false when absent). */
  readonly sizes: readonly number[];
  readonly stdOffsets: readonly number[];
  readonly aligned: readonly boolean[];
}

/**
 * Build the layout from the enabled component names and the CPUID overrides.
 * Returns the layout, or an error naming the offending key (what the kernel
 * would refuse: a size that does not match its struct disables XSAVE; an
 * aligned component at an unaligned offset; overlapping standard offsets; a
 * missing dependency).
 */
export function buildXstateLayout(
  names: readonly string[],
  cpuid: Readonly<Record<string, CpuidOverride>>,
): XstateLayout | { error: string; key: string[] } {
  let features = (1 << XFEATURE_FP) | (1 << XFEATURE_SSE);
  for (const n of names) for (const nr of xfeatureNumbers(n)) features |= 1 << nr;
  const has = (nr: number) => (features & (1 << nr)) !== 0;
  const avx512 = [XFEATURE_OPMASK, XFEATURE_ZMM_Hi256, XFEATURE_Hi16_ZMM];
  if (avx512.some(has) && !avx512.every(has)) {
    return {
      error: "AVX-512 needs all three of opmask, zmm_hi256 and hi16_zmm (the kernel clears them together)",
      key: ["machine", "xfeatures"],
    };
  }
  if (avx512.some(has) && !has(XFEATURE_YMM))
    return { error: "AVX-512 components need avx", key: ["machine", "xfeatures"] };
  if (has(XFEATURE_XTILE_DATA) !== has(XFEATURE_XTILE_CFG)) {
    return {
      error: "amx_tiledata and amx_tilecfg come together (xfeature dependency XTILE_DATA -> XTILE_CFG)",
      key: ["machine", "xfeatures"],
    };
  }
  const sizes = new Array<number>(XFEATURE_MAX).fill(0);
  const stdOffsets = new Array<number>(XFEATURE_MAX).fill(-1);
  const aligned = new Array<boolean>(XFEATURE_MAX).fill(false);
  for (const [name, ov] of Object.entries(cpuid)) {
    const c = BY_NAME.get(name);
    if (c === undefined)
      return { error: `unknown XSTATE component '${name}'`, key: ["machine", "cpuid_xstate", name] };
    if (!has(c.nr)) {
      return {
        error: `component '${name}' is not in machine.xfeatures`,
        key: ["machine", "cpuid_xstate", name],
      };
    }
    if (ov.size !== undefined && ov.size !== c.size) {
      return {
        error: `size ${ov.size} does not match struct ${c.struct} (${c.size} bytes): the kernel would disable XSAVE`,
        key: ["machine", "cpuid_xstate", name, "size"],
      };
    }
    if (ov.offset !== undefined && c.supervisor) {
      return {
        error: `'${name}' is a supervisor component: it has no standard-format offset`,
        key: ["machine", "cpuid_xstate", name, "offset"],
      };
    }
    if (ov.offset !== undefined && c.nr < 2) {
      return {
        error: `'${name}' lives in the legacy region at a fixed offset (${c.offset})`,
        key: ["machine", "cpuid_xstate", name, "offset"],
      };
    }
  }
  for (const c of XCOMPONENTS) {
    if (!has(c.nr)) continue;
    const ov = cpuid[c.name] ?? {};
    sizes[c.nr] = c.size;
    stdOffsets[c.nr] = ov.offset ?? c.offset;
    aligned[c.nr] = ov.align64 ?? c.align64;
    if (aligned[c.nr] && stdOffsets[c.nr] > 0 && stdOffsets[c.nr] % 64 !== 0) {
      return {
        error: `'${c.name}' is 64-byte aligned but its standard offset ${stdOffsets[c.nr]} is not a multiple of 64`,
        key: ["machine", "cpuid_xstate", c.name],
      };
    }
  }
  // Standard-format offsets: after the legacy region and the header, in component order, no overlap.
  let end = FXSAVE_SIZE_WITH_HDR;
  let prev = "the XSAVE header";
  for (const c of XCOMPONENTS) {
    if (!has(c.nr) || c.nr < 2 || c.supervisor) continue;
    const off = stdOffsets[c.nr];
    if (off < end) {
      return {
        error: `standard offset ${off} of '${c.name}' overlaps ${prev} (which ends at ${end})`,
        key: ["machine", "cpuid_xstate", c.name],
      };
    }
    end = off + sizes[c.nr];
    prev = `'${c.name}'`;
  }
  let supervisor = 0;
  let dynamic = 0;
  for (const c of XCOMPONENTS) {
    if (!has(c.nr)) continue;
    if (c.supervisor) supervisor |= 1 << c.nr;
    if (c.dynamic) dynamic |= 1 << c.nr;
  }
  return { features, supervisor, dynamic, defaultXcomp: features & ~dynamic, sizes, stdOffsets, aligned };
}

/**
 * xfeature_get_offset(xcomp_bv, nr): the compacted offset of component `nr`
 * in a buffer whose xcomp_bv is `xcomp`: from 576, each present component
 * below it in order, aligned up to 64 where CPUID says so.
 */
export function xfeature_get_offset(L: XstateLayout, xcomp: number, nr: number): number {
  if (nr < 2) return L.stdOffsets[nr];
  let offs = FXSAVE_SIZE_WITH_HDR;
  for (let i = 2; i < XFEATURE_MAX; i++) {
    if ((xcomp & (1 << i)) === 0) continue;
    if (L.aligned[i]) offs = (offs + 63) & ~63;
    if (i === nr) return offs;
    offs += L.sizes[i];
  }
  return -1; // not in this buffer
}

/** The size of a compacted buffer with this xcomp_bv (xstate_calculate_size()). */
export function xstate_calculate_size(L: XstateLayout, xcomp: number): number {
  let offs = FXSAVE_SIZE_WITH_HDR;
  for (let i = 2; i < XFEATURE_MAX; i++) {
    if ((xcomp & (1 << i)) === 0) continue;
    if (L.aligned[i]) offs = (offs + 63) & ~63;
    offs += L.sizes[i];
  }
  return offs;
}
