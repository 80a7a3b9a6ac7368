// Shrinking a counterexample by delta debugging (ddmin): drop chunks of the
// schedule while the same property still breaks.

import type { BootSpec } from "../kernel/boot.js";
import { replaySchedule } from "./replay.js";
import type { Finding } from "./types.js";

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
