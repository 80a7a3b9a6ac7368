// `compare`: the same workload under each combination of varied values
// (policies, kernel variants, machine or workload parameters), over N seeds;
// per metric the mean, a 95% confidence interval (Student's t) and the ratio
// to the first combination's mean. Each variation is applied to the scenario
// document and validated by the schema again, so a bad value is a located
// input error like any other.

import { compileScenario } from "../scenario/compile.js";
import { InputError } from "../scenario/errors.js";
import type { LoadedScenario } from "../scenario/load.js";
import { POLICY_VALUES, type Scenario, ScenarioSchema } from "../scenario/schema.js";
import { runScenario } from "./session.js";

export interface Vary {
  key: string;
  values: string[];
}

export interface Stat {
  mean: number;
  ci95: [number, number];
  ratio: number | null;
}

export interface CompareRow {
  params: Record<string, string>;
  seeds: number[];
  metrics: Record<string, Stat>;
  violations: number;
}

/** `key=v1,v2,...` from the command line. */
export function parseVary(arg: string): Vary {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new InputError(`--vary ${arg}: expected key=value1,value2,...`);
  const values = arg
    .slice(eq + 1)
    .split(",")
    .filter((v) => v !== "");
  if (values.length === 0) throw new InputError(`--vary ${arg}: no values (an empty cross product)`);
  return { key: arg.slice(0, eq), values };
}

/** Student's t quantile t(0.975, df): the 95% two-sided interval's half-width factor. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export function t975(df: number): number {
  if (df <= 0) return Number.NaN;
  return df <= T975.length ? T975[df - 1] : 1.96 + 2.4 / df; // close to the exact values beyond 30
}

/** Mean and 95% confidence interval of samples (a single sample: a zero-width interval). */
export function meanCi(xs: readonly number[]): { mean: number; ci95: [number, number] } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, ci95: [mean, mean] };
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  const half = t975(n - 1) * Math.sqrt(variance / n);
  return { mean, ci95: [mean - half, mean + half] };
}

/** Apply one varied value to a copy of the scenario document; validated by the schema. */
function applyVary(doc: Record<string, unknown>, key: string, value: string): void {
  if (Object.hasOwn(POLICY_VALUES, key)) {
    doc.policy = { ...(doc.policy as object), [key]: value };
    return;
  }
  if (key === "kernel") {
    doc.kernel = value === "mainline" ? [] : value.split("+");
    return;
  }
  const path = key.split(".");
  let at: Record<string, unknown> = doc;
  // Own properties only, here and for the last key: `machine.constructor.x` must not reach Object.
  for (let i = 0; i < path.length - 1; i++) {
    const next = Object.hasOwn(at, path[i]) ? at[path[i]] : undefined;
    if (next === undefined || typeof next !== "object" || next === null) {
      throw new InputError(`--vary ${key}: no '${path.slice(0, i + 1).join(".")}' in the scenario`);
    }
    at = next as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  if (!Object.hasOwn(at, last) && last in at)
    throw new InputError(`--vary ${key}: '${last}' is not a key of the scenario`);
  const num = Number(value);
  at[last] =
    value === "true"
      ? true
      : value === "false"
        ? false
        : Number.isFinite(num) && value.trim() !== ""
          ? num
          : value;
}

const KNOWN_TOP = new Set(["machine", "processes", "devices", "costs"]);

function checkKey(key: string): void {
  if (Object.hasOwn(POLICY_VALUES, key) || key === "kernel") return;
  if (!KNOWN_TOP.has(key.split(".")[0])) {
    throw new InputError(
      `--vary ${key}: unknown key (a policy: ${Object.keys(POLICY_VALUES).join(", ")}; kernel; or a path such as machine.cpus, processes.0.threads, devices.dsa0.wq_depth)`,
    );
  }
}

/** Every combination of the varied values, first key outermost. */
export function crossProduct(varies: readonly Vary[]): Record<string, string>[] {
  let rows: Record<string, string>[] = [{}];
  for (const v of varies) rows = rows.flatMap((r) => v.values.map((x) => ({ ...r, [v.key]: x })));
  return rows;
}

/** Known, distinct keys: else an input error that says which. */
export function checkVaries(varies: readonly Vary[]): void {
  const keys = new Set<string>();
  for (const v of varies) {
    checkKey(v.key);
    if (keys.has(v.key)) throw new InputError(`--vary ${v.key}: given twice`);
    if (v.values.length === 0) throw new InputError(`--vary ${v.key}: no values (an empty cross product)`);
    keys.add(v.key);
  }
}

/** The scenario with one combination of varied values applied, validated by the schema again. */
export function variedScenario(ls: LoadedScenario, params: Record<string, string>): LoadedScenario {
  const doc = JSON.parse(JSON.stringify(ls.scenario)) as Record<string, unknown>;
  for (const [k, v] of Object.entries(params)) applyVary(doc, k, v);
  const parsed = ScenarioSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const what = Object.entries(params)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    throw new InputError(`--vary ${what}: ${issue.path.join(".")}: ${issue.message}`);
  }
  return { ...ls, scenario: parsed.data as Scenario };
}

export function compare(ls: LoadedScenario, varies: readonly Vary[], seeds: number): CompareRow[] {
  if (varies.length === 0) throw new InputError("compare: nothing to vary (give --vary key=v1,v2)");
  checkVaries(varies);
  const groups: RunGroup[] = [];
  for (const params of crossProduct(varies)) {
    const varied = variedScenario(ls, params);
    const seedList: number[] = [];
    const runs: Record<string, number>[] = [];
    let violations = 0;
    for (let i = 0; i < seeds; i++) {
      const seed = (ls.scenario.seed + i) >>> 0;
      seedList.push(seed);
      const r = runScenario(compileScenario(varied, { seed }));
      violations += r.violations_total;
      runs.push(r.metrics);
    }
    groups.push({ params, seeds: seedList, runs, violations });
  }
  return summarise(groups);
}

/** Runs of one combination of varied values: each run's metrics. */
export interface RunGroup {
  params: Record<string, string>;
  seeds: number[];
  runs: Record<string, number>[];
  violations: number;
}

/** Per group and metric: mean, 95% CI, and the ratio to the first group's mean. */
export function summarise(groups: readonly RunGroup[]): CompareRow[] {
  const rows: CompareRow[] = groups.map((g) => {
    const samples: Record<string, number[]> = {};
    for (const run of g.runs) {
      for (const [m, v] of Object.entries(run)) {
        if (samples[m] === undefined) samples[m] = [];
        samples[m].push(v);
      }
    }
    const metrics: Record<string, Stat> = {};
    for (const [m, xs] of Object.entries(samples)) metrics[m] = { ...meanCi(xs), ratio: null };
    return { params: g.params, seeds: g.seeds, metrics, violations: g.violations };
  });
  for (const row of rows) {
    for (const [m, st] of Object.entries(row.metrics)) {
      const first = rows[0].metrics[m]?.mean ?? 0;
      st.ratio = first === 0 ? null : st.mean / first;
    }
  }
  return rows;
}
