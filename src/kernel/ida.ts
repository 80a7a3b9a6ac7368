// The kernel's IDA (lib/idr.c) as Linux uses it for PASIDs:
//   ida_alloc_range(&iommu_global_pasid_ida, 1, max_pasids - 1)
// hands out the LOWEST free ID in [min, max] (not cyclic), ida_free returns it.
//
// Here it is a three-level bitmap stored in the machine memory, so that it is
// snapshotted and fingerprinted with the rest of the state. For IDs [0, 2^bits):
//
//   base + 0   the number of allocated IDs
//   L0         one bit per ID, 1 = allocated               (2^bits / 32 words, at least 1)
//   L1         one bit per L0 word, 1 = that word is full  (L0 words / 32, at least 1)
//   L2         one bit per L1 word, 1 = that word is full  (L1 words / 32, at least 1)
//
// 2^20 IDs take 1 + 32768 + 1024 + 32 words (132 KiB). "Full" means every ID
// that exists is allocated: with bits < 5 the one L0 word has 2^bits bits, and
// likewise a level of fewer than 32 bits. Zeroed memory is an empty IDA.
// The search for the lowest free ID >= min looks at min's own word at each
// level, skips full words through the level above, and scans L2 (at most 32
// words) linearly. Writes go through `mem.write`; nothing allocates.

import type { Memory } from "../machine/memory.js";

export const IDA_MIN_BITS = 1;
export const IDA_MAX_BITS = 20;

/** An IDA placed at `base` in a memory (the caller reserves ida_words(bits) words there, zeroed = all free). */
export interface Ida {
  readonly base: number;
  readonly bits: number;
}

/** 2^bits / 32^k, at least 1: the words of L0, L1, L2 for k = 1, 2, 3, which are also the bits of L1, L2. */
function levelWords(bits: number, k: number): number {
  return bits > 5 * k ? 1 << (bits - 5 * k) : 1;
}

/** The value of a full word in a level of `n` bits. */
function fullWord(n: number): number {
  return n >= 32 ? -1 : ~(-1 << n);
}

/** Index of the lowest zero bit of `m` (m !== -1). */
function lowestZero(m: number): number {
  return 31 - Math.clz32(~m & (m + 1));
}

/** Words an IDA over [0, 2^bits) needs in the machine memory. */
export function ida_words(bits: number): number {
  if (!(Number.isInteger(bits) && bits >= IDA_MIN_BITS && bits <= IDA_MAX_BITS)) {
    throw new RangeError(`ida: bits ${bits} not in ${IDA_MIN_BITS}..${IDA_MAX_BITS}`);
  }
  return 1 + levelWords(bits, 1) + levelWords(bits, 2) + levelWords(bits, 3);
}

/** Lowest zero bit >= `from` within from's own word of the `n`-bit map at `at`; -1 if none. */
function zeroInWord(w: Int32Array, at: number, n: number, from: number): number {
  const m = w[at + (from >>> 5)] | ~(-1 << (from & 31));
  if (m === -1) return -1;
  const i = (from & ~31) + lowestZero(m);
  return i < n ? i : -1;
}

/** Lowest zero bit >= `from` in the `n`-bit map at `at`, word by word (L2: at most 32 words). */
function zeroScan(w: Int32Array, at: number, n: number, from: number): number {
  if (from >= n) return -1;
  let a = at + (from >>> 5);
  const end = at + (n > 32 ? n >>> 5 : 1);
  let m = w[a] | ~(-1 << (from & 31));
  while (m === -1) {
    if (++a === end) return -1;
    m = w[a];
  }
  const i = ((a - at) << 5) + lowestZero(m);
  return i < n ? i : -1;
}

/** Lowest L0 word >= `from` that is not full: in L1 (n1 bits at a1), else via L2 (n2 bits after L1). */
function notFullFrom(w: Int32Array, a1: number, n1: number, n2: number, from: number): number {
  if (from >= n1) return -1;
  const i = zeroInWord(w, a1, n1, from);
  if (i >= 0) return i;
  const k = zeroScan(w, a1 + n2, n2, (from >>> 5) + 1); // the next L1 word that is not full
  return k < 0 ? -1 : (k << 5) + lowestZero(w[a1 + k]);
}

/** Lowest free ID >= `from`: in from's own L0 word, else in the next L0 word that is not full; -1 if none. */
function freeFrom(w: Int32Array, ida: Ida, from: number): number {
  const n0 = 1 << ida.bits;
  if (from >= n0) return -1;
  const a0 = ida.base + 1;
  const i = zeroInWord(w, a0, n0, from);
  if (i >= 0) return i;
  const n1 = levelWords(ida.bits, 1);
  const j = notFullFrom(w, a0 + n1, n1, levelWords(ida.bits, 2), (from >>> 5) + 1);
  return j < 0 ? -1 : (j << 5) + lowestZero(w[a0 + j]);
}

/** Set bit i of the map at `at`; true when its word is then `full`. */
function setBit(mem: Memory, at: number, i: number, full: number): boolean {
  const a = at + (i >>> 5);
  const v = mem.words[a] | (1 << (i & 31));
  mem.write(a, v);
  return v === full;
}

/** Clear bit i of the map at `at`; true when its word was `full`. */
function clearBit(mem: Memory, at: number, i: number, full: number): boolean {
  const a = at + (i >>> 5);
  const v = mem.words[a];
  mem.write(a, v & ~(1 << (i & 31)));
  return v === full;
}

/** Lowest free id in [min, max] (inclusive), marked allocated; -1 when none is free (the kernel's -ENOSPC). */
export function ida_alloc_range(mem: Memory, ida: Ida, min: number, max: number): number {
  if (!(Number.isInteger(min) && Number.isInteger(max))) {
    throw new RangeError(`ida_alloc_range(${min}, ${max})`);
  }
  if (min < 0) return -1; // the kernel's (int)min < 0: -ENOSPC
  const id = freeFrom(mem.words, ida, min);
  if (id < 0 || id > max) return -1;
  const n1 = levelWords(ida.bits, 1);
  const a1 = ida.base + 1 + n1;
  if (setBit(mem, ida.base + 1, id, fullWord(1 << ida.bits)) && setBit(mem, a1, id >>> 5, fullWord(n1))) {
    setBit(mem, a1 + levelWords(ida.bits, 2), id >>> 10, 0); // L2: nothing above it to tell
  }
  mem.write(ida.base, mem.words[ida.base] + 1);
  return id;
}

/** Return `id`; false when it was not allocated (the caller reports the double free). */
export function ida_free(mem: Memory, ida: Ida, id: number): boolean {
  if (!ida_exists(mem, ida, id)) return false;
  const n1 = levelWords(ida.bits, 1);
  const a1 = ida.base + 1 + n1;
  if (clearBit(mem, ida.base + 1, id, fullWord(1 << ida.bits)) && clearBit(mem, a1, id >>> 5, fullWord(n1))) {
    clearBit(mem, a1 + levelWords(ida.bits, 2), id >>> 10, 0); // L2: nothing above it to tell
  }
  mem.write(ida.base, mem.words[ida.base] - 1);
  return true;
}

/** Is `id` allocated? (False for anything outside [0, 2^bits).) */
export function ida_exists(mem: Memory, ida: Ida, id: number): boolean {
  if (!(Number.isInteger(id) && id >= 0 && id < 1 << ida.bits)) return false;
  return (mem.words[ida.base + 1 + (id >>> 5)] & (1 << (id & 31))) !== 0;
}

/** How many IDs are allocated. */
export function ida_count(mem: Memory, ida: Ida): number {
  return mem.words[ida.base];
}

/**
 * The IDA's own invariant, for tests and checkers: every summary bit says
 * exactly whether the word below is full, no bit beyond a level's size is set,
 * and the count is the number of allocated IDs. Returns what is wrong, or null.
 */
export function ida_check(mem: Memory, ida: Ida): string | null {
  const w = mem.words;
  let at = ida.base + 1;
  let count = 0;
  for (let k = 0; k <= 2; k++) {
    const n = k === 0 ? 1 << ida.bits : levelWords(ida.bits, k);
    const words = levelWords(ida.bits, k + 1);
    for (let j = 0; j < words; j++) {
      const v = w[at + j];
      if ((v & ~fullWord(n)) !== 0) return `level ${k} word ${j}: a bit beyond ${n} is set`;
      if (k === 0) for (let b = v; b !== 0; b &= b - 1) count++;
      if (k === 2) continue;
      const above = (w[at + words + (j >>> 5)] >>> (j & 31)) & 1;
      if (above !== (v === fullWord(n) ? 1 : 0)) return `L${k + 1} bit ${j} disagrees with L${k} word ${j}`;
    }
    at += words;
  }
  return count === w[ida.base] ? null : `count ${w[ida.base]} but ${count} ids allocated`;
}
