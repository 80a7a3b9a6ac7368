// `merge` for `check --json --shard k/n` results (swarm verification): one
// result from the shards of one check. Any violation wins, with the shortest
// counterexample (ties: the lowest shard number); states, transitions,
// walks and seconds add up (a state reached in two shards counts twice);
// the coverage says which shards were merged and which are missing. The
// output depends only on the set of shards, never on the order of the files.

import { InputError } from "../scenario/errors.js";
import type { CheckResult } from "./check.js";

/** Whether a file's text is a `check --json` result (one JSON object with a verdict), not sweep NDJSON. */
export function isCheckResult(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v) && "verdict" in v && "coverage" in v;
  } catch {
    return false;
  }
}

const RANK: Record<CheckResult["verdict"], number> = {
  violation: 3,
  incomplete: 2,
  "no-violation-found": 1,
  pass: 0,
};

/** The fields that must agree for results to be shards of one check. */
function identity(r: CheckResult): string {
  return `scenario ${r.scenario}, kernel [${r.kernel.join(",")}], seed ${r.seed}, stamp ${r.stamp}, ${r.search}, ${r.shard?.n} shards`;
}

/** Shards' `check --json` texts -> the merged result's JSON text (as check --json writes it). */
export function mergeChecks(inputs: readonly { file: string; text: string }[]): string {
  if (inputs.length === 0) throw new InputError("merge: no files given");
  const shards = inputs.map(({ file, text }) => {
    const r = JSON.parse(text) as CheckResult;
    if (r.shard === undefined || r.shard === null || typeof r.stamp !== "string")
      throw new InputError(`${file}: a check result without a shard: run check with --shard k/n --json`);
    return { file, r };
  });
  shards.sort((a, b) => a.r.shard!.k - b.r.shard!.k);
  const first = shards[0];
  const n = first.r.shard!.n;
  for (let i = 0; i < shards.length; i++) {
    const s = shards[i];
    if (identity(s.r) !== identity(first.r))
      throw new InputError(
        `${s.file}: a shard of another check (${identity(s.r)}) than ${first.file} (${identity(first.r)})`,
      );
    if (i > 0 && s.r.shard!.k === shards[i - 1].r.shard!.k)
      throw new InputError(`${s.file}: shard ${s.r.shard!.k}/${n} is also in ${shards[i - 1].file}`);
  }
  const ks = shards.map((s) => s.r.shard!.k);
  const missing: number[] = [];
  for (let k = 1; k <= n; k++) if (!ks.includes(k)) missing.push(k);
  const rs = shards.map((s) => s.r);
  // The verdict: a violation over an incomplete shard over nothing found.
  let verdict = rs[0].verdict;
  for (const r of rs) if (RANK[r.verdict] > RANK[verdict]) verdict = r.verdict;
  let win: CheckResult | null = null;
  for (const r of rs) {
    if (r.verdict !== "violation" || r.counterexample === null) continue;
    if (win === null || r.counterexample.length < win.counterexample!.length) win = r;
  }
  const sum = (f: (r: CheckResult) => number) => rs.reduce((a, r) => a + f(r), 0);
  const anyNull = rs.some((r) => r.collision_probability === null);
  const walks = rs.every((r) => r.walks !== null) ? sum((r) => r.walks ?? 0) : null;
  const reasons = rs.filter((r) => r.reason !== null).map((r) => `shard ${r.shard!.k}: ${r.reason}`);
  const merged: CheckResult = {
    verdict,
    property: win?.property ?? null,
    message: win?.message ?? null,
    states: sum((r) => r.states),
    transitions: sum((r) => r.transitions),
    max_depth: Math.max(...rs.map((r) => r.max_depth)),
    coverage:
      `${ks.length} of ${n} shards (${ks.join(", ")}${missing.length > 0 ? `; missing ${missing.join(", ")}` : "; none missing"})` +
      `${walks === null ? "" : `, ${walks} walks`}: ${rs.map((r) => `shard ${r.shard!.k}: ${r.coverage}`).join(" | ")}`,
    // The union bound over the shards (null when a shard's is unknown: bitstate).
    collision_probability: anyNull
      ? (null as unknown as number)
      : Math.min(
          1,
          sum((r) => r.collision_probability),
        ),
    counterexample: win?.counterexample ?? null,
    reason: reasons.length === 0 ? null : reasons.join("; "),
    scenario: first.r.scenario,
    kernel: first.r.kernel,
    seed: first.r.seed,
    stamp: first.r.stamp,
    search: first.r.search,
    walks,
    shard: null,
    merged: { n, shards: ks, missing },
  };
  return `${JSON.stringify({ format: "asidlab/check/v1", ...merged }, null, 2)}\n`;
}
