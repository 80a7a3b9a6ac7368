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
import { runDfs } from "./dfs.js";
import { enablingWords, Footprints, grow } from "./footprints.js";
import { Ownership } from "./ownership.js";
import type { DfsStack } from "./stack.js";
import { BaseDfs, EXPLORE, REVISIT, SKIP, type Visit } from "./strategy.js";
import { checkMachine, enabled, endFinding, MAX_ENABLED, stateKeyLo, stepFinding } from "./transitions.js";
import type { Broken, CheckBudget, ExploreResult } from "./types.js";
import { FingerprintMap, FingerprintSet } from "./visited.js";

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

/** The FingerprintMap value's flag for a state explored with a persistent set (bits 0..29 are its sleep set). */
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
 * one), so a state stored as reduced (REDUCED in the FingerprintMap) and reached
 * again with a smaller sleep set gets the same t: explored again if t slept
 * before and does not now (fully if the proviso then fails).
 *
 * Transitions with a sleep bit: CPU c (bit c), tick c (cpus + c), device d
 * (2 cpus + d), below bit 30; timers and the rest never sleep (conservative).
 */
export class PorDfs extends BaseDfs {
  private readonly fp: Footprints;
  private readonly own: Ownership;
  private readonly ncpu: number;
  private readonly visited = new FingerprintMap();
  private readonly markW: Int32Array;
  private readonly markR: Int32Array;
  private epoch = 0;
  private readonly auditAll: boolean;
  private readonly buf = new Int32Array(MAX_ENABLED);
  // Per depth, beside the stack's: the visited-set key, the sleep set
  // (transitions with a reference to their footprint), and a pool of the
  // footprints of the transitions explored from this state: [nr, nw, reads..., writes...].
  private readonly klo: number[] = [];
  private readonly khi: number[] = [];
  private readonly sleepTr: number[][] = [];
  private readonly sleepFp: number[][] = []; // the footprint's offset in its pool ...
  private readonly sleepFpDepth: number[][] = []; // ... and the depth of that pool
  private readonly pools: Int32Array[] = [];
  private readonly poolLen: number[] = [];
  private readonly doneTr: number[][] = [];
  private readonly doneFp: number[][] = [];
  private stack: DfsStack | null = null;
  /** The transition `step` ran, and whether its footprint was recorded. */
  private lastTr = -1;
  private track = false;
  /** What `visit` found for `expand`: the FingerprintMap value of an earlier visit (-1: none), the sleep mask now. */
  private stored = -1;
  private mine = 0;
  private silentBefore = 0;
  // What `ample` found: the first safe CPU step (-1: none), and whether it leads onto the stack.
  private ampleTr = -1;
  private ampleOnStack = false;
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
    this.own = new Ownership(k);
    this.ncpu = k.params.cpus;
    this.markW = new Int32Array(k.mem.size);
    this.markR = new Int32Array(k.mem.size);
    this.auditAll = opts.audit && !opts.sleep && !opts.persistent;
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
      this.sleepTr.push([]);
      this.sleepFp.push([]);
      this.sleepFpDepth.push([]);
      this.pools.push(new Int32Array(1 << 12));
      this.poolLen.push(0);
      this.doneTr.push([]);
      this.doneFp.push([]);
    }
  }

  private key(t: number): number {
    return stateKeyLo(this.k, t, this.bound);
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

  /** Footprint at (pool d, offset o) independent of the one just recorded in fp? */
  private independent(d: number, o: number): boolean {
    const fp = this.fp;
    const markW = this.markW;
    const markR = this.markR;
    const p = this.pools[d];
    const nr = p[o];
    const nw = p[o + 1];
    const epoch = ++this.epoch;
    for (let i = 0; i < nw; i++) markW[p[o + 2 + nr + i]] = epoch;
    for (let i = 0; i < nr; i++) markR[p[o + 2 + i]] = epoch;
    for (let i = 0; i < fp.nw; i++) {
      const a = fp.writes[i];
      if (markW[a] === epoch || markR[a] === epoch) return false;
    }
    for (let i = 0; i < fp.nr; i++) if (markW[fp.reads[i]] === epoch) return false;
    return true;
  }

  /** The sleep set for the child of depth d by the transition just recorded in fp. */
  private sleepInto(d: number, zt: number[], zf: number[], zd: number[]): void {
    const st = this.sleepTr[d];
    const sf = this.sleepFp[d];
    const sd = this.sleepFpDepth[d];
    for (let i = 0; i < st.length; i++) {
      if (this.independent(sd[i], sf[i])) {
        zt.push(st[i]);
        zf.push(sf[i]);
        zd.push(sd[i]);
      }
    }
    const dt = this.doneTr[d];
    const df = this.doneFp[d];
    for (let i = 0; i < dt.length; i++) {
      if (this.bitOf(dt[i]) >= 0 && this.independent(d, df[i])) {
        zt.push(dt[i]);
        zf.push(df[i]);
        zd.push(d);
      }
    }
  }

  /** Store fp's footprint in depth d's pool; its offset. */
  private store(d: number): number {
    const fp = this.fp;
    const need = this.poolLen[d] + 2 + fp.nr + fp.nw;
    while (this.pools[d].length < need) this.pools[d] = grow(this.pools[d]);
    const p = this.pools[d];
    const o = this.poolLen[d];
    p[o] = fp.nr;
    p[o + 1] = fp.nw;
    p.set(fp.reads.subarray(0, fp.nr), o + 2);
    p.set(fp.writes.subarray(0, fp.nw), o + 2 + fp.nr);
    this.poolLen[d] = need;
    return o;
  }

  /** c has interrupts masked and no NMI can come: it takes no interrupt at its next step whatever others raise, and stays enabled. */
  private masked(c: number): boolean {
    const k = this.k;
    const C = k.C;
    return (
      !k.model.nmi && k.get(C.halted, c) === 0 && (k.get(C.irqs_off, c) !== 0 || k.get(C.irq_depth, c) !== 0)
    );
  }

  /**
   * The persistent set of the state at depth d (in memory, its mark taken):
   * the first CPU step among buf[0..n) that is safe, into ampleTr, run from
   * here with its footprint recorded and undone.
   */
  private ample(s: DfsStack, e: Engine, d: number, n: number): void {
    const k = this.k;
    const fp = this.fp;
    const C = k.C;
    const buf = this.buf;
    this.ampleTr = -1;
    this.ampleOnStack = false;
    for (let i = 0; i < n; i++) {
      const tr = buf[i];
      if (trKind(tr) !== TR_CPU || this.bitOf(tr) < 0) continue;
      const c = trArg(tr);
      const silent = this.own.silent(c, this.ticksLeft(s.ticks[d]));
      const waived = this.masked(c) ? C.pending.at + c * C.pending.stride : -1;
      if (!silent && waived < 0) continue;
      this.capture(s.ticks[d]);
      fp.begin();
      const bad = stepFinding(e, tr);
      fp.end();
      enablingWords(k, tr, this.readFp);
      if (this.opts.audit) this.audit(tr, s.ticks[d]);
      const safe = bad === null && this.own.confined(c, fp.reads, fp.nr, fp.writes, fp.nw, silent, waived);
      const lo = this.key(s.ticks[d]);
      const hi = k.mem.hashHi();
      k.mem.undo(s.marks[d], s.hlo[d], s.hhi[d]);
      k.violations.length = 0;
      k.violationCount = 0;
      if (!safe) continue;
      this.ampleTr = tr;
      for (let j = 0; j <= d && !this.ampleOnStack; j++)
        this.ampleOnStack = this.klo[j] === (lo | 0) && this.khi[j] === (hi | 0);
      return;
    }
  }

  private maskOf(d: number): number {
    let m = 0;
    for (const z of this.sleepTr[d]) m |= 1 << this.bitOf(z);
    return m;
  }

  /**
   * The child of the state at depth - 1 by the transition `step` ran: new,
   * or visited with a sleep set that is not a subset of this one (or, when
   * it was reduced, one its persistent step slept in).
   */
  visit(t: number, depth: number): Visit {
    const k = this.k;
    this.ensure(depth);
    const zt = this.sleepTr[depth];
    const zf = this.sleepFp[depth];
    const zd = this.sleepFpDepth[depth];
    zt.length = 0;
    zf.length = 0;
    zd.length = 0;
    if (depth === 0) {
      this.stored = -1;
      this.mine = 0;
      return EXPLORE;
    }
    const d = depth - 1;
    if (this.track && this.opts.sleep) {
      const off = this.store(d);
      // The child's sleep set: what sleeps here, and what was explored here
      // before tr, that is independent of tr.
      this.sleepInto(d, zt, zf, zd);
      this.doneTr[d].push(this.lastTr);
      this.doneFp[d].push(off);
    }
    const stored = this.visited.get(this.key(t), k.mem.hashHi());
    const mine = this.maskOf(depth);
    this.stored = stored;
    this.mine = mine;
    if (stored < 0) return EXPLORE;
    if ((stored & ~REDUCED & ~mine) === 0) return SKIP; // explored before with less asleep
    // Keep asleep only what slept both times.
    let j = 0;
    for (let i = 0; i < zt.length; i++) {
      if ((stored & (1 << this.bitOf(zt[i]))) !== 0) {
        zt[j] = zt[i];
        zf[j] = zf[i];
        zd[j] = zd[i];
        j++;
      }
    }
    zt.length = j;
    zf.length = j;
    zd.length = j;
    return REVISIT;
  }

  /**
   * Enter the current state at depth d (pushed on the stack), with the sleep
   * set `mine` (its transitions already in sleepTr[d]/..., kept there only as
   * far as they also slept at an earlier visit). `stored`: the FingerprintMap
   * value of an earlier visit, -1 when there was none. Sets what to explore
   * and the state's new FingerprintMap value; returns how many transitions
   * are enabled.
   */
  override expand(s: DfsStack, d: number): number {
    const k = this.k;
    const buf = this.buf;
    const stored = this.stored;
    const mine = this.mine;
    const t = s.ticks[d];
    this.stack = s;
    const lo = this.key(t);
    const hi = k.mem.hashHi();
    this.klo[d] = lo | 0;
    this.khi[d] = hi | 0;
    this.poolLen[d] = 0;
    this.doneTr[d].length = 0;
    this.doneFp[d].length = 0;
    let n = enabled(k, buf);
    const all = n;
    if (this.bound !== null && t >= this.bound) {
      let j = 0;
      for (let i = 0; i < n; i++) if (trKind(buf[i]) !== TR_TICK) buf[j++] = buf[i];
      n = j;
    }
    const before = stored >= 0 ? stored & ~REDUCED : 0;
    // Persistent sets: on a first visit, or when the earlier visit was reduced.
    let reduced = false;
    if (this.opts.persistent && n > 1 && (stored < 0 || (stored & REDUCED) !== 0)) {
      this.ample(s, this.e, d, n);
      if (stored >= 0 && this.ampleTr < 0)
        throw new Error("check --por: a state's persistent set changed between visits");
      reduced = this.ampleTr >= 0 && !this.ampleOnStack;
    }
    const ampleTr = this.ampleTr;
    const visited = this.visited;
    let c = 0;
    const tdo = s.trs[d];
    if (stored >= 0 && (stored & REDUCED) !== 0) {
      // Explored before: ampleTr unless it slept. Now: ampleTr if it slept
      // then and does not now, reduced or (the proviso failing) fully.
      const b = 1 << this.bitOf(ampleTr);
      if ((before & b) === 0 || (mine & b) !== 0) visited.set(lo, hi, (before & mine) | REDUCED);
      else if (reduced) {
        tdo[c++] = ampleTr;
        visited.set(lo, hi, (before & mine) | REDUCED);
      } else {
        for (let i = 0; i < n; i++)
          if (this.bitOf(buf[i]) < 0 || (mine & (1 << this.bitOf(buf[i]))) === 0) tdo[c++] = buf[i];
        visited.set(lo, hi, mine);
      }
    } else if (stored >= 0) {
      // Explored before fully: what slept then and does not now.
      for (let i = 0; i < n; i++) {
        const b = this.bitOf(buf[i]);
        if (b >= 0 && (before & ~mine & (1 << b)) !== 0) tdo[c++] = buf[i];
      }
      visited.set(lo, hi, before & mine);
    } else if (reduced) {
      if ((mine & (1 << this.bitOf(ampleTr))) === 0) tdo[c++] = ampleTr;
      visited.set(lo, hi, mine | REDUCED);
    } else {
      for (let i = 0; i < n; i++)
        if (this.bitOf(buf[i]) < 0 || (mine & (1 << this.bitOf(buf[i]))) === 0) tdo[c++] = buf[i];
      visited.set(lo, hi, mine);
    }
    s.counts[d] = c;
    return all;
  }

  /**
   * Run tr, recording its footprint when it is needed: to compare tr with
   * what sleeps here, with what was explored here before it, or with what is
   * still to explore (and for the ownership assertion on every transition,
   * when nothing is reduced).
   */
  override step(e: Engine, tr: number, t: number, d: number): Broken {
    const s = this.stack as DfsStack;
    const opts = this.opts;
    const track =
      this.auditAll ||
      (opts.sleep && (this.sleepTr[d].length > 0 || this.doneTr[d].length > 0 || s.nexts[d] < s.counts[d]));
    this.track = track;
    this.lastTr = tr;
    if (track) {
      if (opts.audit) this.capture(s.ticks[d]);
      this.fp.begin();
    }
    const bad = stepFinding(e, tr);
    if (track) {
      this.fp.end();
      enablingWords(this.k, tr, this.readFp);
      if (opts.audit) this.audit(tr, t);
    }
    return bad;
  }

  override poll(states: number, transitions: number, depth: number): string | null {
    if (states >= this.budget.maxStates) return `state budget: ${this.budget.maxStates} states`;
    if (++this.sinceStop === 1024 && this.budget.stop) {
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
