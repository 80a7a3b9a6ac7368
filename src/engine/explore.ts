// `check`: explore the interleavings a scenario allows. Which transitions are
// enabled is read from the machine state alone (so a restored snapshot has
// the same choices): each CPU that can step, the tick on a CPU whose run queue
// has a task waiting (in `check` every tick ends the slice, so a tick is a
// possible preemption), every armed timer, every device with queued work.
//
// - exhaustive: depth-first over states, a visited set of 64-bit fingerprints;
//   optional preemption bound (ticks taken on the path, mixed into the
//   fingerprint so that bounded search stays complete up to the bound);
// - random walks: seeded, each to a depth bound.
// A violation is any finding (WARN_ON in the model, step invariant), or an
// end invariant broken in a terminal state (deadlock included: tasks left).
// The counterexample is the list of transitions from the initial state; it is
// shrunk by delta debugging (dropping chunks of it while the same property
// still breaks).

import type { BootSpec } from "../kernel/boot.js";
import { boot } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { HEADER_WORDS } from "../machine/memory.js";
import { Rng } from "../machine/rng.js";
import { IRQ_TIMER, TIF_TIMER_ARMED } from "../machine/state.js";
import {
  Engine,
  type Scheduler,
  TR_CPU,
  TR_DEVICE,
  TR_TICK,
  TR_TIMER,
  trArg,
  trCpu,
  trDevice,
  trKind,
  trTick,
  trTimer,
} from "./engine.js";
import { CORE_INVARIANTS } from "./invariants.js";
import { Ownership } from "./ownership.js";
import { BitstateSet, FingerprintMap, FingerprintSet } from "./visited.js";

export interface CheckBudget {
  maxStates: number;
  /** Called every few thousand states with the progress so far: a reason to stop (a time or memory budget), or null. */
  stop?: (p: Progress) => string | null;
}

export interface Progress {
  states: number;
  transitions: number;
  depth: number;
}

export interface Finding {
  property: string;
  message: string;
  /** The transitions from the initial state, the violating one last. */
  schedule: number[];
}

export interface ExploreResult {
  verdict: "pass" | "violation" | "incomplete";
  finding: Finding | null;
  states: number;
  transitions: number;
  maxDepth: number;
  coverage: string;
  reason: string | null;
  collisionProbability: number;
}

/** The scheduler the engine is given in `check`: the explorer drives, nothing is timed. */
const passive: Scheduler = {
  name: "check",
  describe: () => "check",
  start() {},
  next: () => -1,
  armTimer() {},
  kick() {},
  deviceKick() {},
};

/** A machine for `check`: every tick ends a slice, compute runs as one step. */
export function checkMachine(spec: BootSpec, properties: readonly string[]): { k: Kernel; e: Engine } {
  const k = boot({ ...spec, params: { ...spec.params, sliceTicks: 1 } });
  const invs =
    properties.length === 0 ? CORE_INVARIANTS : CORE_INVARIANTS.filter((i) => properties.includes(i.name));
  const e = new Engine(k, invs, passive);
  e.chunkNs = 2 ** 31 - 1;
  return { k, e };
}

/**
 * The enabled transitions in the current state, into `out`; returns how many.
 * Per CPU the tick comes before the CPU's step, so depth-first search tries
 * a preemption first at every point, where races are: on check-gp-fixup at 2
 * CPUs, bound 2, the lost MSR write is found after 50,294 states instead of
 * 924,754 (the order SPIN's pan has too: it tries the last process first).
 */
export function enabled(k: Kernel, out: Int32Array): number {
  let n = 0;
  const cpus = k.params.cpus;
  for (let c = 0; c < cpus; c++) {
    const halted = k.get(k.C.halted, c) !== 0;
    const pending = k.get(k.C.pending, c);
    if (!halted && (pending & IRQ_TIMER) === 0 && k.get(k.C.nr_running, c) > 0) out[n++] = trTick(c);
    if (!halted || pending !== 0) out[n++] = trCpu(c);
  }
  // The armed timers: a scan of every task slot's TIF word, by address (the
  // one loop per state that is not O(CPUs)), and only while some are armed,
  // until all of them are found.
  let timers = k.get(k.G.nr_timers, 0);
  if (timers > 0) {
    const w = k.w;
    const tif = k.T.tif;
    const stride = tif.stride;
    const last = tif.at + (k.L.task.count - 1) * stride;
    for (let a = tif.at + stride, t = 1; a <= last && timers > 0; a += stride, t++) {
      if ((w[a] & TIF_TIMER_ARMED) !== 0) {
        out[n++] = trTimer(t);
        timers--;
      }
    }
  }
  for (let d = 0; d < k.model.devices.length; d++) if (k.get(k.D.wq_count, d) > 0) out[n++] = trDevice(d);
  return n;
}

type Broken = { property: string; message: string } | null;

function firstFinding(e: Engine): Broken {
  const v = e.k.violations[0];
  return v === undefined ? null : { property: v.property, message: v.message };
}

/** Run one transition; what it broke (a WARN_ON or a step invariant), if anything. */
function stepFinding(e: Engine, tr: number): Broken {
  const k = e.k;
  if (k.violationCount !== 0) {
    k.violations.length = 0;
    k.violationCount = 0;
  }
  e.exec(tr);
  return firstFinding(e);
}

/**
 * A terminal state (nothing enabled): what the end invariants say. Callers
 * compute the enabled set once per state and call this when it is empty.
 */
function endFinding(e: Engine): Broken {
  e.checkEnd();
  return firstFinding(e);
}

const MAX_ENABLED = 4096;

/**
 * The low half of a state's key in a visited set: the fingerprint, mixed
 * with the preemptions used to reach it when they are bounded (a state
 * reached with fewer left is a different one for the search).
 */
export function stateKeyLo(k: Kernel, ticks: number, bound: number | null): number {
  return k.mem.hashLo() ^ (bound === null ? 0 : Math.imul(ticks, 0x9e3779b1));
}

/** Exhaustive depth-first search. */
export function explore(
  spec: BootSpec,
  properties: readonly string[],
  budget: CheckBudget,
  preemptionBound: number | null,
  bitstateMiB: number | null = null,
): ExploreResult {
  const { k, e } = checkMachine(spec, properties);
  const bitstate = bitstateMiB === null ? null : new BitstateSet(bitstateMiB);
  // Sized for the state budget, up to 2^22 slots (32 MiB), so that it seldom
  // grows: each doubling rehashes every state (7 % of a 1 M-state search).
  let log2 = 16;
  while (log2 < 22 && 2 ** log2 < 2 * budget.maxStates) log2++;
  const visited = bitstate ?? new FingerprintSet(log2);
  // The DFS stack: per depth, where the state is in the undo journal (and its
  // fingerprint words), its enabled transitions, the next to try. Going back
  // to a state undoes the writes since it: a few dozen words, not the machine.
  k.mem.startJournal();
  const marks: number[] = [];
  const hlo: number[] = [];
  const hhi: number[] = [];
  const trs: Int32Array[] = [];
  const counts: number[] = [];
  const nexts: number[] = [];
  const ticks: number[] = []; // preemptions used to reach the state at this depth
  const path: number[] = [];
  let depth = 0;
  let transitions = 0;
  let maxDepth = 0;
  let fresh = true; // memory holds the state of this depth
  /** The enabled transitions of the current state, into the stack slot of `d`. */
  const enabledAt = (d: number) => {
    if (trs.length <= d) trs.push(new Int32Array(MAX_ENABLED));
    return enabled(k, trs[d]);
  };
  const pushState = (t: number, count: number) => {
    marks[depth] = k.mem.mark();
    hlo[depth] = k.w[0];
    hhi[depth] = k.w[1];
    counts[depth] = count;
    nexts[depth] = 0;
    ticks[depth] = t;
  };
  const seen = (t: number) => visited.add(stateKeyLo(k, t, preemptionBound), k.mem.hashHi());
  seen(0);
  pushState(0, enabledAt(0));
  const result = (
    verdict: ExploreResult["verdict"],
    finding: Finding | null,
    reason: string | null,
  ): ExploreResult => ({
    verdict,
    finding,
    states: visited.size,
    transitions,
    maxDepth,
    coverage:
      bitstate !== null
        ? `bitstate (hash factor ${Math.round(bitstate.hashFactor())})`
        : preemptionBound === null
          ? "complete"
          : `preemption-bound:${preemptionBound}`,
    reason,
    collisionProbability: bitstate !== null ? Number.NaN : FingerprintSet.collisionProbability(visited.size),
  });
  while (depth >= 0) {
    if (nexts[depth] >= counts[depth]) {
      depth--;
      path.pop();
      fresh = false;
      continue;
    }
    const tr = trs[depth][nexts[depth]++];
    const t = ticks[depth] + (trKind(tr) === TR_TICK ? 1 : 0);
    if (preemptionBound !== null && t > preemptionBound) continue;
    // Memory already holds this depth's state right after it was pushed.
    if (!fresh) k.mem.undo(marks[depth], hlo[depth], hhi[depth]);
    fresh = false;
    transitions++;
    const bad = stepFinding(e, tr);
    if (bad !== null) return result("violation", { ...bad, schedule: [...path, tr] }, null);
    if (!seen(t)) continue; // a state seen before was judged then
    const count = enabledAt(depth + 1);
    const end = count === 0 ? endFinding(e) : null;
    if (end !== null) return result("violation", { ...end, schedule: [...path, tr] }, null);
    if (visited.size >= budget.maxStates)
      return result("incomplete", null, `state budget: ${budget.maxStates} states`);
    if ((visited.size & 4095) === 0 && budget.stop) {
      const why = budget.stop({ states: visited.size, transitions, depth });
      if (why !== null) return result("incomplete", null, why);
    }
    depth++;
    path.push(tr);
    if (depth > maxDepth) maxDepth = depth;
    pushState(t, count);
    fresh = true;
  }
  return result("pass", null, null);
}

export interface ShortestResult {
  /** The shortest counterexample: `found` itself when none shorter exists. */
  finding: Finding;
  /** States expanded (a state reached again at a smaller depth counts again). */
  states: number;
  transitions: number;
  /** False when a budget ended the search: `finding` is then the shortest seen so far. */
  complete: boolean;
}

/**
 * The shortest counterexample, given one (`found`, from the depth-first
 * search): a depth-bounded depth-first search whose visited set keeps the
 * smallest depth each state was reached at, so a state reached again at a
 * smaller depth is explored again. That search finds a violation within
 * `limit` transitions whenever one exists (iterative deepening's guarantee,
 * without the iterations: each violation found lowers the limit to one less
 * than its length, branch and bound). So the result is a shortest violating
 * path, of any property, under the same preemption bound.
 */
export function shortestCounterexample(
  spec: BootSpec,
  properties: readonly string[],
  found: Finding,
  budget: CheckBudget,
  preemptionBound: number | null,
): ShortestResult {
  const { k, e } = checkMachine(spec, properties);
  const visited = new FingerprintMap();
  k.mem.startJournal();
  let best = found;
  let limit = found.schedule.length - 1; // look for one strictly shorter
  const marks: number[] = [];
  const hlo: number[] = [];
  const hhi: number[] = [];
  const trs: Int32Array[] = [];
  const counts: number[] = [];
  const nexts: number[] = [];
  const ticks: number[] = [];
  const path: number[] = [];
  let depth = 0;
  let states = 1;
  let transitions = 0;
  let fresh = true;
  const enabledAt = (d: number) => {
    if (trs.length <= d) trs.push(new Int32Array(MAX_ENABLED));
    return enabled(k, trs[d]);
  };
  const key = (t: number) => stateKeyLo(k, t, preemptionBound);
  visited.lower(key(0), k.mem.hashHi(), 0);
  marks[0] = k.mem.mark();
  hlo[0] = k.w[0];
  hhi[0] = k.w[1];
  counts[0] = enabledAt(0);
  nexts[0] = 0;
  ticks[0] = 0;
  const done = (complete: boolean): ShortestResult => ({ finding: best, states, transitions, complete });
  while (depth >= 0) {
    // A state at `depth` may take a transition only if the path stays within the limit.
    if (nexts[depth] >= counts[depth] || depth + 1 > limit) {
      depth--;
      path.pop();
      fresh = false;
      continue;
    }
    const tr = trs[depth][nexts[depth]++];
    const t = ticks[depth] + (trKind(tr) === TR_TICK ? 1 : 0);
    if (preemptionBound !== null && t > preemptionBound) continue;
    if (!fresh) k.mem.undo(marks[depth], hlo[depth], hhi[depth]);
    fresh = false;
    transitions++;
    const bad = stepFinding(e, tr);
    if (bad !== null) {
      best = { ...bad, schedule: [...path, tr] };
      limit = depth; // the next one must be shorter than depth + 1
      continue;
    }
    if (!visited.lower(key(t), k.mem.hashHi(), depth + 1)) continue;
    states++;
    const count = enabledAt(depth + 1);
    const end = count === 0 ? endFinding(e) : null;
    if (end !== null) {
      best = { ...end, schedule: [...path, tr] };
      limit = depth;
      continue;
    }
    if (states >= budget.maxStates) return done(false);
    if ((states & 4095) === 0 && budget.stop) {
      if (budget.stop({ states, transitions, depth }) !== null) return done(false);
    }
    depth++;
    path.push(tr);
    marks[depth] = k.mem.mark();
    hlo[depth] = k.w[0];
    hhi[depth] = k.w[1];
    counts[depth] = count;
    nexts[depth] = 0;
    ticks[depth] = t;
    fresh = true;
  }
  return done(true);
}

/**
 * Footprints for partial-order reduction: in this mode the kernel's view of
 * memory (`k.w`, `k.mem.words`) is a proxy that records, while a transition
 * executes, every word it reads and every word it writes (the fingerprint
 * words excluded: every write updates them). Slow (a proxy trap per access),
 * but exact: nothing in the model reaches the state another way.
 */
class Footprints {
  reads: Int32Array = new Int32Array(1 << 12);
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
    if (this.nr === this.reads.length) this.reads = grow(this.reads);
    this.reads[this.nr++] = a;
  }

  write(a: number): void {
    if (this.seenW[a] === this.tx) return;
    this.seenW[a] = this.tx;
    if (this.nw === this.writes.length) this.writes = grow(this.writes);
    this.writes[this.nw++] = a;
  }
}

function grow(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/** The words a transition's being enabled depends on (see `enabled`): part of its read footprint. */
function enablingWords(k: Kernel, tr: number, out: (a: number) => void): void {
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
export function explorePor(
  spec: BootSpec,
  properties: readonly string[],
  budget: CheckBudget,
  preemptionBound: number | null,
  opts: PorOptions = POR_FULL,
): ExploreResult {
  const { k, e } = checkMachine(spec, properties);
  const fp = new Footprints(k);
  const own = new Ownership(k);
  const ncpu = k.params.cpus;
  const bitOf = (tr: number): number => {
    const kind = trKind(tr);
    const arg = trArg(tr);
    const b =
      kind === TR_CPU ? arg : kind === TR_TICK ? ncpu + arg : kind === TR_DEVICE ? 2 * ncpu + arg : -1;
    return b >= 0 && b < 30 ? b : -1;
  };
  const visited = new FingerprintMap();
  k.mem.startJournal();
  const size = k.mem.size;
  const markW = new Int32Array(size);
  const markR = new Int32Array(size);
  let epoch = 0;
  // Per depth: the state (journal mark, fingerprint words, visited-set key,
  // ticks), the transitions to explore and the next one, the sleep set
  // (transitions with a reference to their footprint), and a pool of the
  // footprints of the transitions explored from this state: [nr, nw, reads..., writes...].
  const marks: number[] = [];
  const hlo: number[] = [];
  const hhi: number[] = [];
  const klo: number[] = [];
  const khi: number[] = [];
  const ticks: number[] = [];
  const todo: Int32Array[] = [];
  const counts: number[] = [];
  const nexts: number[] = [];
  const sleepTr: number[][] = [];
  const sleepFp: number[][] = []; // the footprint's offset in its pool ...
  const sleepFpDepth: number[][] = []; // ... and the depth of that pool
  const pools: Int32Array[] = [];
  const poolLen: number[] = [];
  const doneTr: number[][] = [];
  const doneFp: number[][] = [];
  const path: number[] = [];
  let depth = 0;
  let transitions = 0;
  let states = 0;
  let maxDepth = 0;
  let fresh = true;
  let sinceStop = 0; // states entered since the budget's stop() was last asked
  const buf = new Int32Array(MAX_ENABLED);
  const auditAll = opts.audit && !opts.sleep && !opts.persistent;

  const ensure = (d: number) => {
    while (todo.length <= d) {
      todo.push(new Int32Array(MAX_ENABLED));
      sleepTr.push([]);
      sleepFp.push([]);
      sleepFpDepth.push([]);
      pools.push(new Int32Array(1 << 12));
      poolLen.push(0);
      doneTr.push([]);
      doneFp.push([]);
    }
  };
  const key = (t: number) => stateKeyLo(k, t, preemptionBound);
  const ticksLeft = (t: number) => preemptionBound === null || t < preemptionBound;
  /** The CPUs that are silent (Ownership.silent) in the current state, with t ticks taken: a bit each. */
  const silentMask = (t: number) => {
    let m = 0;
    for (let c = 0; c < ncpu && c < 30; c++) if (own.silent(c, ticksLeft(t))) m |= 1 << c;
    return m;
  };
  let silentBefore = 0;
  /** Before a transition from a state with t ticks taken: what the ownership assertion compares with. */
  const capture = (t: number) => {
    own.capture();
    silentBefore = silentMask(t);
  };
  /**
   * The ownership assertion on the transition just recorded in fp, from the
   * state captured (ticks `t` after it): no other CPU's words touched, and a
   * silent CPU stays silent.
   */
  const audit = (tr: number, t: number) => {
    const actor = trKind(tr) === TR_CPU ? trArg(tr) : -1;
    let msg = own.audit(actor, fp.reads, fp.nr, fp.writes, fp.nw, silentBefore, describeTransition(tr));
    const lost = silentBefore & ~silentMask(t) & ~(actor >= 0 ? 1 << actor : 0);
    if (msg === null && lost !== 0)
      msg = `${describeTransition(tr)} ended the silence of cpu ${31 - Math.clz32(lost)}`;
    if (msg !== null)
      throw new Error(
        `check --por: ownership assertion (a model bug, or a field to take out of engine/ownership.ts): ${msg}, after ${path.length} transitions [${path.map(describeTransition).join(", ")}]`,
      );
  };
  /** Footprint at (pool d, offset o) independent of the one just recorded in fp? */
  const independent = (d: number, o: number): boolean => {
    const p = pools[d];
    const nr = p[o];
    const nw = p[o + 1];
    epoch++;
    for (let i = 0; i < nw; i++) markW[p[o + 2 + nr + i]] = epoch;
    for (let i = 0; i < nr; i++) markR[p[o + 2 + i]] = epoch;
    for (let i = 0; i < fp.nw; i++) {
      const a = fp.writes[i];
      if (markW[a] === epoch || markR[a] === epoch) return false;
    }
    for (let i = 0; i < fp.nr; i++) if (markW[fp.reads[i]] === epoch) return false;
    return true;
  };
  /** The sleep set for the child of depth d by the transition just recorded in fp. */
  const sleepInto = (d: number, zt: number[], zf: number[], zd: number[]) => {
    const st = sleepTr[d];
    for (let i = 0; i < st.length; i++) {
      if (independent(sleepFpDepth[d][i], sleepFp[d][i])) {
        zt.push(st[i]);
        zf.push(sleepFp[d][i]);
        zd.push(sleepFpDepth[d][i]);
      }
    }
    const dt = doneTr[d];
    for (let i = 0; i < dt.length; i++) {
      if (bitOf(dt[i]) >= 0 && independent(d, doneFp[d][i])) {
        zt.push(dt[i]);
        zf.push(doneFp[d][i]);
        zd.push(d);
      }
    }
  };
  /** Store fp's footprint in depth d's pool; its offset. */
  const store = (d: number): number => {
    const need = poolLen[d] + 2 + fp.nr + fp.nw;
    while (pools[d].length < need) pools[d] = grow(pools[d]);
    const p = pools[d];
    const o = poolLen[d];
    p[o] = fp.nr;
    p[o + 1] = fp.nw;
    p.set(fp.reads.subarray(0, fp.nr), o + 2);
    p.set(fp.writes.subarray(0, fp.nw), o + 2 + fp.nr);
    poolLen[d] = need;
    return o;
  };
  const C = k.C;
  /** c has interrupts masked and no NMI can come: it takes no interrupt at its next step whatever others raise, and stays enabled. */
  const masked = (c: number) =>
    !k.model.nmi && k.get(C.halted, c) === 0 && (k.get(C.irqs_off, c) !== 0 || k.get(C.irq_depth, c) !== 0);
  // What `ample` found: the first safe CPU step (-1: none), and whether it leads onto the stack.
  let ampleTr = -1;
  let ampleOnStack = false;
  /**
   * The persistent set of the state at depth d (in memory, its mark taken):
   * the first CPU step among buf[0..n) that is safe, into ampleTr, run from
   * here with its footprint recorded and undone.
   */
  const ample = (d: number, n: number) => {
    ampleTr = -1;
    ampleOnStack = false;
    for (let i = 0; i < n; i++) {
      const tr = buf[i];
      if (trKind(tr) !== TR_CPU || bitOf(tr) < 0) continue;
      const c = trArg(tr);
      const silent = own.silent(c, ticksLeft(ticks[d]));
      const waived = masked(c) ? C.pending.at + c * C.pending.stride : -1;
      if (!silent && waived < 0) continue;
      capture(ticks[d]);
      fp.begin();
      const bad = stepFinding(e, tr);
      fp.end();
      enablingWords(k, tr, (a) => fp.read(a));
      if (opts.audit) audit(tr, ticks[d]);
      const safe = bad === null && own.confined(c, fp.reads, fp.nr, fp.writes, fp.nw, silent, waived);
      const lo = key(ticks[d]);
      const hi = k.mem.hashHi();
      k.mem.undo(marks[d], hlo[d], hhi[d]);
      k.violations.length = 0;
      k.violationCount = 0;
      if (!safe) continue;
      ampleTr = tr;
      for (let j = 0; j <= d && !ampleOnStack; j++) ampleOnStack = klo[j] === (lo | 0) && khi[j] === (hi | 0);
      return;
    }
  };
  /**
   * Enter the current state at depth d, with the sleep set `mine` (its
   * transitions already in sleepTr[d]/..., kept there only as far as they
   * also slept at an earlier visit). `stored`: the FingerprintMap value of an
   * earlier visit, -1 when there was none. Sets what to explore and the
   * state's new FingerprintMap value; returns how many transitions are enabled.
   */
  const enter = (d: number, t: number, stored: number, mine: number): number => {
    marks[d] = k.mem.mark();
    hlo[d] = k.w[0];
    hhi[d] = k.w[1];
    const lo = key(t);
    const hi = k.mem.hashHi();
    klo[d] = lo | 0;
    khi[d] = hi | 0;
    ticks[d] = t;
    nexts[d] = 0;
    poolLen[d] = 0;
    doneTr[d].length = 0;
    doneFp[d].length = 0;
    let n = enabled(k, buf);
    const all = n;
    if (preemptionBound !== null && t >= preemptionBound) {
      let j = 0;
      for (let i = 0; i < n; i++) if (trKind(buf[i]) !== TR_TICK) buf[j++] = buf[i];
      n = j;
    }
    const before = stored >= 0 ? stored & ~REDUCED : 0;
    // Persistent sets: on a first visit, or when the earlier visit was reduced.
    let reduced = false;
    if (opts.persistent && n > 1 && (stored < 0 || (stored & REDUCED) !== 0)) {
      ample(d, n);
      if (stored >= 0 && ampleTr < 0)
        throw new Error("check --por: a state's persistent set changed between visits");
      reduced = ampleTr >= 0 && !ampleOnStack;
    }
    let c = 0;
    const tdo = todo[d];
    if (stored >= 0 && (stored & REDUCED) !== 0) {
      // Explored before: ampleTr unless it slept. Now: ampleTr if it slept
      // then and does not now, reduced or (the proviso failing) fully.
      const b = 1 << bitOf(ampleTr);
      if ((before & b) === 0 || (mine & b) !== 0) visited.set(lo, hi, (before & mine) | REDUCED);
      else if (reduced) {
        tdo[c++] = ampleTr;
        visited.set(lo, hi, (before & mine) | REDUCED);
      } else {
        for (let i = 0; i < n; i++)
          if (bitOf(buf[i]) < 0 || (mine & (1 << bitOf(buf[i]))) === 0) tdo[c++] = buf[i];
        visited.set(lo, hi, mine);
      }
    } else if (stored >= 0) {
      // Explored before fully: what slept then and does not now.
      for (let i = 0; i < n; i++) {
        const b = bitOf(buf[i]);
        if (b >= 0 && (before & ~mine & (1 << b)) !== 0) tdo[c++] = buf[i];
      }
      visited.set(lo, hi, before & mine);
    } else if (reduced) {
      if ((mine & (1 << bitOf(ampleTr))) === 0) tdo[c++] = ampleTr;
      visited.set(lo, hi, mine | REDUCED);
    } else {
      for (let i = 0; i < n; i++)
        if (bitOf(buf[i]) < 0 || (mine & (1 << bitOf(buf[i]))) === 0) tdo[c++] = buf[i];
      visited.set(lo, hi, mine);
    }
    counts[d] = c;
    return all;
  };
  const maskOf = (d: number) => {
    let m = 0;
    for (const z of sleepTr[d]) m |= 1 << bitOf(z);
    return m;
  };
  const kinds = [opts.sleep ? "sleep sets" : "", opts.persistent ? "persistent sets" : ""].filter(
    (x) => x !== "",
  );
  const result = (
    verdict: ExploreResult["verdict"],
    finding: Finding | null,
    reason: string | null,
  ): ExploreResult => ({
    verdict,
    finding,
    states,
    transitions,
    maxDepth,
    coverage: `${preemptionBound === null ? "complete" : `preemption-bound:${preemptionBound}`}${kinds.length > 0 ? `, ${kinds.join(" + ")}` : ""}`,
    reason,
    collisionProbability: FingerprintSet.collisionProbability(states),
  });

  ensure(0);
  states = 1;
  if (enter(0, 0, -1, 0) === 0) {
    const end = endFinding(e);
    if (end !== null) return result("violation", { ...end, schedule: [] }, null);
  }
  while (depth >= 0) {
    if (nexts[depth] >= counts[depth]) {
      depth--;
      path.pop();
      fresh = false;
      continue;
    }
    const tr = todo[depth][nexts[depth]++];
    const t = ticks[depth] + (trKind(tr) === TR_TICK ? 1 : 0);
    if (!fresh) k.mem.undo(marks[depth], hlo[depth], hhi[depth]);
    fresh = false;
    transitions++;
    // The footprint is needed only to compare tr with what sleeps here, with
    // what was explored here before it, or with what is still to explore
    // (and for the ownership assertion on every transition, when nothing is reduced).
    const st = sleepTr[depth];
    const dt = doneTr[depth];
    const track =
      auditAll || (opts.sleep && (st.length > 0 || dt.length > 0 || nexts[depth] < counts[depth]));
    if (track) {
      if (opts.audit) capture(ticks[depth]);
      fp.begin();
    }
    const bad = stepFinding(e, tr);
    if (track) {
      fp.end();
      enablingWords(k, tr, (a) => fp.read(a));
      if (opts.audit) audit(tr, t);
    }
    if (bad !== null) return result("violation", { ...bad, schedule: [...path, tr] }, null);
    ensure(depth + 1);
    const zt = sleepTr[depth + 1];
    const zf = sleepFp[depth + 1];
    const zd = sleepFpDepth[depth + 1];
    zt.length = 0;
    zf.length = 0;
    zd.length = 0;
    if (track && opts.sleep) {
      const off = store(depth);
      // The child's sleep set: what sleeps here, and what was explored here
      // before tr, that is independent of tr.
      sleepInto(depth, zt, zf, zd);
      dt.push(tr);
      doneFp[depth].push(off);
    }
    // The child: new, or visited with a sleep set that is not a subset of
    // this one (or, when it was reduced, one its persistent step slept in).
    const stored = visited.get(key(t), k.mem.hashHi());
    const mine = maskOf(depth + 1);
    if (stored >= 0) {
      if ((stored & ~REDUCED & ~mine) === 0) continue; // explored before with less asleep
      // Keep asleep only what slept both times.
      let j = 0;
      for (let i = 0; i < zt.length; i++) {
        if ((stored & (1 << bitOf(zt[i]))) !== 0) {
          zt[j] = zt[i];
          zf[j] = zf[i];
          zd[j] = zd[i];
          j++;
        }
      }
      zt.length = j;
      zf.length = j;
      zd.length = j;
    } else {
      states++;
    }
    depth++;
    path.push(tr);
    if (depth > maxDepth) maxDepth = depth;
    const n = enter(depth, t, stored, mine);
    if (stored < 0 && n === 0) {
      const end = endFinding(e);
      if (end !== null) return result("violation", { ...end, schedule: path.slice() }, null);
    }
    fresh = true;
    if (states >= budget.maxStates)
      return result("incomplete", null, `state budget: ${budget.maxStates} states`);
    if (++sinceStop === 1024 && budget.stop) {
      sinceStop = 0;
      const why = budget.stop({ states, transitions, depth });
      if (why !== null) return result("incomplete", null, why);
    }
  }
  return result("pass", null, null);
}

/** How a walk chooses: set up before each walk, then pick among the enabled transitions. */
interface WalkStrategy {
  begin(): void;
  /** The transition to take at `step` (1-based) among buf[0..n). */
  choose(buf: Int32Array, n: number, step: number): number;
  coverage(walksDone: number): string;
}

/** Walks from the initial state, each to `depthMax` transitions or a terminal state. */
function walks(
  spec: BootSpec,
  properties: readonly string[],
  count: number,
  depthMax: number,
  budget: CheckBudget,
  strategy: WalkStrategy,
): ExploreResult {
  const { k, e } = checkMachine(spec, properties);
  const init = k.mem.snapshot();
  const buf = new Int32Array(MAX_ENABLED);
  const visited = new FingerprintSet();
  let transitions = 0;
  let maxDepth = 0;
  const res = (
    verdict: ExploreResult["verdict"],
    finding: Finding | null,
    reason: string | null,
    done: number,
  ) => ({
    verdict,
    finding,
    states: visited.size,
    transitions,
    maxDepth,
    coverage: strategy.coverage(done),
    reason,
    collisionProbability: FingerprintSet.collisionProbability(visited.size),
  });
  for (let w = 0; w < count; w++) {
    k.mem.restore(init);
    strategy.begin();
    const path: number[] = [];
    let n = enabled(k, buf);
    for (let step = 1; step <= depthMax && n > 0; step++) {
      const tr = strategy.choose(buf, n, step);
      path.push(tr);
      transitions++;
      const bad = stepFinding(e, tr);
      if (bad !== null) return res("violation", { ...bad, schedule: path }, null, w + 1);
      visited.add(k.mem.hashLo(), k.mem.hashHi());
      if (path.length > maxDepth) maxDepth = path.length;
      n = enabled(k, buf); // for the next choice, and to know a terminal state
      const end = n === 0 ? endFinding(e) : null;
      if (end !== null) return res("violation", { ...end, schedule: path }, null, w + 1);
    }
    if (budget.stop && (w & 15) === 15) {
      const why = budget.stop({ states: visited.size, transitions, depth: maxDepth });
      if (why !== null) return res("incomplete", null, why, w + 1);
    }
  }
  return res("pass", null, null, count);
}

/** Seeded random walks: uniform among the enabled transitions, ticks weighted down. */
export function randomWalks(
  spec: BootSpec,
  properties: readonly string[],
  count: number,
  seed: number,
  depthMax: number,
  budget: CheckBudget,
): ExploreResult {
  const rng = new Rng(seed);
  return walks(spec, properties, count, depthMax, budget, {
    begin() {},
    choose: (buf, n) => pickWeighted(buf, n, rng),
    coverage: (done) => `random:${done} walks (seed ${seed})`,
  });
}

/**
 * PCT (Burckhardt et al., ASPLOS 2010): per walk, random distinct priorities
 * for the "threads" (each CPU, each device, the timers, the tick source) and
 * d-1 random change points among the first `depthMax` steps; the enabled
 * transition of the highest-priority thread runs; at the i-th change point
 * the thread that runs is demoted to priority d-i. A bug of depth d is found
 * by one walk with probability at least 1/(n k^(d-1)), n threads, k steps.
 */
export function pctWalks(
  spec: BootSpec,
  properties: readonly string[],
  count: number,
  seed: number,
  depthMax: number,
  d: number,
  budget: CheckBudget,
): ExploreResult {
  const rng = new Rng(seed);
  const ncpu = spec.params.cpus;
  const n = ncpu + spec.model.devices.length + 2; // CPUs, devices, timers, the tick source
  const threadOf = (tr: number) => {
    const kind = trKind(tr);
    if (kind === TR_CPU) return trArg(tr);
    if (kind === TR_DEVICE) return ncpu + trArg(tr);
    return kind === TR_TICK ? n - 1 : n - 2;
  };
  const prio = new Int32Array(n);
  let change: number[] = [];
  let nextChange = 0;
  const guarantee = 1 / (n * depthMax ** Math.max(0, d - 1));
  return walks(spec, properties, count, depthMax, budget, {
    begin() {
      // Distinct initial priorities d .. d+n-1 in random order (Fisher-Yates, unbiased).
      for (let i = 0; i < n; i++) prio[i] = d + i;
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(0, i);
        const t = prio[i];
        prio[i] = prio[j];
        prio[j] = t;
      }
      change = Array.from({ length: d - 1 }, () => rng.int(1, depthMax)).sort((a, b) => a - b);
      nextChange = 0;
    },
    choose(buf, m, step) {
      let best = 0;
      for (let i = 1; i < m; i++) if (prio[threadOf(buf[i])] > prio[threadOf(buf[best])]) best = i;
      const tr = buf[best];
      while (nextChange < change.length && change[nextChange] === step) {
        prio[threadOf(tr)] = d - 1 - nextChange; // the i-th change point: priority d-i
        nextChange++;
      }
      return tr;
    },
    coverage: (done) =>
      `pct:${done} walks (seed ${seed}, d=${d}, k=${depthMax}; each finds a depth-${d} bug with p >= ${guarantee.toExponential(1)})`,
  });
}

/**
 * A random walk's choice: a tick (a preemption) one time in TICK_ONE_IN when
 * one is enabled, else any other transition uniformly. Uniform choice would
 * preempt half the time and walks would make little progress.
 */
const TICK_ONE_IN = 16;

function pickWeighted(buf: Int32Array, n: number, rng: Rng): number {
  let ticks = 0;
  for (let i = 0; i < n; i++) if (trKind(buf[i]) === TR_TICK) ticks++;
  const wantTick = ticks > 0 && (ticks === n || rng.int(0, TICK_ONE_IN - 1) === 0);
  let r = rng.int(0, (wantTick ? ticks : n - ticks) - 1);
  for (let i = 0; i < n; i++) {
    if ((trKind(buf[i]) === TR_TICK) === wantTick && r-- === 0) return buf[i];
  }
  return buf[0];
}

/** Replay a schedule from the initial state. Returns the first finding (and
 * after how many transitions), or an error when a transition is not enabled
 * where the schedule takes it (a stale or edited schedule).
 */
/** Watches a replay: told before each transition, and after it with the words as they were before. */
export interface ReplayObserver {
  before(i: number, tr: number, k: Kernel): void;
  after(i: number, tr: number, k: Kernel, before: Int32Array): void;
}

export function replaySchedule(
  spec: BootSpec,
  properties: readonly string[],
  schedule: readonly number[],
  obs?: ReplayObserver,
  setup?: (k: Kernel, e: Engine) => void,
): { finding: { property: string; message: string } | null; at: number; error: string | null } {
  const { k, e } = checkMachine(spec, properties);
  if (setup) setup(k, e);
  const buf = new Int32Array(MAX_ENABLED);
  const before = new Int32Array(k.mem.size);
  let n = enabled(k, buf);
  for (let i = 0; i < schedule.length; i++) {
    const tr = schedule[i];
    let ok = false;
    for (let j = 0; j < n && !ok; j++) ok = buf[j] === tr;
    if (!ok)
      return { finding: null, at: i, error: `step ${i + 1}: ${describeTransition(tr)} is not enabled there` };
    if (obs) {
      obs.before(i, tr, k);
      k.mem.snapshot(before);
    }
    let bad = stepFinding(e, tr);
    n = enabled(k, buf);
    if (bad === null && n === 0) bad = endFinding(e);
    if (obs) obs.after(i, tr, k, before);
    if (bad !== null) return { finding: bad, at: i + 1, error: null };
  }
  return { finding: null, at: schedule.length, error: null };
}

/** Delta debugging: drop chunks of the schedule while the same property still breaks. */
export function shrink(
  spec: BootSpec,
  properties: readonly string[],
  f: Finding,
  maxReplays = 3000,
): Finding {
  let best = f.schedule.slice();
  let replays = 0;
  const stillBreaks = (s: number[]) => {
    replays++;
    const r = replaySchedule(spec, properties, s);
    return r.error === null && r.finding !== null && r.finding.property === f.property ? r : null;
  };
  for (let chunk = best.length >> 1; chunk >= 1 && replays < maxReplays; chunk >>= 1) {
    for (let i = 0; i + chunk <= best.length && replays < maxReplays; ) {
      const cand = best.slice(0, i).concat(best.slice(i + chunk));
      const r = stillBreaks(cand);
      if (r !== null) best = cand.slice(0, r.at);
      else i += chunk;
    }
  }
  const last = replaySchedule(spec, properties, best);
  return { property: f.property, message: last.finding?.message ?? f.message, schedule: best };
}

export function describeTransition(tr: number): string {
  const kind = trKind(tr);
  const arg = trArg(tr);
  if (kind === TR_CPU) return `cpu ${arg}`;
  if (kind === TR_TICK) return `tick ${arg}`;
  if (kind === TR_DEVICE) return `device ${arg}`;
  return `timer ${arg}`;
}

/** Parse one schedule line ("cpu 0", "tick 1", "timer 5", "device 0"); null if malformed. */
export function parseTransition(line: string): number | null {
  const m = /^(cpu|tick|timer|device) (\d+)$/.exec(line.trim());
  if (m === null) return null;
  const n = Number(m[2]);
  if (m[1] === "cpu") return trCpu(n);
  if (m[1] === "tick") return trTick(n);
  if (m[1] === "device") return trDevice(n);
  return trTimer(n);
}
