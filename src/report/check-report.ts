// How a check reads: the verdict and what it covers, then the counterexample
// step by step, like a bug report on the list.

import type { CheckResult } from "../search/check.js";

export function checkJson(r: CheckResult): string {
  return `${JSON.stringify({ format: "asidlab/check/v1", ...r }, null, 2)}\n`;
}

/** The table; `listing` is the counterexample as named fields (explain.ts), else each step's summary. */
export function checkTable(r: CheckResult, scenario: string, listing: string | null = null): string {
  const out: string[] = [];
  const p = r.collision_probability;
  const collide = Number.isNaN(p) ? "see hash factor" : p === 0 ? "0" : p.toExponential(1);
  out.push(`scenario   ${scenario}`);
  out.push(`verdict    ${r.verdict}${r.property ? ` (${r.property})` : ""}`);
  out.push(
    `covered    ${r.coverage}; ${r.states.toLocaleString("en-US")} states, ${r.transitions.toLocaleString("en-US")} transitions, depth ${r.max_depth}; P(fingerprint collision) <= ${collide}`,
  );
  if (r.reason !== null) out.push(`stopped    ${r.reason}: the verdict covers only what was explored`);
  const c = r.counterexample;
  if (c !== null) {
    out.push("", `${r.property}: ${r.message}`);
    const shortest =
      c.shortest_length === null
        ? ""
        : `, shortest ${c.shortest_length}${c.shortest_complete ? "" : " seen before the budget ran out"}`;
    out.push(`counterexample: ${c.length} steps (found at ${c.found_length}${shortest}, shrunk)`);
    if (listing !== null) out.push(listing.replace(/\n$/, ""));
    else for (const [i, s] of c.steps.entries()) out.push(`  ${String(i + 1).padStart(4)}  ${s.summary}`);
    out.push("", `reproduce: ${c.reproduce}`);
  }
  return `${out.join("\n")}\n`;
}
