// Footprints for partial-order reduction (por.ts): the words a transition
// read and wrote as it executed, and the words its being enabled depends on.

import { TR_CPU, TR_TICK, TR_TIMER, trArg, trKind } from "../engine/engine.js";
import type { Kernel } from "../kernel/kernel.js";
import { HEADER_WORDS } from "../machine/memory.js";

/**
 * Footprints for partial-order reduction: in this mode the kernel's view of
 * memory (`k.w`, `k.mem.words`) is a proxy that records, while a transition
 * executes, every word it reads and every word it writes (the fingerprint
 * words excluded: every write updates them). Slow (a proxy trap per access),
 * but exact: nothing in the model reaches the state another way.
 */
export class Footprints {
  reads: Int32Array = new Int32Array(1 << 12);
  /** Per read: the word's value when it was first touched (in the state the transition ran from). */
  vals: Int32Array = new Int32Array(1 << 12);
  nr = 0;
  writes: Int32Array = new Int32Array(1 << 12);
  nw = 0;
  /** Per word: the transition (numbered `tx`) that last recorded it, so each word is listed once. */
  private readonly seenR: Int32Array;
  private readonly seenW: Int32Array;
  private tx = 0;
  private readonly raw: Int32Array;
  private readonly proxy: Int32Array;

  constructor(private readonly k: Kernel) {
    const raw = k.mem.words;
    this.raw = raw;
    // k.get(), the model's most common read, records without a proxy trap.
    // This kernel is the POR search's own, so the override stays for its life.
    (k as { get: Kernel["get"] }).get = (f, i) => {
      const a = f.at + i * f.stride;
      if (this.on) this.read(a);
      return raw[a];
    };
    this.seenR = new Int32Array(raw.length);
    this.seenW = new Int32Array(raw.length);
    const fp = this;
    this.proxy = new Proxy(raw, {
      get(target, prop) {
        if (typeof prop === "string") {
          const i = +prop;
          if (!Number.isNaN(i)) {
            if (i >= HEADER_WORDS) fp.read(i);
            return target[i];
          }
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
      set(target, prop, v) {
        if (typeof prop === "string") {
          const i = +prop;
          if (!Number.isNaN(i)) {
            if (i >= HEADER_WORDS) fp.write(i);
            target[i] = v;
            return true;
          }
        }
        return Reflect.set(target, prop, v, target);
      },
    });
  }

  /** Recording (between `begin` and `end`)? */
  private on = false;

  /**
   * Record from now on: the kernel's memory is the proxy until `end`, and
   * its journaled write records directly (the journal works on the raw
   * words, not through the proxy): a read of the word, and a write when the
   * value changes, as the proxy would have seen them.
   */
  begin(): void {
    this.nr = 0;
    this.nw = 0;
    this.tx++;
    const k = this.k as { w: Int32Array; mem: { words: Int32Array; write: (a: number, v: number) => void } };
    if (this.journaled === null) this.journaled = k.mem.write;
    k.w = this.proxy;
    k.mem.words = this.proxy;
    k.mem.write = this.recordingWrite;
    this.on = true;
  }

  end(): void {
    const k = this.k as { w: Int32Array; mem: { words: Int32Array; write: (a: number, v: number) => void } };
    k.w = this.raw;
    k.mem.words = this.raw;
    if (this.journaled !== null) k.mem.write = this.journaled;
    this.on = false;
  }

  private journaled: ((a: number, v: number) => void) | null = null;
  private readonly recordingWrite = (a: number, v: number): void => {
    if (a >= HEADER_WORDS) {
      this.read(a);
      if (this.raw[a] !== v) this.write(a);
    }
    this.journaled!.call(this.k.mem, a, v);
  };

  read(a: number): void {
    if (this.seenR[a] === this.tx) return;
    this.seenR[a] = this.tx;
    if (this.nr === this.reads.length) {
      this.reads = grow(this.reads);
      this.vals = grow(this.vals);
    }
    this.vals[this.nr] = this.raw[a];
    this.reads[this.nr++] = a;
  }

  write(a: number): void {
    if (this.seenW[a] === this.tx) return;
    this.seenW[a] = this.tx;
    if (this.nw === this.writes.length) this.writes = grow(this.writes);
    this.writes[this.nw++] = a;
  }
}

export function grow(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/** The words a transition's being enabled depends on (see `enabled`): part of its read footprint. */
export function enablingWords(k: Kernel, tr: number, out: (a: number) => void): void {
  const kind = trKind(tr);
  const arg = trArg(tr);
  const at = (f: { at: number; stride: number }, i: number) => f.at + i * f.stride;
  if (kind === TR_CPU || kind === TR_TICK) {
    out(at(k.C.halted, arg));
    out(at(k.C.pending, arg));
    if (kind === TR_TICK) out(at(k.C.nr_running, arg));
  } else if (kind === TR_TIMER) out(at(k.T.tif, arg));
  else out(at(k.D.wq_count, arg));
}
