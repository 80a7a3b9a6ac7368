// A binary min-heap of events ordered by (time, seq): the SimPy core. The
// sequence number makes same-time events come out in the order they were
// scheduled, so runs are deterministic. Parallel typed arrays, no objects.

export class EventHeap {
  private time: Float64Array;
  private seq: Float64Array;
  private item: Int32Array;
  private n = 0;
  private nextSeq = 0;

  constructor(capacity = 64) {
    this.time = new Float64Array(capacity);
    this.seq = new Float64Array(capacity);
    this.item = new Int32Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  topTime(): number {
    return this.time[0];
  }

  topItem(): number {
    return this.item[0];
  }

  push(time: number, item: number): void {
    if (this.n === this.time.length) this.grow();
    let i = this.n++;
    const s = this.nextSeq++;
    const T = this.time;
    const S = this.seq;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (T[p] < time || (T[p] === time && S[p] < s)) break;
      this.move(i, p);
      i = p;
    }
    this.put(i, time, s, item);
  }

  /**
   * The earliest time below the top: the top's children are the minima of
   * their subtrees. An event earlier than this (strictly: a re-pushed event
   * loses ties, its sequence number being newer) would be the top again.
   */
  secondTime(): number {
    const n = this.n;
    if (n <= 1) return Number.POSITIVE_INFINITY;
    if (n === 2) return this.time[1];
    const a = this.time[1];
    const b = this.time[2];
    return Math.min(a, b);
  }

  /** Remove the top event. */
  pop(): void {
    const last = --this.n;
    if (last > 0) this.siftDown(this.time[last], this.seq[last], this.item[last]);
  }

  /** Replace the top event by a new one (cheaper than pop + push). */
  replaceTop(time: number, item: number): void {
    this.siftDown(time, this.nextSeq++, item);
  }

  private siftDown(time: number, s: number, item: number): void {
    const T = this.time;
    const S = this.seq;
    const n = this.n;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (T[r] < T[c] || (T[r] === T[c] && S[r] < S[c]))) c = r;
      if (time < T[c] || (time === T[c] && s < S[c])) break;
      this.move(i, c);
      i = c;
    }
    this.put(i, time, s, item);
  }

  /** Slot i takes slot j's event. */
  private move(i: number, j: number): void {
    this.time[i] = this.time[j];
    this.seq[i] = this.seq[j];
    this.item[i] = this.item[j];
  }

  private put(i: number, time: number, s: number, item: number): void {
    this.time[i] = time;
    this.seq[i] = s;
    this.item[i] = item;
  }

  private grow(): void {
    const cap = this.time.length * 2;
    const t = new Float64Array(cap);
    t.set(this.time);
    const s = new Float64Array(cap);
    s.set(this.seq);
    const it = new Int32Array(cap);
    it.set(this.item);
    this.time = t;
    this.seq = s;
    this.item = it;
  }
}
