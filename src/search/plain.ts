// Plain exhaustive depth-first search. Unbounded (preemption bound `none`):
// a visited set of 64-bit fingerprints of the machine state alone, so a
// finite state space is searched to its end. Bounded: the visited set keeps
// the fewest preemptions (ticks) each state was reached with, and a state
// reached again with fewer is explored again: it has more of the bound left,
// so what lies beyond it within the bound is a superset. Each state is
// counted once, however many preemptions reached it.

import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { BitstateDfs } from "./bitstate.js";
import { runDfs } from "./dfs.js";
import { BaseDfs, EXPLORE, REVISIT, SKIP, type Visit } from "./strategy.js";
import { Symmetry } from "./symmetry.js";
import { checkMachine } from "./transitions.js";
import { type CheckBudget, type ExploreResult, POLL_STATES } from "./types.js";
import { FingerprintMap, FingerprintSet } from "./visited.js";

/** Visited-set slots for a state budget, up to 2^22, so that the table seldom grows (each doubling rehashes every state). */
export function visitedLog2(maxStates: number): number {
  let log2 = 16;
  while (log2 < 22 && 2 ** log2 < 2 * maxStates) log2++;
  return log2;
}

/** States symmetry reduction is measured over before it is kept or switched off. */
export const SYMMETRY_PROBATION = 20_000;
/**
 * A class's key costs time in proportion to the task slots: the probation
 * is cut so that it costs about what SYMMETRY_PROBATION states of a
 * 16-task machine do, but never below SYMMETRY_PROBATION_MIN states
 * (big-machine's 10,064 slots: 512 states, not 20,000 at ~60 ms each).
 */
const SYMMETRY_PROBATION_WORK = SYMMETRY_PROBATION * 16;
const SYMMETRY_PROBATION_MIN = 512;

/**
 * Above this many task slots symmetry is not tried by default: a key costs
 * ~20 µs a slot (big-machine: ~0.2 s a state), and machines that large are
 * searched by walks or within a budget, where plain states go furthest.
 */
export const SYMMETRY_MAX_TASK_SLOTS = 256;

/** The probation's length for a machine of `taskSlots` task slots: a function of the scenario alone. */
export function symmetryProbation(taskSlots: number): number {
  const n = Math.floor(SYMMETRY_PROBATION_WORK / Math.max(1, taskSlots));
  return Math.max(SYMMETRY_PROBATION_MIN, Math.min(SYMMETRY_PROBATION, n));
}
/** States merged per class it must reach to be kept (its cost per state, with margin). */
export const SYMMETRY_KEEP = 3;

export class PlainDfs extends BaseDfs {
  /** Unbounded: the states seen. */
  private seen: FingerprintSet | null;
  /** Bounded: the states seen, each with the fewest ticks it was reached with. */
  private fewest: FingerprintMap | null;
  /** Symmetry reduction: states are stored by their class's representative (null: off, or switched off). */
  private sym: Symmetry | null;
  /** While on probation: the states themselves (as `seen` or `fewest` would hold them), to measure what symmetry merges. */
  private raw: FingerprintSet | FingerprintMap | null;
  private symNote = "";
  private readonly probationStates: number;

  constructor(
    k: Kernel,
    private readonly bound: number | null,
    budget: CheckBudget,
    /** true: on probation (kept only where it pays); "always": kept (the soundness tests). */
    symmetry: boolean | "always" = false,
  ) {
    super(k, budget);
    this.probationStates = symmetryProbation(k.L.task.count);
    if (symmetry === true && k.L.task.count > SYMMETRY_MAX_TASK_SLOTS) {
      symmetry = false;
      this.symNote = `, symmetry not tried (${k.L.task.count} task slots, over ${SYMMETRY_MAX_TASK_SLOTS})`;
    }
    this.sym = symmetry !== false ? new Symmetry(k) : null;
    this.raw = symmetry !== true ? null : bound === null ? new FingerprintSet(16) : new FingerprintMap(16);
    const log2 = visitedLog2(budget.maxStates);
    this.seen = bound === null ? new FingerprintSet(log2) : null;
    this.fewest = bound === null ? null : new FingerprintMap(log2);
  }

  protected override reserve = (): number =>
    (this.seen?.growSoon(POLL_STATES) ?? 0) +
    (this.fewest?.growSoon(POLL_STATES) ?? 0) +
    (this.raw?.growSoon(POLL_STATES) ?? 0);

  visit(ticks: number): Visit {
    let lo: number;
    let hi: number;
    const sym = this.sym;
    if (sym !== null) {
      sym.key();
      lo = sym.lo;
      hi = sym.hi;
      if (this.raw !== null) this.probation(ticks);
    } else {
      lo = this.k.mem.hashLo();
      hi = this.k.mem.hashHi();
    }
    if (this.seen !== null) return this.seen.add(lo, hi) ? EXPLORE : SKIP;
    const r = (this.fewest as FingerprintMap).lowerOrNew(lo, hi, ticks);
    return r === 1 ? EXPLORE : r === 2 ? REVISIT : SKIP;
  }

  /**
   * Symmetry reduction costs 3-5 times plain search per state (measured in
   * docs/performance.md): it stays on only if, over its first
   * probationStates states, it merged at least SYMMETRY_KEEP states into
   * each one kept. Switched off, the search goes on with the states seen
   * on probation as its visited set (each explored, or merged with one
   * explored), so nothing is explored twice.
   */
  private probation(ticks: number): void {
    const raw = this.raw as FingerprintSet | FingerprintMap;
    const mem = this.k.mem;
    if (raw instanceof FingerprintSet) raw.add(mem.hashLo(), mem.hashHi());
    else raw.lowerOrNew(mem.hashLo(), mem.hashHi(), ticks);
    const kept = this.seen !== null ? this.seen.size : (this.fewest as FingerprintMap).size;
    if (kept < this.probationStates) return;
    const factor = raw.size / kept;
    this.raw = null;
    if (factor >= SYMMETRY_KEEP) {
      this.symNote = `, symmetry (${factor.toFixed(1)} states per class over the first ${this.probationStates})`;
      return;
    }
    this.sym = null;
    if (raw instanceof FingerprintSet) this.seen = raw;
    else this.fewest = raw;
    this.symNote = `, symmetry off after ${this.probationStates} states (${factor.toFixed(2)} states per class, below ${SYMMETRY_KEEP})`;
  }

  describe(): string {
    let note = this.symNote;
    if (note === "" && this.sym !== null && this.raw === null) note = ", symmetry";
    else if (note === "" && this.sym !== null) {
      const raw = this.raw as FingerprintSet | FingerprintMap;
      const kept = this.seen !== null ? this.seen.size : (this.fewest as FingerprintMap).size;
      note = `, symmetry (${(raw.size / Math.max(1, kept)).toFixed(1)} states per class)`;
    }
    return (this.bound === null ? "complete" : `preemption-bound:${this.bound}`) + note;
  }
}

/** Exhaustive depth-first search (bitstate when given its MiB). */
export function explore(
  spec: BootSpec,
  properties: readonly string[],
  budget: CheckBudget,
  preemptionBound: number | null,
  bitstateMiB: number | null = null,
  symmetry: boolean | "always" = false,
  /** Bitstate's hash seed: 0 the plain hash, a shard's own otherwise. */
  hashSeed = 0,
): ExploreResult {
  const { k, e } = checkMachine(spec, properties);
  if (bitstateMiB !== null) {
    const r = runDfs(
      k,
      e,
      new BitstateDfs(k, preemptionBound, budget, bitstateMiB, hashSeed),
      preemptionBound,
      () => Number.NaN,
    );
    // A bit array may take a new state for a seen one: nothing found is no proof.
    return r.verdict === "pass" ? { ...r, verdict: "no-violation-found" } : r;
  }
  return runDfs(
    k,
    e,
    new PlainDfs(k, preemptionBound, budget, symmetry),
    preemptionBound,
    FingerprintSet.collisionProbability,
  );
}
