// How a run reads: a table for people, one JSON object (the contract
// README describes) for scripts.

import Table from "cli-table3";
import { CONTRACT_METRICS, PER_CPU_METRICS } from "../machine/metrics.js";
import type { RunResult } from "../run/session.js";

/** The `--json` object: contract keys first, then the extras. */
export function runJson(r: RunResult): string {
  const { trace: _omit, per_cpu, ...rest } = r;
  const ordered = {
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
  out.push(`run       ${status}; ${ms} ms simulated on ${cpus} CPUs, ${fmt(r.metrics.steps)} steps`);
  out.push("");
  const t = new Table({
    head: ["metric", "value"],
    style: { head: [], border: [] },
    colAligns: ["left", "right"],
  });
  for (const [name, value] of Object.entries(r.metrics)) {
    if (value === 0) continue;
    t.push([name, fmt(value)]);
  }
  out.push(t.toString());
  const zero = CONTRACT_METRICS.filter((m) => r.metrics[m] === 0);
  if (zero.length > 0) out.push(`zero: ${zero.join(", ")}`);
  if (r.per_cpu.length <= PER_CPU_TABLE_MAX && r.metrics.cr3_writes > 0) {
    const pc = new Table({
      head: ["cpu", ...PER_CPU_METRICS],
      style: { head: [], border: [] },
      colAligns: ["right", ...PER_CPU_METRICS.map(() => "right" as const)],
    });
    r.per_cpu.forEach((m, c) => {
      pc.push([String(c), ...PER_CPU_METRICS.map((n) => fmt(m[n]))]);
    });
    out.push("", "per CPU (--json: metrics.per_cpu)", pc.toString());
  }
  out.push("");
  if (r.violations_total === 0) {
    out.push("violations: none");
  } else {
    out.push(
      `violations: ${r.violations_total}${r.violations_total > r.violations.length ? ` (first ${r.violations.length} shown)` : ""}`,
    );
    const v = new Table({ head: ["step", "property", "message"], style: { head: [], border: [] } });
    for (const x of r.violations) v.push([String(x.step), x.property, x.message]);
    out.push(v.toString());
    const f = r.first_violation;
    if (f !== null) {
      const where = f.cpu >= 0 ? `cpu ${f.cpu}, in ${f.path}` : "at the end of the run";
      out.push("", `first violation: ${f.property} at step ${f.step} (${where}); what led to it:`);
      for (const line of f.trace) out.push(`  ${line}`);
    }
  }
  return `${out.join("\n")}\n`;
}
