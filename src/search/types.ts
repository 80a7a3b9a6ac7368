// What every search takes and gives: its budget, its progress, what it found.

export interface CheckBudget {
  maxStates: number;
  /** Called every POLL_STATES states (and every few hundred steps of a walk) with the progress so far: a reason to stop (a time or memory budget), or null. */
  stop?: (p: Progress) => string | null;
}

export interface Progress {
  states: number;
  transitions: number;
  depth: number;
  /** Bytes about to be allocated (a visited table's next growth), for a memory budget to refuse in advance. */
  reserve?: number;
}

export interface Finding {
  property: string;
  message: string;
  /** The transitions from the initial state, the violating one last. */
  schedule: number[];
}

/**
 * `pass`: an exhaustive search (within its preemption bound) found nothing.
 * `no-violation-found`: a search that is not exhaustive (random or PCT walks,
 * bitstate, which may omit states) found nothing: evidence, not a proof.
 */
export type Verdict = "pass" | "no-violation-found" | "violation" | "incomplete";

export interface ExploreResult {
  verdict: Verdict;
  finding: Finding | null;
  states: number;
  transitions: number;
  maxDepth: number;
  coverage: string;
  reason: string | null;
  collisionProbability: number;
  /** Random or PCT walks made (calibration walks not counted). */
  walks?: number;
}

/** What a transition or a terminal state broke: a property and its message, or null. */
export type Broken = { property: string; message: string } | null;

/**
 * States between two calls of the budget's stop(): few enough that a large
 * machine (big-machine: ~60 ms a state) still ends within 10% of a time or
 * memory budget, many enough that the call costs nothing on small ones.
 */
export const POLL_STATES = 64;

/** The reason a search stops on its state budget, or when `stop` says so; null to go on. */
export function budgetReason(
  budget: CheckBudget,
  states: number,
  transitions: number,
  depth: number,
  reserve: () => number = () => 0,
): string | null {
  if (states >= budget.maxStates) return `state budget: ${budget.maxStates} states`;
  if ((states & (POLL_STATES - 1)) === 0 && budget.stop)
    return budget.stop({ states, transitions, depth, reserve: reserve() });
  return null;
}
