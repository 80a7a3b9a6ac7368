// `check --por`'s visited set (por.ts): 64-bit fingerprints with the sleep
// set each state was explored with. Like visited.ts's FingerprintMap, with a
// slot found once per state: `visit` finds it, `expand` stores into it.

/**
 * Open addressing, four words a slot (lo, hi, value, unused: a slot never
 * straddles a cache line), grown at half full. (0, 0) marks an empty slot,
 * so a fingerprint of (0, 0) is stored as (1, 0).
 */
export class SleepMap {
  private table: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacityLog2 = 16) {
    this.table = new Int32Array(4 << capacityLog2);
    this.mask = (1 << capacityLog2) - 1;
  }

  /**
   * The slot of (lo, hi), or of the empty slot where it would go: valid
   * until the next `find`, `store` or `set`.
   */
  find(lo: number, hi: number): number {
    if (this.size * 2 >= this.mask) this.grow();
    lo |= 0;
    hi |= 0;
    if ((lo | hi) === 0) lo = 1;
    const t = this.table;
    let i = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 0) & this.mask;
    for (;;) {
      const a = 4 * i;
      if ((t[a] | t[a + 1]) === 0 || (t[a] === lo && t[a + 1] === hi)) return a;
      i = (i + 1) & this.mask;
    }
  }

  /** The value at a slot `find` returned, -1 when the state was not stored. */
  valueAt(a: number): number {
    const t = this.table;
    return (t[a] | t[a + 1]) === 0 ? -1 : t[a + 2];
  }

  /** Store (lo, hi) with value v (>= 0) at the slot `find` returned for it. */
  store(a: number, lo: number, hi: number, v: number): void {
    const t = this.table;
    if ((t[a] | t[a + 1]) === 0) {
      lo |= 0;
      t[a] = (lo | hi) === 0 ? 1 : lo;
      t[a + 1] = hi;
      this.size++;
    }
    t[a + 2] = v;
  }

  /** Store (lo, hi) with value v. */
  set(lo: number, hi: number, v: number): void {
    this.store(this.find(lo, hi), lo, hi, v);
  }

  private grow(): void {
    const old = this.table;
    this.table = new Int32Array(old.length * 2);
    this.mask = this.mask * 2 + 1;
    this.size = 0;
    for (let a = 0; a < old.length; a += 4) {
      if ((old[a] | old[a + 1]) === 0) continue;
      const b = this.find(old[a], old[a + 1]);
      this.store(b, old[a], old[a + 1], old[a + 2]);
    }
  }
}
