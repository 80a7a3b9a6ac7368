// What each word of the machine holds, for symmetry reduction (symmetry.ts):
// a plain value, or a pointer to a slot, or a value the reduction renames
// (a pid, an mm allocation number); and the slot regions it permutes.

import type { RefKind } from "../kernel/path.js";
import type { Field } from "../machine/layout.js";

// What a word holds, for renaming.
export const PLAIN = 0;
export const TASK = 1;
export const MM = 2;
export const FILES = 3;
export const FILE = 4;
export const BOND = 5;
export const PID = 6;
export const TGID = 11;
export const GEN = 7; // an mm allocation number
export const CTX = 8; // a ctx_id: gen + 1, or INIT_MM_CTX_ID
export const SBMM = 9; // a store-buffered loaded_mm: mm + 2 (0: none)
export const FRAMES = 10; // kernel frames: locals renamed by their path's declared pointers

export const REF_KIND: Readonly<Record<RefKind, number>> = {
  task: TASK,
  mm: MM,
  files: FILES,
  file: FILE,
  bond: BOND,
};

/**
 * Every word that names a slot or a renamed value, by struct and field; an
 * array field repeats its pattern (a TLB entry is PCID, page, ctx_id,
 * tlb_gen). Fields not here hold plain values. test/symmetry.test.ts checks
 * these names against the layout, and that the reduction merges only states
 * that behave alike.
 */
export const POINTERS: Readonly<Record<string, Readonly<Record<string, readonly number[]>>>> = {
  glob: {
    task_free: [TASK],
    mm_free: [MM],
    files_free: [FILES],
    sva_lock: [TASK],
    bond_free: [BOND],
    file_free: [FILE],
  },
  cpu: {
    curr: [TASK],
    idle: [TASK],
    prev_task: [TASK],
    xrstor_task: [TASK],
    fpregs_owner: [TASK],
    rq_head: [TASK],
    rq_tail: [TASK],
    prev_mm: [MM],
    loaded_mm: [MM],
    cr3_mm: [MM],
    nmi_cr3_mm: [MM],
    fi_mm: [MM],
    sb_loaded_mm: [SBMM],
    ctx_id: [CTX],
    tlb: [PLAIN, PLAIN, CTX, PLAIN],
    irq_frames: [FRAMES],
  },
  task: {
    pid: [PID],
    tgid: [TGID],
    mm: [MM],
    active_mm: [MM],
    files: [FILES],
    rq_next: [TASK],
    frames: [FRAMES],
  },
  mm: { next_free: [MM], gen: [GEN] },
  files: { next_free: [FILES], fd: [FILE] },
  file: { bond: [BOND], opener: [MM], next_free: [FILE] },
  bond: { mm: [MM], next_free: [BOND] },
  dev: { wq: [PLAIN, MM, TASK], pt: [PLAIN, MM], tlb: [PLAIN, MM], drain: [TASK, PLAIN] },
};

/** The kind of each word of one instance of a struct (its stride). */
export function kindsOf(struct: string, fields: Readonly<Record<string, Field>>, stride: number): Int8Array {
  const out = new Int8Array(stride);
  const ptrs = POINTERS[struct] ?? {};
  for (const name in ptrs) {
    const f = fields[name];
    if (f === undefined) throw new Error(`symmetry: ${struct} has no field ${name}`);
    const pat = ptrs[name];
    for (let i = 0; i < f.len; i++) out[f.off + i] = pat[i % pat.length];
  }
  return out;
}

/**
 * A region of slots the reduction permutes: the live ones (their `live`
 * word nonzero) among themselves; a free slot stays where it is.
 */
export interface Slots {
  base: number;
  stride: number;
  count: number;
  kinds: Int8Array;
  /** Offsets of the words that need renaming (pointers, renamed values), frames excepted. */
  refOffs: Int32Array;
  /** Offset of the word that is nonzero in a live slot. */
  live: number;
  /** new slot of each old one */
  map: Int32Array;
  /** the live slots in their new order (old slot numbers), then their slots in slot order */
  order: Int32Array;
  sorted: Int32Array;
  n: number;
  /** Some slot moves (after finish). */
  moved: boolean;
  /** Bit (1 << kind) of every kind of word it holds. */
  kindMask: number;
}

export function slots(
  struct: string,
  r: { base: number; stride: number; count: number; f: Readonly<Record<string, Field>> },
  live: Field,
): Slots {
  const kinds = kindsOf(struct, r.f, r.stride);
  const refOffs: number[] = [];
  let kindMask = 0;
  for (let o = 0; o < r.stride; o++) {
    if (kinds[o] !== PLAIN && kinds[o] !== FRAMES) refOffs.push(o);
    kindMask |= 1 << kinds[o];
  }
  // frames hold pointers of any kind
  if ((kindMask & (1 << FRAMES)) !== 0)
    kindMask |= (1 << TASK) | (1 << MM) | (1 << FILES) | (1 << FILE) | (1 << BOND);
  return {
    base: r.base,
    stride: r.stride,
    count: r.count,
    kinds,
    refOffs: Int32Array.from(refOffs),
    live: live.off,
    map: new Int32Array(r.count),
    order: new Int32Array(r.count),
    sorted: new Int32Array(r.count),
    n: 0,
    moved: false,
    kindMask,
  };
}
