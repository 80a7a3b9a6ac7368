// Footprints without re-recording (por.ts): a transition's footprint is a
// function of the values of the words it reads, so once recorded it is kept
// in a trie keyed by those values, and found again by reading memory.

import type { Footprints } from "./footprints.js";

/**
 * A table of int32 pairs to int32 values, open addressing, grown at half
 * full: the trie's edges (node, value) -> child and the independence cache
 * (leaf, leaf) -> answer.
 */
export class PairTable {
  private t: Int32Array;
  private mask: number;
  size = 0;

  constructor(log2 = 12) {
    this.t = new Int32Array(3 << log2).fill(-1);
    this.mask = (1 << log2) - 1;
  }

  /** The value of (a, b) (a >= 0), or -1. */
  get(a: number, b: number): number {
    const t = this.t;
    let i = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) & this.mask;
    for (;;) {
      const s = 3 * i;
      const k = t[s];
      if (k === -1) return -1;
      if (k === a && t[s + 1] === b) return t[s + 2];
      i = (i + 1) & this.mask;
    }
  }

  /** Store (a, b) -> v, (a, b) not yet in the table. */
  put(a: number, b: number, v: number): void {
    if (this.size * 2 >= this.mask) this.grow();
    this.insert(a, b, v);
  }

  private insert(a: number, b: number, v: number): void {
    const t = this.t;
    let i = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) & this.mask;
    for (;;) {
      const s = 3 * i;
      if (t[s] === -1) {
        t[s] = a;
        t[s + 1] = b;
        t[s + 2] = v;
        this.size++;
        return;
      }
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.t;
    this.t = new Int32Array(old.length * 2).fill(-1);
    this.mask = this.mask * 2 + 1;
    this.size = 0;
    for (let s = 0; s < old.length; s += 3) if (old[s] !== -1) this.insert(old[s], old[s + 1], old[s + 2]);
  }
}

/** Leaves whose independence is cached in a matrix (4 MiB); pairs beyond in a table. */
const DENSE = 2048;

/** A trie node's word when the node is a leaf: LEAF - leaf number. */
const LEAF = -1;
/** A node's word before its path was recorded on. */
const UNSET = 0x7fffffff;

/**
 * The footprints recorded so far, as a trie per transition. Execution is
 * deterministic in the machine's words: the first word a transition touches
 * is fixed by the transition, and each next one by the values of those
 * touched before (as they were in the state it ran from). A node holds the
 * word read next; its edges are that word's values; a leaf holds the
 * footprint the path leads to (every read and write, the enabling words, and
 * whether the transition reported a finding). `lookup` walks the trie down
 * with plain loads from memory, no proxy trap: the footprint of the
 * transition from the state in memory, or -1 when that path was never
 * recorded. Each footprint is stored once, by its leaf number, so comparing
 * two of them is cached too (`independent`).
 */
export class FootprintMemo {
  private readonly edges = new PairTable(16);
  /** Per node: the word it reads, or LEAF - leaf. Node 0 is the root (its edges: transitions). */
  private word: Int32Array = new Int32Array(1 << 16);
  /** Per node: its first edge, kept beside it (most nodes have one): the value and the child (-1: none). */
  private val1: Int32Array = new Int32Array(1 << 16);
  private kid1: Int32Array = new Int32Array(1 << 16);
  private nodes = 1;
  /** Per leaf: its offset in `pool`: [nr, nw, finding, reads..., writes...]. */
  private leafAt: Int32Array = new Int32Array(1 << 12);
  leaves = 0;
  pool: Int32Array = new Int32Array(1 << 16);
  private poolLen = 0;
  /** The independence of two leaves, cached: 1 independent, 2 not, 0 not yet known; a matrix for the first DENSE leaves. */
  private readonly dense = new Uint8Array(DENSE * DENSE);
  private readonly indep = new PairTable(16);
  private readonly markW: Int32Array;
  private readonly markR: Int32Array;
  private epoch = 0;

  constructor(private readonly raw: Int32Array) {
    this.markW = new Int32Array(raw.length);
    this.markR = new Int32Array(raw.length);
  }

  /** The footprint of `tr` from the state in memory, or -1 when not recorded. */
  lookup(tr: number): number {
    const edges = this.edges;
    const word = this.word;
    const raw = this.raw;
    const val1 = this.val1;
    const kid1 = this.kid1;
    let n = edges.get(0, tr);
    while (n >= 0) {
      const a = word[n];
      if (a < 0) return LEAF - a;
      const v = raw[a];
      n = val1[n] === v && kid1[n] >= 0 ? kid1[n] : edges.get(n, v);
    }
    return -1;
  }

  /**
   * Store the footprint just recorded in fp for `tr` (its first `nexec`
   * reads in the order it made them, with their values before it ran; the
   * enabling words after them); its leaf.
   */
  insert(tr: number, fp: Footprints, nexec: number, finding: boolean): number {
    const edges = this.edges;
    let n = edges.get(0, tr);
    if (n < 0) n = this.node(0, tr);
    for (let i = 0; i < nexec; i++) {
      const a = fp.reads[i];
      const w = this.word[n];
      if (w === UNSET) this.word[n] = a;
      else if (w !== a)
        throw new Error(
          `check --por: transition ${tr} read word ${a} where it read ${w} before (a step that depends on more than the machine's words)`,
        );
      const v = fp.vals[i];
      const m = this.kid1[n] >= 0 && this.val1[n] === v ? this.kid1[n] : edges.get(n, v);
      n = m >= 0 ? m : this.node(n, v);
    }
    if (this.word[n] !== UNSET)
      throw new Error(`check --por: transition ${tr} ended where it read on before`);
    const leaf = this.leaves++;
    this.word[n] = LEAF - leaf;
    if (leaf === this.leafAt.length) this.leafAt = grow(this.leafAt);
    const need = this.poolLen + 3 + fp.nr + fp.nw;
    while (need > this.pool.length) this.pool = grow(this.pool);
    const p = this.pool;
    const o = this.poolLen;
    p[o] = fp.nr;
    p[o + 1] = fp.nw;
    p[o + 2] = finding ? 1 : 0;
    p.set(fp.reads.subarray(0, fp.nr), o + 3);
    p.set(fp.writes.subarray(0, fp.nw), o + 3 + fp.nr);
    this.poolLen = need;
    this.leafAt[leaf] = o;
    return leaf;
  }

  private node(parent: number, v: number): number {
    const n = this.nodes++;
    if (n === this.word.length) {
      this.word = grow(this.word);
      this.val1 = grow(this.val1);
      this.kid1 = grow(this.kid1);
    }
    this.word[n] = UNSET;
    this.kid1[n] = -1;
    if (parent !== 0 && this.kid1[parent] < 0) {
      this.val1[parent] = v;
      this.kid1[parent] = n;
    } else this.edges.put(parent, v, n);
    return n;
  }

  /** Where leaf's footprint is in `pool`. */
  at(leaf: number): number {
    return this.leafAt[leaf];
  }

  /** Did the transition report a finding (a WARN_ON, a step invariant)? */
  finding(leaf: number): boolean {
    return this.pool[this.leafAt[leaf] + 2] !== 0;
  }

  /** Neither writes a word the other reads or writes. */
  independent(x: number, y: number): boolean {
    if (x > y) {
      const z = x;
      x = y;
      y = z;
    }
    if (y < DENSE) {
      const i = x * DENSE + y;
      const c = this.dense[i];
      if (c !== 0) return c === 1;
      const r = this.compute(x, y);
      this.dense[i] = r ? 1 : 2;
      return r;
    }
    const c = this.indep.get(x, y);
    if (c >= 0) return c === 1;
    const r = this.compute(x, y);
    this.indep.put(x, y, r ? 1 : 0);
    return r;
  }

  private compute(x: number, y: number): boolean {
    const p = this.pool;
    const markW = this.markW;
    const markR = this.markR;
    const epoch = ++this.epoch;
    const ox = this.leafAt[x];
    const nrx = p[ox];
    const nwx = p[ox + 1];
    for (let i = 0; i < nwx; i++) markW[p[ox + 3 + nrx + i]] = epoch;
    for (let i = 0; i < nrx; i++) markR[p[ox + 3 + i]] = epoch;
    const oy = this.leafAt[y];
    const nry = p[oy];
    const nwy = p[oy + 1];
    for (let i = 0; i < nwy; i++) {
      const a = p[oy + 3 + nry + i];
      if (markW[a] === epoch || markR[a] === epoch) return false;
    }
    for (let i = 0; i < nry; i++) if (markW[p[oy + 3 + i]] === epoch) return false;
    return true;
  }

  /** Sizes, for the bench: trie nodes, leaves, pool words. */
  stats(): { nodes: number; leaves: number; pool: number } {
    return { nodes: this.nodes, leaves: this.leaves, pool: this.poolLen };
  }
}

function grow(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}
