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

/** Bits in level k (0 = IDs, 1 = L0 words, 2 = L1 words): 2^(bits - 5k), at least 1. */
function levelBits(bits: number, k: number): number {
  return bits > 5 * k ? 1 << (bits - 5 * k) : 1;
}

/** Words that hold `n` bits (n a power of two). */
function wordsFor(n: number): number {
  return n > 32 ? n >>> 5 : 1;
}

/** Address of level k's first word. Level k has as many words as level k + 1 has bits. */
function levelAt(ida: Ida, k: number): number {
  const b = ida.bits;
  return ida.base + 1 + (k > 0 ? levelBits(b, 1) : 0) + (k > 1 ? levelBits(b, 2) : 0);
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
  return 1 + wordsFor(levelBits(bits, 0)) + wordsFor(levelBits(bits, 1)) + wordsFor(levelBits(bits, 2));
}

/** Lowest zero bit >= `from` within from's own word of the level at `at` (n bits); -1 if none. */
function zeroInWord(w: Int32Array, at: number, n: number, from: number): number {
  const m = w[at + (from >>> 5)] | ~(-1 << (from & 31));
  if (m === -1) return -1;
  const i = (from & ~31) + lowestZero(m);
  return i < n ? i : -1;
}

/** Lowest free ID >= `from`: from's own word, else the next L0 word that is not full (L1, then L2). -1 if none. */
function zeroFrom(w: Int32Array, ida: Ida, from: number): number {
  const n0 = levelBits(ida.bits, 0);
  const n1 = levelBits(ida.bits, 1);
  const a0 = ida.base + 1;
  const a1 = a0 + n1;
  if (from >= n0) return -1;
  let i = zeroInWord(w, a0, n0, from);
  if (i >= 0) return i;
  const j = (from >>> 5) + 1; // the L0 words after from's
  if (j >= n1) return -1;
  i = zeroInWord(w, a1, n1, j);
  if (i < 0) {
    const k = zeroTop(w, a1 + levelBits(ida.bits, 2), levelBits(ida.bits, 2), (j >>> 5) + 1);
    if (k < 0) return -1;
    i = (k << 5) + lowestZero(w[a1 + k]);
  }
  return (i << 5) + lowestZero(w[a0 + i]);
}

/** Lowest zero bit >= `from` in the top level (n bits at `at`): a scan of its at most 32 words. */
function zeroTop(w: Int32Array, at: number, n: number, from: number): number {
  if (from >= n) return -1;
  let a = at + (from >>> 5);
  const end = at + wordsFor(n);
  let m = w[a] | ~(-1 << (from & 31));
  while (m === -1) {
    if (++a === end) return -1;
    m = w[a];
  }
  const i = ((a - at) << 5) + lowestZero(m);
  return i < n ? i : -1;
}

/** Set bit i of level k; true when its word became full. */
function setBit(mem: Memory, ida: Ida, k: number, i: number): boolean {
  const a = levelAt(ida, k) + (i >>> 5);
  const v = mem.words[a] | (1 << (i & 31));
  mem.write(a, v);
  return v === fullWord(levelBits(ida.bits, k));
}

/** Clear bit i of level k; true when its word was full. */
function clearBit(mem: Memory, ida: Ida, k: number, i: number): boolean {
  const a = levelAt(ida, k) + (i >>> 5);
  const v = mem.words[a];
  mem.write(a, v & ~(1 << (i & 31)));
  return v === fullWord(levelBits(ida.bits, k));
}

/** Lowest free id in [min, max] (inclusive), marked allocated; -1 when none is free (the kernel's -ENOSPC). */
export function ida_alloc_range(mem: Memory, ida: Ida, min: number, max: number): number {
  if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 0 && max >= 0)) {
    throw new RangeError(`ida_alloc_range: bad range [${min}, ${max}]`);
  }
  const id = zeroFrom(mem.words, ida, min);
  if (id < 0 || id > max) return -1;
  if (setBit(mem, ida, 0, id) && setBit(mem, ida, 1, id >>> 5)) setBit(mem, ida, 2, id >>> 10);
  mem.write(ida.base, mem.words[ida.base] + 1);
  return id;
}

/** Return `id`; false when it was not allocated (the caller reports the double free). */
export function ida_free(mem: Memory, ida: Ida, id: number): boolean {
  if (!ida_exists(mem, ida, id)) return false;
  if (clearBit(mem, ida, 0, id) && clearBit(mem, ida, 1, id >>> 5)) clearBit(mem, ida, 2, id >>> 10);
  mem.write(ida.base, mem.words[ida.base] - 1);
  return true;
}

/** Is `id` allocated? (False for anything outside [0, 2^bits).) */
export function ida_exists(mem: Memory, ida: Ida, id: number): boolean {
  if (!(Number.isInteger(id) && id >= 0 && id < levelBits(ida.bits, 0))) return false;
  return (mem.words[levelAt(ida, 0) + (id >>> 5)] & (1 << (id & 31))) !== 0;
}

/** How many IDs are allocated. */
export function ida_count(mem: Memory, ida: Ida): number {
  return mem.words[ida.base];
}

/**
 * The IDA's own invariant, for tests and checkers: every summary bit says
 * exactly whether the word below is full, no bit beyond 2^bits is set, and
 * the count is the number of set L0 bits. Returns what is wrong, or null.
 */
export function ida_check(mem: Memory, ida: Ida): string | null {
  const w = mem.words;
  let count = 0;
  for (let k = 0; k <= 2; k++) {
    const n = levelBits(ida.bits, k);
    const at = levelAt(ida, k);
    for (let j = 0; j < wordsFor(n); j++) {
      const v = w[at + j];
      if ((v & ~fullWord(n)) !== 0) return `level ${k} word ${j}: bits beyond ${n} set`;
      if (k === 0) for (let b = v; b !== 0; b &= b - 1) count++;
      if (k === 2) continue;
      const full = (w[levelAt(ida, k + 1) + (j >>> 5)] >>> (j & 31)) & 1;
      if (full !== (v === fullWord(n) ? 1 : 0)) return `level ${k + 1} bit ${j} disagrees with its word`;
    }
  }
  return count === w[ida.base] ? null : `count ${w[ida.base]} but ${count} ids allocated`;
}
