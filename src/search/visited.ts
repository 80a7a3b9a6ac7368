// The explorer's visited set: 64-bit state fingerprints in an open-addressing
// table, both halves interleaved in one Int32Array (one cache miss per probe),
// grown at half full. (0, 0) marks an empty slot, so a fingerprint of (0, 0)
// is stored as (0, 1): one more collision in 2^64.

export class FingerprintSet {
  private table: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacityLog2 = 16) {
    this.table = new Int32Array(2 << capacityLog2);
    this.mask = (1 << capacityLog2) - 1;
  }

  /** Add (lo, hi); false when it was already there. */
  add(lo: number, hi: number): boolean {
    if ((lo | hi) === 0) lo = 1;
    if (this.size * 2 >= this.mask) this.grow();
    return this.insert(lo | 0, hi | 0);
  }

  /** The bytes the next growth allocates, when it may come within `margin` more states; else 0 (memory budgets). */
  growSoon(margin: number): number {
    return (this.size + margin) * 2 >= this.mask ? this.table.byteLength * 2 : 0;
  }

  /** Bytes the table holds. */
  get bytes(): number {
    return this.table.byteLength;
  }

  private insert(lo: number, hi: number): boolean {
    const t = this.table;
    let i = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 0) & this.mask;
    for (;;) {
      const a = 2 * i;
      const l = t[a];
      const h = t[a + 1];
      if ((l | h) === 0) {
        t[a] = lo;
        t[a + 1] = hi;
        this.size++;
        return true;
      }
      if (l === lo && h === hi) return false;
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Int32Array(old.length * 2);
    this.mask = this.mask * 2 + 1;
    this.size = 0;
    for (let a = 0; a < old.length; a += 2) if ((old[a] | old[a + 1]) !== 0) this.insert(old[a], old[a + 1]);
  }

  /** Probability that two of `n` distinct states share a 64-bit fingerprint (birthday bound). */
  static collisionProbability(n: number): number {
    return Math.min(1, (n * (n - 1)) / 2 ** 65);
  }
}

/**
 * Bitstate (supertrace) mode: a fixed bit array, three bits per state (as
 * SPIN's -k3), from a mix of the whole 64-bit fingerprint and the hash seed
 * spread over the whole array. A state whose three bits are already set is
 * taken as seen, so some states may be missed; the hash factor (bits per
 * state) says how likely that is (SPIN's -DBITSTATE). A state taken for
 * seen prunes all it leads to, which in a bounded search can be much: with
 * two bits drawn from the fingerprint's two halves alone (and never past bit
 * 2^32), check-exit-inflight-8 at bound 1 explored 6.7 M of its 10 M states
 * at a stated hash factor of 1,273.
 */
export class BitstateSet {
  private readonly bits: Uint32Array;
  /** The array's size in bits, a power of two up to 2^37 (16 GiB, `--bitstate`'s most). */
  private readonly size2: number;
  /** The seed, mixed once. */
  private readonly s: number;
  size = 0;

  /** `seed` 0 is the plain hash; another seed places states at other bits (a swarm shard's own omissions). */
  constructor(
    mib: number,
    private readonly seed = 0,
  ) {
    let log2 = 10;
    while (2 ** (log2 + 1) <= mib * 2 ** 23 && log2 < 37) log2++;
    this.bits = new Uint32Array(2 ** (log2 - 5));
    this.size2 = 2 ** log2;
    this.s = Math.imul(seed, 0x85ebca6b);
  }

  add(lo: number, hi: number): boolean {
    // Two 32-bit mixes of all 64 bits and the seed (murmur3's fmix32 after a multiply-xor).
    const s = this.s;
    const x = fmix32(Math.imul(lo ^ s, 0xcc9e2d51) ^ Math.imul(hi, 0x1b873593));
    const y = fmix32(Math.imul(hi ^ (s >>> 7), 0x27d4eb2f) ^ Math.imul(lo, 0x165667b1) ^ 0x5bd1e995);
    // Double hashing over up to 2^37 bits: a start and an odd step, each 37 bits from x and y.
    const m = this.size2;
    const start = ((x >>> 0) * 32 + (y >>> 27)) % m;
    const odd = (y >>> 0) * 32 + (x >>> 27);
    const step = (odd - (odd % 2) + 1) % m; // odd, so the three bits differ
    const bits = this.bits;
    let seen = true;
    for (let i = 0, b = start; i < 3; i++, b = (b + step) % m) {
      const w = Math.floor(b / 32);
      const bit = 1 << (b - w * 32);
      if ((bits[w] & bit) === 0) {
        seen = false;
        bits[w] |= bit;
      }
    }
    if (seen) return false;
    this.size++;
    return true;
  }

  get bytes(): number {
    return this.bits.byteLength;
  }

  /** Bits per stored state: SPIN's hash factor (the higher, the fewer states taken for seen). */
  hashFactor(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : this.size2 / this.size;
  }
}

/**
 * A visited set with a value per state: 64-bit fingerprints, three words a
 * slot (lo, hi, value >= 0). The shortest-counterexample search keeps the
 * smallest depth each state was reached at (`lower`); partial-order
 * reduction keeps the sleep set each was explored with (`get`/`set`).
 */
export class FingerprintMap {
  private table: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacityLog2 = 16) {
    this.table = new Int32Array(3 << capacityLog2);
    this.mask = (1 << capacityLog2) - 1;
  }

  /** The stored value of (lo, hi), or -1 when the state was never stored. */
  get(lo: number, hi: number): number {
    const a = this.find(lo, hi);
    const t = this.table;
    return (t[a] | t[a + 1]) === 0 ? -1 : t[a + 2];
  }

  /** Store (lo, hi) with value `v` (>= 0). */
  set(lo: number, hi: number, v: number): void {
    const a = this.claim(lo, hi); // first: it may grow the table
    this.table[a + 2] = v;
  }

  /**
   * Store `v` when (lo, hi) is new or holds more: 1 when it was new, 2 when
   * it held more (a state reached again with less used), 0 when not stored.
   */
  lowerOrNew(lo: number, hi: number, v: number): 0 | 1 | 2 {
    const size = this.size;
    const a = this.claim(lo, hi);
    const t = this.table;
    if (this.size !== size) {
      t[a + 2] = v;
      return 1;
    }
    if (t[a + 2] <= v) return 0;
    t[a + 2] = v;
    return 2;
  }

  /** Store `v` when (lo, hi) is new or holds more; whether it stored (a state reached again shallower). */
  lower(lo: number, hi: number, v: number): boolean {
    const size = this.size;
    const a = this.claim(lo, hi);
    const t = this.table;
    if (this.size === size && t[a + 2] <= v) return false;
    t[a + 2] = v;
    return true;
  }

  /** The bytes the next growth allocates, when it may come within `margin` more states; else 0 (memory budgets). */
  growSoon(margin: number): number {
    return (this.size + margin) * 2 >= this.mask ? this.table.byteLength * 2 : 0;
  }

  get bytes(): number {
    return this.table.byteLength;
  }

  /** The slot of (lo, hi), taken (with size counted) if it was empty. */
  private claim(lo: number, hi: number): number {
    if (this.size * 2 >= this.mask) this.grow();
    const a = this.find(lo, hi);
    const t = this.table;
    if ((t[a] | t[a + 1]) === 0) {
      t[a] = (lo | hi) === 0 ? 1 : lo;
      t[a + 1] = hi;
      this.size++;
    }
    return a;
  }

  /** Where (lo, hi) is, or the empty slot where it would go. (0, 0) is stored as (1, 0). */
  private find(lo: number, hi: number): number {
    if ((lo | hi) === 0) lo = 1;
    lo |= 0;
    hi |= 0;
    const t = this.table;
    let i = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 0) & this.mask;
    for (;;) {
      const a = 3 * i;
      if ((t[a] | t[a + 1]) === 0 || (t[a] === lo && t[a + 1] === hi)) return a;
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Int32Array(old.length * 2);
    this.mask = this.mask * 2 + 1;
    this.size = 0;
    for (let a = 0; a < old.length; a += 3)
      if ((old[a] | old[a + 1]) !== 0) this.set(old[a], old[a + 1], old[a + 2]);
  }
}

/**
 * The shared visited set: 64-bit fingerprints in open addressing over a
 * SharedArrayBuffer, fixed capacity; with `words` 3, each with a value (a
 * bounded search's fewest ticks). A slot is claimed by a CAS on its low
 * word; its value is stored before its high word; neither half is ever 0 in
 * a stored fingerprint (0 maps to 1), so a reader that sees the low word and
 * a 0 high word knows the writer is between its stores and waits for it,
 * and one that sees the high word sees the value. The value is lowered by a
 * CAS loop (an atomic minimum).
 */
export class SharedFingerprints {
  private readonly t: Int32Array;
  private readonly mask: number;
  /** Whether the last `slot` call claimed the slot it returned. */
  private claimed = false;

  constructor(
    buf: SharedArrayBuffer,
    private readonly words: 2 | 3 = 2,
  ) {
    this.t = new Int32Array(buf);
    this.mask = Math.floor(this.t.length / words) - 1;
  }

  static bytes(capacityLog2: number, words: 2 | 3 = 2): number {
    return (4 * words) << capacityLog2;
  }

  /**
   * 1: this call put (lo, hi) in the table with `v`; 2: it lowered its value
   * to `v`; 0: neither (with 2 words a slot there is no value: 1 or 0);
   * null: the table is full.
   */
  lowerOrNew(lo: number, hi: number, v: number): 0 | 1 | 2 | null {
    const a = this.slot(lo, hi, v);
    if (a < 0) return null;
    if (this.claimed) return 1;
    if (this.words === 2) return 0;
    const t = this.t;
    for (;;) {
      const old = Atomics.load(t, a + 2);
      if (old <= v) return 0;
      if (Atomics.compareExchange(t, a + 2, old, v) === old) return 2;
    }
  }

  /** The slot of (lo, hi), claimed with value `v` if it was not there (`claimed`); -1 when the table is full. */
  private slot(lo: number, hi: number, v: number): number {
    lo |= 0;
    hi |= 0;
    if (lo === 0) lo = 1;
    if (hi === 0) hi = 1;
    const t = this.t;
    const words = this.words;
    let i = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 0) & this.mask;
    for (let probes = 0; probes <= this.mask; probes++) {
      const a = words * i;
      let l = Atomics.load(t, a);
      if (l === 0) {
        l = Atomics.compareExchange(t, a, 0, lo);
        if (l === 0) {
          if (words === 3) Atomics.store(t, a + 2, v);
          Atomics.store(t, a + 1, hi);
          this.claimed = true;
          return a;
        }
      }
      if (l === lo) {
        let h = Atomics.load(t, a + 1);
        while (h === 0) h = Atomics.load(t, a + 1);
        if (h === hi) {
          this.claimed = false;
          return a;
        }
      }
      i = (i + 1) & this.mask;
    }
    return -1;
  }
}

/** murmur3's 32-bit finaliser. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
