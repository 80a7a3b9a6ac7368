// Which search `check` runs, and with what: every rule and default that
// turns the scenario's `check:` section and the command line's flags into
// one plan. Pure: no files, no clock, no CLI.

import { InputError } from "../scenario/errors.js";
import type { Scenario } from "../scenario/schema.js";

/** States a search may visit unless the scenario or the command line says otherwise. */
export const DEFAULT_MAX_STATES = 2_000_000;
/** Random (or PCT) walks unless the scenario or --random says how many. */
export const DEFAULT_WALKS = 1000;

/** The command line's choices for `check` (absent: not given). */
export interface CheckFlags {
  maxStates?: number;
  bitstate?: number;
  /** A bound, or `none` (unbounded). */
  preemptionBound?: number | "none";
  random?: number;
  pct?: number;
  depth?: number;
  /** Look for the shortest counterexample after a violation (--no-shortest: false). */
  shortest?: boolean;
  por?: boolean;
  workers?: number;
  /** --no-symmetry: false. */
  symmetry?: boolean;
  exhaustive?: boolean;
  /** --shard k/n: this shard's walks, or bitstate with this shard's hash seed. */
  shard?: { k: number; n: number };
}

export interface CheckPlan {
  properties: readonly string[];
  maxStates: number;
  preemptionBound: number | null;
  /** Bitstate search in this many MiB, or null. */
  bitstateMiB: number | null;
  shortest: boolean;
  por: boolean;
  /** Symmetry reduction in the plain exhaustive search (on unless --no-symmetry; it switches itself off where it does not pay). */
  symmetry: boolean;
  /** Worker threads for the parallel exhaustive search (>= 2), or null for one thread. */
  workers: number | null;
  /** Walks instead of an exhaustive search; with `pct`, PCT walks of that depth. */
  random: { walks: number; seed: number; depth: number | null; pct?: number } | null;
  /** Shard k of n (swarm): walks i with i mod n = k-1, or bitstate with hash seed k; null: the whole search. */
  shard: { k: number; n: number } | null;
}

/** The scenario's preemption bound: a number, or null for `none` or absent (unbounded). */
export function boundOf(check: Scenario["check"]): number | null {
  const b = check.preemption_bound;
  return b === undefined || b === "none" ? null : b;
}

/**
 * The plan of one `check`: the scenario's `check:` section, the flags, and
 * the seed the scenario was compiled with (--seed or its own). Throws
 * InputError on flags that do not go together.
 */
export function plan(check: Scenario["check"], flags: CheckFlags, seed: number): CheckPlan {
  const o = flags;
  if (o.por === true && (o.bitstate !== undefined || o.random !== undefined || o.pct !== undefined))
    throw new InputError(
      "--por: partial-order reduction is for the exhaustive search; not with --bitstate, --random or --pct",
    );
  if (
    o.workers !== undefined &&
    o.workers > 1 &&
    (o.por === true || o.bitstate !== undefined || o.random !== undefined || o.pct !== undefined)
  )
    throw new InputError(
      "--workers: the parallel search is the plain exhaustive one; not with --por, --bitstate, --random or --pct",
    );
  const searchFlag = o.por === true || o.bitstate !== undefined || (o.workers ?? 1) > 1;
  if (o.exhaustive === true && (o.random !== undefined || o.pct !== undefined))
    throw new InputError("--exhaustive: not with --random or --pct");
  // The scenario's check.random chooses random walks unless the command line chose a search.
  const walks =
    o.random ?? (o.pct === undefined && (o.exhaustive === true || searchFlag) ? undefined : check.random);
  // Swarm shards split walks or vary bitstate's hash; an exhaustive search has nothing to split.
  if (o.shard !== undefined && walks === undefined && o.pct === undefined && o.bitstate === undefined)
    throw new InputError(
      "--shard: shards split random or PCT walks, or give bitstate a hash seed each; not the exhaustive search, --por or --workers",
    );
  return {
    properties: check.properties ?? [],
    maxStates: o.maxStates ?? check.max_states ?? DEFAULT_MAX_STATES,
    preemptionBound: o.preemptionBound === "none" ? null : (o.preemptionBound ?? boundOf(check)),
    bitstateMiB: o.bitstate ?? null,
    shortest: o.shortest !== false,
    por: o.por === true,
    symmetry: o.symmetry !== false,
    workers: o.workers === undefined || o.workers < 2 ? null : o.workers,
    random:
      walks === undefined && o.pct === undefined
        ? null
        : { walks: walks ?? DEFAULT_WALKS, seed, depth: o.depth ?? null, pct: o.pct },
    shard: o.shard ?? null,
  };
}
