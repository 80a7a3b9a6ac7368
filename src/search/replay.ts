// Replay a schedule from the initial state, watching it step by step.

import type { Engine } from "../engine/engine.js";
import { describeTransition } from "../engine/engine.js";
import type { BootSpec } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { checkMachine, enabled, endFinding, MAX_ENABLED, stepFinding } from "./transitions.js";

/** Watches a replay: told before each transition, and after it with the words as they were before. */
export interface ReplayObserver {
  before(i: number, tr: number, k: Kernel): void;
  after(i: number, tr: number, k: Kernel, before: Int32Array): void;
}

/**
 * Replay a schedule from the initial state. Returns the first finding (and
 * after how many transitions), or an error when a transition is not enabled
 * where the schedule takes it (a stale or edited schedule).
 */
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
