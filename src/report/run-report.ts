// How a run reads: a table for people, one JSON object (the contract
// README describes) for scripts.

import { GLOSSARY, METRIC_GROUPS, metricUnit } from "../machine/glossary.js";
import { CONTRACT_METRICS, PER_CPU_METRICS } from "../machine/metrics.js";
import type { RunResult } from "../run/session.js";

/** The `--json` object: contract keys first, then the extras. */
export function runJson(r: RunResult): string {
  const { trace: _omit, per_cpu, ...rest } = r;
  const ordered = {
    format: "asidlab/run/v1",
    scenario: rest.scenario,
    seed: rest.seed,
    policy: rest.policy,
    metrics: { ...rest.metrics, per_cpu },
    violations: rest.violations,
    violations_total: rest.violations_total,
    scheduler: rest.scheduler,
    complete: rest.complete,
    stop_reason: rest.stop_reason,
    state_hash: rest.state_hash,
    first_violation: rest.first_violation,
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

const fmt = (n: number) => n.toLocaleString("en-US");
/** Machines of more CPUs show the per-CPU counters in --json only. */
const PER_CPU_TABLE_MAX = 16;

/** Repeated findings as one line each: same property and message but for its numbers. */
export interface ViolationGroup {
  property: string;
  example: string;
  count: number;
  first: number;
  last: number;
}

export function groupViolations(vs: RunResult["violations"]): ViolationGroup[] {
  const groups = new Map<string, ViolationGroup>();
  for (const v of vs) {
    const key = `${v.property}\0${v.message.replace(/\d+/g, "#")}`;
    const g = groups.get(key);
    if (g === undefined)
      groups.set(key, { property: v.property, example: v.message, count: 1, first: v.step, last: v.step });
    else {
      g.count++;
      g.last = Math.max(g.last, v.step);
      g.first = Math.min(g.first, v.step);
    }
  }
  return [...groups.values()];
}

/** Plain aligned columns, no rules between rows. */
function columns(rows: string[][], right: readonly boolean[]): string[] {
  if (rows.length === 0) return [];
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) =>
    r
      .map((c, i) => (right[i] ? c.padStart(w[i]) : c.padEnd(w[i])))
      .join("  ")
      .trimEnd(),
  );
}

export function runTable(r: RunResult, cpus: number): string {
  const out: string[] = [];
  const policy = Object.entries(r.policy)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  const ms = (r.metrics.sim_time_ns / 1e6).toFixed(3);
  const status = r.complete
    ? "complete: every task ran to the end"
    : `INCOMPLETE: stopped at the ${r.stop_reason}`;
  out.push(`scenario  ${r.scenario}  (seed ${r.seed}, ${r.scheduler})`);
  out.push(`policy    ${policy}`);
  out.push(
    `run       ${status}; ${ms} ms simulated on ${cpus} CPU${cpus === 1 ? "" : "s"}, ${fmt(r.metrics.steps)} steps`,
  );
  out.push("", "metrics (not zero; units where not a count of events; definitions: asidlab metrics)");
  const m = r.metrics as Record<string, number>;
  // One set of columns for every group, a heading line per group.
  const shown = GLOSSARY.filter((d) => m[d.name] !== 0);
  const lines = columns(
    shown.map((d) => [`    ${d.name}`, fmt(m[d.name]), metricUnit(d.name)]),
    [false, true, false],
  );
  for (const g of METRIC_GROUPS) {
    const at = shown.flatMap((d, i) => (d.group === g ? [i] : []));
    if (at.length === 0) continue;
    out.push(`  ${g}`);
    for (const i of at) out.push(lines[i]);
  }
  const zero = CONTRACT_METRICS.filter((n) => r.metrics[n] === 0);
  if (zero.length > 0) out.push(`  zero: ${zero.join(", ")}`);
  if (r.per_cpu.length <= PER_CPU_TABLE_MAX && r.metrics.cr3_writes > 0) {
    const rows = [
      ["cpu", ...PER_CPU_METRICS],
      ...r.per_cpu.map((pm, c) => [String(c), ...PER_CPU_METRICS.map((n) => fmt(pm[n]))]),
    ];
    out.push("", "per CPU (--json: metrics.per_cpu)");
    for (const line of columns(
      rows,
      rows[0].map(() => true),
    ))
      out.push(`  ${line}`);
  }
  out.push("");
  if (r.violations_total === 0) {
    out.push("violations: none");
  } else {
    const kept = r.violations.length;
    out.push(
      `violations: ${fmt(r.violations_total)}${r.violations_total > kept ? ` (the first ${kept} recorded, grouped below)` : ""}`,
    );
    const groups = groupViolations(r.violations);
    const rows = [
      ["count", "steps", "property", "message (the first of its kind)"],
      ...groups.map((g) => [
        fmt(g.count),
        g.count === 1 ? String(g.first) : `${g.first}..${g.last}`,
        g.property,
        g.example,
      ]),
    ];
    for (const line of columns(rows, [true, false, false, false])) out.push(`  ${line}`);
    const f = r.first_violation;
    if (f !== null) {
      const where = f.cpu >= 0 ? `cpu ${f.cpu}, in ${f.path}` : "at the end of the run";
      out.push("", `first violation: ${f.property} at step ${f.step} (${where}); what led to it:`);
      for (const line of f.trace) out.push(`  ${line}`);
    }
  }
  return `${out.join("\n")}\n`;
}
