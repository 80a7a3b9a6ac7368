// Walks from the initial state, each to a depth bound or a terminal state,
// the strategy choosing each step (random.ts, pct.ts): for state spaces too
// large to search exhaustively.

import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { EXPLORE, SKIP, type Strategy, type Visit } from "./strategy.js";
import { checkMachine, enabled, endFinding, MAX_ENABLED, stepFinding } from "./transitions.js";
import type { CheckBudget, ExploreResult, Finding } from "./types.js";
import { FingerprintSet } from "./visited.js";

/** A walk strategy: the states walked through are counted in a visited set (a walk goes on through seen ones). */
export abstract class WalkStrategy implements Strategy {
  readonly visited = new FingerprintSet();
  /** Walks started. */
  walks = 0;

  constructor(protected readonly k: Kernel) {}

  /** Before each walk. */
  reset(): void {
    this.walks++;
  }

  visit(): Visit {
    const k = this.k;
    return this.visited.add(k.mem.hashLo(), k.mem.hashHi()) ? EXPLORE : SKIP;
  }

  abstract choose(buf: Int32Array, n: number, step: number): number;
  abstract describe(): string;
}

/** `count` walks from the initial state, each to `depthMax` transitions or a terminal state. */
export function walks(
  spec: BootSpec,
  properties: readonly string[],
  count: number,
  depthMax: number,
  budget: CheckBudget,
  make: (k: Kernel) => WalkStrategy,
): ExploreResult {
  const { k, e } = checkMachine(spec, properties);
  const strategy = make(k);
  const init = k.mem.snapshot();
  const buf = new Int32Array(MAX_ENABLED);
  const visited = strategy.visited;
  let transitions = 0;
  let maxDepth = 0;
  const res = (verdict: ExploreResult["verdict"], finding: Finding | null, reason: string | null) => ({
    verdict,
    finding,
    states: visited.size,
    transitions,
    maxDepth,
    coverage: strategy.describe(),
    reason,
    collisionProbability: FingerprintSet.collisionProbability(visited.size),
  });
  for (let w = 0; w < count; w++) {
    k.mem.restore(init);
    strategy.reset();
    const path: number[] = [];
    let n = enabled(k, buf);
    for (let step = 1; step <= depthMax && n > 0; step++) {
      const tr = buf[strategy.choose(buf, n, step)];
      path.push(tr);
      transitions++;
      const bad = stepFinding(e, tr);
      if (bad !== null) return res("violation", { ...bad, schedule: path }, null);
      strategy.visit();
      if (path.length > maxDepth) maxDepth = path.length;
      n = enabled(k, buf); // for the next choice, and to know a terminal state
      const end = n === 0 ? endFinding(e) : null;
      if (end !== null) return res("violation", { ...end, schedule: path }, null);
    }
    if (budget.stop && (w & 15) === 15) {
      const why = budget.stop({ states: visited.size, transitions, depth: maxDepth });
      if (why !== null) return res("incomplete", null, why);
    }
  }
  return res("pass", null, null);
}
