// Partial-order reduction for `check --por`: exhaustive depth-first search
// with sleep sets and persistent sets, a strategy of the depth-first driver.

import {
  describeTransition,
  type Engine,
  TR_CPU,
  TR_DEVICE,
  TR_TICK,
  trArg,
  trKind,
} from "../engine/engine.js";
import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { HASH_HI, HASH_LO } from "../machine/memory.js";
import { runDfs } from "./dfs.js";
import { enablingWords, Footprints } from "./footprints.js";
import { FootprintMemo } from "./fpmemo.js";
import { interruptsMasked, Ownership } from "./ownership.js";
import { SleepMap } from "./sleepmap.js";
import type { DfsStack } from "./stack.js";
import { BaseDfs, EXPLORE, REVISIT, SKIP, type Visit } from "./strategy.js";
import { checkMachine, enabled, endFinding, MAX_ENABLED, stepFinding } from "./transitions.js";
import { type Broken, type CheckBudget, type ExploreResult, POLL_STATES } from "./types.js";
import { FingerprintSet } from "./visited.js";

/** Which reductions `explorePor` applies; all on for `check --por`. */
export interface PorOptions {
  /** Sleep sets: fewer transitions. */
  sleep: boolean;
  /** Persistent sets: fewer states. */
  persistent: boolean;
  /**
   * The ownership assertion (ownership.ts) on every transition whose
   * footprint is recorded: all of them when neither reduction is on (the
   * unreduced search the tests run it over).
   */
  audit: boolean;
}

export const POR_FULL: PorOptions = { sleep: true, persistent: true, audit: true };

/** The SleepMap value's flag for a state explored with a persistent set (bits 0..29 are its sleep set). */
const REDUCED = 1 << 30;

/**
 * Exhaustive depth-first search with sleep sets (Godefroid 1996) and
 * persistent sets, state-based for a search with a visited set.
 *
 * Sleep sets: each state is stored with the sleep set it was explored with,
 * and explored again, for the transitions it then slept, when it is reached
 * with a sleep set that is not a superset. Two transitions are independent
 * at a state when neither writes a word the other reads or writes (their
 * footprints, recorded as they executed from that state, and the words their
 * being enabled depends on). Such a transition behaves the same after the
 * other (it reads the same values), so a transition asleep at a state would
 * break nothing there that it did not break where it was explored. Sleep
 * sets alone save transitions, not states. Ticks commute like the rest, and
 * a permutation of a path takes the same number of ticks, so the preemption
 * bound is kept.
 *
 * Persistent sets (Godefroid's; Clarke/Grumberg/Peled's ample sets, SPIN's
 * safe local moves): at a state where some CPU c's step t is *safe*, only t
 * is explored (minus the sleep set), not every enabled transition. t is safe
 * when
 *   - its footprint from here lies in words c owns (ownership.ts): it writes
 *     only words no other actor reads or writes, reads only words no other
 *     actor writes; the one exception is c's pending-interrupt word, which
 *     others set (ticks, devices, timers, IPIs) and t reads:
 *   - c is not halted, has interrupts masked (irqs_off or inside an
 *     interrupt) and the machine has no NMIs, so whatever bits others set in
 *     pending, t takes no interrupt and stays enabled (c's halted word, like
 *     irqs_off and irq_depth, only c writes);
 *   - it reports nothing (no WARN_ON, no step invariant: those run inside
 *     the step, their reads are in its footprint).
 * Then along any path from here on which c does not step, every transition
 * is independent of t (C1: no other actor touches what t reads or writes,
 * and what c owns cannot change without c stepping), and t stays enabled and
 * behaves the same: {t} is persistent. t reports nothing wherever it is
 * taken along such a path (C2: a finding of another transition is found
 * after t just the same, as it reads the same values). Cycle proviso (C3):
 * when t leads to a state on the depth-first stack, the state is expanded
 * fully. End invariants are checked in terminal states only, and persistent
 * sets keep every reachable terminal state (Godefroid 1996, Thm 4.3). The
 * bound: t is not a tick, so reordering it leaves the ticks of a path as
 * they were, and states are told apart by their ticks as in plain search.
 * Which CPU's step is taken is decided by the state alone (the first safe
 * one), so a state stored as reduced (REDUCED in the SleepMap) and reached
 * again with a smaller sleep set gets the same t: explored again if t slept
 * before and does not now (fully if the proviso then fails).
 *
 * Transitions with a sleep bit: CPU c (bit c), tick c (cpus + c), device d
 * (2 cpus + d), below bit 30; timers and the rest never sleep (conservative).
 */
export class PorDfs extends BaseDfs {
  private readonly fp: Footprints;
  private readonly memo: FootprintMemo;
  private readonly raw: Int32Array;
  private readonly own: Ownership;
  private readonly ncpu: number;
  private readonly visited: SleepMap;
  /** The visited set's slot of the state `visit` found, for `expand` (-1: find it). */
  private slot = -1;
  private readonly auditAll: boolean;
  private readonly buf = new Int32Array(MAX_ENABLED);
  // Per depth, beside the stack's: the visited-set key; the sleep set and
  // the transitions explored so far that may sleep (each with its
  // footprint's leaf in the memo, at most 30: one per sleep bit); the sleep
  // mask the state was entered with; and, for a state explored reduced, its
  // persistent step and how many transitions a full expansion takes (the
  // cycle proviso, decided when the step's child is reached).
  private klo = new Int32Array(256);
  private khi = new Int32Array(256);
  private sleepTr: Int32Array[] = [];
  private sleepLf: Int32Array[] = [];
  private sleepN = new Int32Array(256);
  private doneTr: Int32Array[] = [];
  private doneLf: Int32Array[] = [];
  private doneN = new Int32Array(256);
  private mineAt = new Int32Array(256);
  private ampleAt = new Int32Array(256);
  private ampleLfAt = new Int32Array(256);
  private fullAt = new Int32Array(256);
  /** How many states on the stack have a key whose low 16 bits are the index; `top`: the stack's depth as counted there. */
  private readonly onStackCount = new Int32Array(1 << 16);
  private top = -1;
  private stack: DfsStack | null = null;
  /** The transition `step` ran, whether its footprint is known, and its leaf. */
  private lastTr = -1;
  private track = false;
  private lastLf = -1;
  /** What `visit` found for `expand`: the SleepMap value of an earlier visit (-1: none), the sleep mask now. */
  private stored = -1;
  private mine = 0;
  private silentBefore = 0;
  // What `ample` found: the first safe CPU step (-1: none) and its leaf.
  private ampleTr = -1;
  private ampleLf = -1;
  private sinceStop = 0; // states entered since the budget's stop() was last asked
  private readonly readFp: (a: number) => void;

  constructor(
    k: Kernel,
    private readonly e: Engine,
    private readonly bound: number | null,
    budget: CheckBudget,
    private readonly opts: PorOptions,
  ) {
    super(k, budget);
    this.fp = new Footprints(k);
    this.raw = k.mem.words;
    this.memo = new FootprintMemo(this.raw);
    this.own = new Ownership(k);
    this.ncpu = k.params.cpus;
    this.auditAll = opts.audit && !opts.sleep && !opts.persistent;
    // Sized for the state budget as plain search's set is, up to 2^22 slots.
    let log2 = 16;
    while (log2 < 22 && 2 ** log2 < 2 * budget.maxStates) log2++;
    this.visited = new SleepMap(log2);
    const fp = this.fp;
    this.readFp = (a) => fp.read(a);
  }

  private bitOf(tr: number): number {
    const kind = trKind(tr);
    const arg = trArg(tr);
    const ncpu = this.ncpu;
    const b =
      kind === TR_CPU ? arg : kind === TR_TICK ? ncpu + arg : kind === TR_DEVICE ? 2 * ncpu + arg : -1;
    return b >= 0 && b < 30 ? b : -1;
  }

  private ensure(d: number): void {
    while (this.sleepTr.length <= d) {
      this.sleepTr.push(new Int32Array(32));
      this.sleepLf.push(new Int32Array(32));
      this.doneTr.push(new Int32Array(32));
      this.doneLf.push(new Int32Array(32));
    }
    if (d >= this.klo.length) {
      const g = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.klo = g(this.klo);
      this.khi = g(this.khi);
      this.sleepN = g(this.sleepN);
      this.doneN = g(this.doneN);
      this.mineAt = g(this.mineAt);
      this.ampleAt = g(this.ampleAt);
      this.ampleLfAt = g(this.ampleLfAt);
      this.fullAt = g(this.fullAt);
    }
  }

  /**
   * stateKeyLo, from the words themselves: `k.mem` reads through the footprint
   * recorder's proxy while it records, which would make its loads polymorphic
   * on every call.
   */
  private key(t: number): number {
    const lo = this.raw[HASH_LO] >>> 0;
    return this.bound === null ? lo : lo ^ Math.imul(t, 0x9e3779b1);
  }

  /** k.mem.hashHi(), from the words themselves. */
  private hashHi(): number {
    return this.raw[HASH_HI] >>> 0;
  }

  private ticksLeft(t: number): boolean {
    return this.bound === null || t < this.bound;
  }

  /** The CPUs that are silent (Ownership.silent) in the current state, with t ticks taken: a bit each. */
  private silentMask(t: number): number {
    let m = 0;
    for (let c = 0; c < this.ncpu && c < 30; c++) if (this.own.silent(c, this.ticksLeft(t))) m |= 1 << c;
    return m;
  }

  /** Before a transition from a state with t ticks taken: what the ownership assertion compares with. */
  private capture(t: number): void {
    this.own.capture();
    this.silentBefore = this.silentMask(t);
  }

  /**
   * The ownership assertion on the transition just recorded in fp, from the
   * state captured (ticks `t` after it): no other CPU's words touched, and a
   * silent CPU stays silent.
   */
  private audit(tr: number, t: number): void {
    const fp = this.fp;
    const actor = trKind(tr) === TR_CPU ? trArg(tr) : -1;
    const silentBefore = this.silentBefore;
    let msg = this.own.audit(actor, fp.reads, fp.nr, fp.writes, fp.nw, silentBefore, describeTransition(tr));
    const lost = silentBefore & ~this.silentMask(t) & ~(actor >= 0 ? 1 << actor : 0);
    if (msg === null && lost !== 0)
      msg = `${describeTransition(tr)} ended the silence of cpu ${31 - Math.clz32(lost)}`;
    if (msg !== null) {
      const path = this.stack?.path ?? [];
      throw new Error(
        `check --por: ownership assertion (a model bug, or a field to take out of search/ownership.ts): ${msg}, after ${path.length} transitions [${path.map(describeTransition).join(", ")}]`,
      );
    }
  }

  /**
   * Run tr from the state in memory (ticks `t` after it) with its footprint
   * recorded, the ownership assertion on it when asked, and store the
   * footprint in the memo (into lastLf); what it broke.
   */
  private record(tr: number, t: number, tBefore: number): Broken {
    const fp = this.fp;
    if (this.opts.audit) this.capture(tBefore);
    fp.begin();
    const bad = stepFinding(this.e, tr);
    fp.end();
    const nexec = fp.nr;
    enablingWords(this.k, tr, this.readFp);
    if (this.opts.audit) this.audit(tr, t);
    this.lastLf = this.memo.insert(tr, fp, nexec, bad !== null);
    return bad;
  }

  /**
   * The persistent set of the state at depth d (in memory, its mark taken):
   * the first CPU step among buf[0..n) that is safe, into ampleTr (its leaf
   * into ampleLf). Its footprint from the memo, or recorded by running it
   * and undoing it.
   */
  private ample(s: DfsStack, d: number, n: number): void {
    const k = this.k;
    const C = k.C;
    const buf = this.buf;
    const memo = this.memo;
    const t = s.ticks[d];
    this.ampleTr = -1;
    this.ampleLf = -1;
    let captured = false;
    for (let i = 0; i < n; i++) {
      const tr = buf[i];
      if (trKind(tr) !== TR_CPU || this.bitOf(tr) < 0) continue;
      const c = trArg(tr);
      const silent = this.own.silent(c, this.ticksLeft(t));
      const waived = interruptsMasked(this.k, c) ? C.pending.at + c * C.pending.stride : -1;
      if (!silent && waived < 0) continue;
      let lf = memo.lookup(tr);
      if (lf < 0) {
        this.record(tr, t, t);
        lf = this.lastLf;
        k.mem.undo(s.marks[d], s.hlo[d], s.hhi[d]);
        k.violations.length = 0;
        k.violationCount = 0;
      }
      if (memo.finding(lf)) continue;
      // The task owners of this state, for `confined`.
      if (!captured) this.own.capture();
      captured = true;
      const o = memo.at(lf);
      const p = memo.pool;
      const nr = p[o];
      if (!this.own.confined(c, p, o + 3, nr, o + 3 + nr, p[o + 1], silent, waived)) continue;
      this.ampleTr = tr;
      this.ampleLf = lf;
      return;
    }
  }

  /** Is (lo, hi) the key of a state on the stack at depth 0..d? */
  private onStack(lo: number, hi: number, d: number): boolean {
    lo |= 0;
    hi |= 0;
    if (this.onStackCount[lo & 0xffff] === 0) return false;
    for (let j = 0; j <= d; j++) if (this.klo[j] === lo && this.khi[j] === hi) return true;
    return false;
  }

  /**
   * The child of the state at depth - 1 by the transition `step` ran: new,
   * or visited with a sleep set that is not a subset of this one (or, when
   * it was reduced, one its persistent step slept in).
   */
  visit(t: number, depth: number): Visit {
    this.ensure(depth);
    this.sleepN[depth] = 0;
    if (depth === 0) {
      this.slot = -1;
      this.stored = -1;
      this.mine = 0;
      return EXPLORE;
    }
    const d = depth - 1;
    const zt = this.sleepTr[depth];
    const zl = this.sleepLf[depth];
    let zn = 0;
    let mine = 0;
    if (this.track && this.opts.sleep) {
      // The child's sleep set: what sleeps here, and what was explored here
      // before tr, that is independent of tr.
      const memo = this.memo;
      const lf = this.lastLf;
      const st = this.sleepTr[d];
      const sl = this.sleepLf[d];
      for (let i = 0, n = this.sleepN[d]; i < n; i++) {
        if (memo.independent(sl[i], lf)) {
          zt[zn] = st[i];
          zl[zn++] = sl[i];
          mine |= 1 << this.bitOf(st[i]);
        }
      }
      const dt = this.doneTr[d];
      const dl = this.doneLf[d];
      const dn = this.doneN[d];
      for (let i = 0; i < dn; i++) {
        if (memo.independent(dl[i], lf)) {
          zt[zn] = dt[i];
          zl[zn++] = dl[i];
          mine |= 1 << this.bitOf(dt[i]);
        }
      }
      if (this.bitOf(this.lastTr) >= 0) {
        dt[dn] = this.lastTr;
        dl[dn] = lf;
        this.doneN[d] = dn + 1;
      }
    }
    const lo = this.key(t);
    const hi = this.hashHi();
    this.slot = this.visited.find(lo, hi);
    const stored = this.visited.valueAt(this.slot);
    // The cycle proviso of a state explored reduced: its persistent step
    // leads onto the stack, so it is expanded fully after all.
    if (this.fullAt[d] > 0 && this.lastTr === this.ampleAt[d] && stored >= 0 && this.onStack(lo, hi, d)) {
      const s = this.stack as DfsStack;
      s.counts[d] = this.fullAt[d];
      this.fullAt[d] = 0;
      this.visited.set(this.klo[d], this.khi[d], this.mineAt[d]);
      this.slot = this.visited.find(lo, hi);
    }
    this.stored = stored;
    this.mine = mine;
    if (stored < 0) {
      this.sleepN[depth] = zn;
      return EXPLORE;
    }
    if ((stored & ~REDUCED & ~mine) === 0) return SKIP; // explored before with less asleep
    // Keep asleep only what slept both times.
    let j = 0;
    for (let i = 0; i < zn; i++) {
      if ((stored & (1 << this.bitOf(zt[i]))) !== 0) {
        zt[j] = zt[i];
        zl[j++] = zl[i];
      }
    }
    this.sleepN[depth] = j;
    return REVISIT;
  }

  /**
   * The transitions after the persistent step into tdo[c..): what a full
   * expansion adds (enabled, not asleep); its new length.
   */
  private rest(tdo: Int32Array, c: number, n: number, mine: number, ampleTr: number): number {
    const buf = this.buf;
    for (let i = 0; i < n; i++) {
      const tr = buf[i];
      const b = this.bitOf(tr);
      if (tr !== ampleTr && (b < 0 || (mine & (1 << b)) === 0)) tdo[c++] = tr;
    }
    return c;
  }

  /** Does ampleTr from the state at depth d (in memory) lead onto the stack? Run and undone. */
  private ampleOnStack(s: DfsStack, d: number): boolean {
    const k = this.k;
    stepFinding(this.e, this.ampleTr);
    const lo = this.key(s.ticks[d]);
    const hi = this.hashHi();
    k.mem.undo(s.marks[d], s.hlo[d], s.hhi[d]);
    k.violations.length = 0;
    k.violationCount = 0;
    return this.onStack(lo, hi, d);
  }

  /**
   * Enter the current state at depth d (pushed on the stack), with the sleep
   * set `mine` (its transitions already in sleepTr[d]/..., kept there only as
   * far as they also slept at an earlier visit). `stored`: the SleepMap
   * value of an earlier visit, -1 when there was none. Sets what to explore
   * and the state's new SleepMap value; returns how many transitions
   * are enabled. A state explored reduced takes its persistent step first
   * and alone; the rest follow if the step's child turns out to be on the
   * stack (`visit`), the cycle proviso.
   */
  override expand(s: DfsStack, d: number): number {
    const k = this.k;
    const buf = this.buf;
    const stored = this.stored;
    const mine = this.mine;
    const t = s.ticks[d];
    this.stack = s;
    const lo = this.key(t) | 0;
    const hi = this.hashHi() | 0;
    const count = this.onStackCount;
    for (; this.top >= d; this.top--) count[this.klo[this.top] & 0xffff]--; // popped since
    this.top = d;
    count[lo & 0xffff]++;
    this.klo[d] = lo;
    this.khi[d] = hi;
    this.doneN[d] = 0;
    this.mineAt[d] = mine;
    this.ampleAt[d] = -1;
    this.fullAt[d] = 0;
    let n = enabled(k, buf);
    const all = n;
    if (this.bound !== null && t >= this.bound) {
      let j = 0;
      for (let i = 0; i < n; i++) if (trKind(buf[i]) !== TR_TICK) buf[j++] = buf[i];
      n = j;
    }
    const before = stored >= 0 ? stored & ~REDUCED : 0;
    // Persistent sets: on a first visit, or when the earlier visit was reduced.
    this.ampleTr = -1;
    if (this.opts.persistent && n > 1 && (stored < 0 || (stored & REDUCED) !== 0)) {
      this.ample(s, d, n);
      if (stored >= 0 && this.ampleTr < 0)
        throw new Error("check --por: a state's persistent set changed between visits");
    }
    const ampleTr = this.ampleTr;
    const visited = this.visited;
    const slot = this.slot >= 0 ? this.slot : visited.find(lo, hi);
    this.slot = -1;
    let c = 0;
    const tdo = s.trs[d];
    const b = ampleTr >= 0 ? 1 << this.bitOf(ampleTr) : 0;
    if (stored >= 0 && (stored & REDUCED) !== 0) {
      // Explored before: ampleTr unless it slept. Now: ampleTr if it slept
      // then and does not now.
      visited.store(slot, lo, hi, (before & mine) | REDUCED);
      if ((before & b) !== 0 && (mine & b) === 0) c = this.reduced(tdo, d, n, mine);
    } else if (stored >= 0) {
      // Explored before fully: what slept then and does not now.
      for (let i = 0; i < n; i++) {
        const bb = this.bitOf(buf[i]);
        if (bb >= 0 && (before & ~mine & (1 << bb)) !== 0) tdo[c++] = buf[i];
      }
      visited.store(slot, lo, hi, before & mine);
    } else if (ampleTr >= 0 && (mine & b) === 0) {
      visited.store(slot, lo, hi, mine | REDUCED);
      c = this.reduced(tdo, d, n, mine);
    } else if (ampleTr >= 0 && !this.ampleOnStack(s, d)) {
      visited.store(slot, lo, hi, mine | REDUCED); // its persistent step asleep
    } else {
      for (let i = 0; i < n; i++) {
        const bb = this.bitOf(buf[i]);
        if (bb < 0 || (mine & (1 << bb)) === 0) tdo[c++] = buf[i];
      }
      visited.store(slot, lo, hi, mine);
    }
    s.counts[d] = c;
    return all;
  }

  /** Take ampleTr alone from the state at depth d, the rest kept behind it for the proviso; how many to take. */
  private reduced(tdo: Int32Array, d: number, n: number, mine: number): number {
    tdo[0] = this.ampleTr;
    this.ampleAt[d] = this.ampleTr;
    this.ampleLfAt[d] = this.ampleLf;
    this.fullAt[d] = this.rest(tdo, 1, n, mine, this.ampleTr);
    return 1;
  }

  /**
   * Run tr, its footprint known when it is needed: to compare tr with what
   * sleeps here, with what was explored here before it, or with what is
   * still to explore (recorded for the ownership assertion on every
   * transition when nothing is reduced). Found in the memo, or recorded.
   */
  override step(e: Engine, tr: number, t: number, d: number): Broken {
    const s = this.stack as DfsStack;
    this.lastTr = tr;
    if (this.auditAll) {
      this.track = true;
      this.capture(s.ticks[d]);
      this.fp.begin();
      const bad = stepFinding(e, tr);
      this.fp.end();
      enablingWords(this.k, tr, this.readFp);
      this.audit(tr, t);
      return bad;
    }
    const track = this.opts.sleep && (this.sleepN[d] > 0 || this.doneN[d] > 0 || s.nexts[d] < s.counts[d]);
    this.track = track;
    if (!track) return stepFinding(e, tr);
    const lf = tr === this.ampleAt[d] ? this.ampleLfAt[d] : this.memo.lookup(tr);
    if (lf < 0) return this.record(tr, t, s.ticks[d]);
    this.lastLf = lf;
    return stepFinding(e, tr);
  }

  override poll(states: number, transitions: number, depth: number): string | null {
    if (states >= this.budget.maxStates) return `state budget: ${this.budget.maxStates} states`;
    if (++this.sinceStop === POLL_STATES && this.budget.stop) {
      this.sinceStop = 0;
      return this.budget.stop({ states, transitions, depth: depth + 1 });
    }
    return null;
  }

  describe(): string {
    const kinds = [this.opts.sleep ? "sleep sets" : "", this.opts.persistent ? "persistent sets" : ""].filter(
      (x) => x !== "",
    );
    return `${this.bound === null ? "complete" : `preemption-bound:${this.bound}`}${kinds.length > 0 ? `, ${kinds.join(" + ")}` : ""}`;
  }
}

export function explorePor(
  spec: BootSpec,
  properties: readonly string[],
  budget: CheckBudget,
  preemptionBound: number | null,
  opts: PorOptions = POR_FULL,
): ExploreResult {
  const { k, e } = checkMachine(spec, properties);
  const strat = new PorDfs(k, e, preemptionBound, budget, opts);
  return runDfs(k, e, strat, preemptionBound, FingerprintSet.collisionProbability, true, (n) =>
    n === 0 ? endFinding(e) : null,
  );
}
