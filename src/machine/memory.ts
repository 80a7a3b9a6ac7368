// The machine's whole state is one Int32Array: every struct, every kernel
// frame (program counter and locals), every run-queue link. Two words at the
// front hold a 64-bit fingerprint of the rest, kept up to date on every write
// (Zobrist-style: XOR of a mix of (address, value) over all words). So:
//   - hash is O(1): read words 0 and 1;
//   - snapshot/restore is one memcpy of the buffer, fingerprint included;
//   - compare is a word-by-word pass.
// Writes cost two mixes when the value changes; reads are plain array loads.

export const HASH_LO = 0;
export const HASH_HI = 1;
export const HEADER_WORDS = 2;

// The contribution of (address, value) to each 32-bit lane: the address and
// the value are premixed by multiplication, then murmur3's fmix32 finalises.
// The address part is computed once per write and shared by old and new value.
function addrLo(addr: number): number {
  return Math.imul(addr ^ 0x9e3779b9, 0x85ebca6b);
}

function addrHi(addr: number): number {
  return Math.imul(addr ^ 0x7f4a7c15, 0xcc9e2d51);
}

function finLo(a: number, v: number): number {
  let h = a ^ Math.imul(v, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function finHi(a: number, v: number): number {
  let h = a ^ Math.imul(v ^ 0x1b873593, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  return h ^ (h >>> 15);
}

/**
 * The fingerprint's change when the word at `addr` goes from 0 to `v`, low
 * lane: a state's fingerprint is the empty memory's XOR'd with this for every
 * nonzero word (check's symmetry reduction hashes a permuted state this way).
 */
export function wordDeltaLo(addr: number, v: number): number {
  const al = addrLo(addr);
  return finLo(al, v) ^ finLo(al, 0);
}

/** `wordDeltaLo`'s high lane. */
export function wordDeltaHi(addr: number, v: number): number {
  const ah = addrHi(addr);
  return finHi(ah, v) ^ finHi(ah, 0);
}

export class Memory {
  readonly words: Int32Array;
  /**
   * The words themselves, for the journal's own accesses: `words` may be a
   * recording view of them (check --por's footprints), which the journal's
   * bookkeeping (old values, fingerprint words) must not go through.
   */
  private readonly raw: Int32Array;
  /**
   * The undo journal (`check`'s backtracking): (address, old value) pairs of
   * every changing write since journaling began; null when off (`run`).
   */
  private journal: Int32Array | null = null;
  private jlen = 0;

  constructor(size: number) {
    if (!(size > HEADER_WORDS && size < 1 << 28)) throw new RangeError(`memory size ${size} out of range`);
    this.words = new Int32Array(size);
    this.raw = this.words;
    this.rehash();
  }

  get size(): number {
    return this.words.length;
  }

  read(addr: number): number {
    return this.words[addr];
  }

  write(addr: number, v: number): void {
    const w = this.words;
    const old = w[addr];
    if (old === v) return;
    const al = addrLo(addr);
    const ah = addrHi(addr);
    w[HASH_LO] ^= finLo(al, old) ^ finLo(al, v);
    w[HASH_HI] ^= finHi(ah, old) ^ finHi(ah, v);
    w[addr] = v;
  }

  /**
   * Write 0 to words [addr, addr + n). Only the nonzero ones change, so only
   * they are written; while `words` is a recording view (check --por), every
   * word goes through `write`, which records it as read (a zeroing still
   * depends on, and conflicts with, another write of the word).
   */
  zero(addr: number, n: number): void {
    const w = this.raw;
    const all = this.words !== w;
    for (let a = addr; a < addr + n; a++) if (all || w[a] !== 0) this.write(a, 0);
  }

  /** The 64-bit fingerprint as two unsigned 32-bit halves packed in a number-safe string-free form. */
  hashLo(): number {
    return this.words[HASH_LO] >>> 0;
  }

  hashHi(): number {
    return this.words[HASH_HI] >>> 0;
  }

  /** The fingerprint as 16 hex digits (for output; not for the hot loop). */
  hashHex(): string {
    return this.hashHi().toString(16).padStart(8, "0") + this.hashLo().toString(16).padStart(8, "0");
  }

  /** Recompute the fingerprint from scratch: the reference the incremental one must equal. */
  fullHash(): [number, number] {
    const w = this.words;
    let lo = 0;
    let hi = 0;
    for (let a = HEADER_WORDS; a < w.length; a++) {
      const v = w[a];
      if (v === 0) continue; // zero words contribute mix(a, 0) to both; folded into the base below
      const al = addrLo(a);
      const ah = addrHi(a);
      lo ^= finLo(al, v) ^ finLo(al, 0);
      hi ^= finHi(ah, v) ^ finHi(ah, 0);
    }
    return [lo >>> 0, hi >>> 0];
  }

  /** Reset the fingerprint to the full hash (after bulk initialisation through `words`). */
  rehash(): void {
    const [lo, hi] = this.fullHash();
    this.words[HASH_LO] = lo;
    this.words[HASH_HI] = hi;
  }

  /**
   * Start journaling writes, so that `undo` can take the memory back to a
   * `mark`. This instance's `write` becomes a journaling one; `run`, which
   * never journals, keeps the plain method with no check in it.
   */
  startJournal(): void {
    this.journal = new Int32Array(1 << 16);
    this.jlen = 0;
    this.write = this.writeJournaled;
  }

  /** `write` while journaling: the same, with (address, old value) logged first; one method, no call through. */
  private writeJournaled(addr: number, v: number): void {
    const w = this.raw;
    const old = w[addr];
    if (old === v) return;
    let j = this.journal!;
    if (this.jlen + 2 > j.length) {
      const bigger = new Int32Array(j.length * 2);
      bigger.set(j);
      this.journal = j = bigger;
    }
    j[this.jlen++] = addr;
    j[this.jlen++] = old;
    const al = addrLo(addr);
    const ah = addrHi(addr);
    w[HASH_LO] ^= finLo(al, old) ^ finLo(al, v);
    w[HASH_HI] ^= finHi(ah, old) ^ finHi(ah, v);
    w[addr] = v;
  }

  /** A point to come back to: pass it, with the fingerprint words of that moment, to `undo`. */
  mark(): number {
    return this.jlen;
  }

  /** Undo every write since `mark`, newest first; the fingerprint is restored as it was. */
  undo(mark: number, hashLo: number, hashHi: number): void {
    const j = this.journal!;
    const w = this.raw;
    let n = this.jlen;
    while (n > mark) {
      n -= 2;
      w[j[n]] = j[n + 1];
    }
    this.jlen = n;
    w[HASH_LO] = hashLo;
    w[HASH_HI] = hashHi;
  }

  snapshot(into?: Int32Array): Int32Array {
    if (into === undefined) return this.words.slice();
    into.set(this.words);
    return into;
  }

  restore(snap: Int32Array): void {
    if (snap.length !== this.words.length) throw new RangeError("snapshot of another machine layout");
    this.words.set(snap);
  }

  equals(snap: Int32Array): boolean {
    const w = this.words;
    if (snap.length !== w.length) return false;
    for (let a = 0; a < w.length; a++) if (w[a] !== snap[a]) return false;
    return true;
  }
}
