// `compare`: the same workload under each combination of varied values
// (policies, kernel variants, machine or workload parameters), over N seeds;
// per metric the mean, a 95% confidence interval (Student's t, clipped at 0
// for counts), the ratio to a baseline combination's mean and whether the
// difference from it is significant (Welch's t). Each variation is applied to the scenario
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
  /** A name a person chose for the key (`--vary "idle threads=processes.0.count=1,2"`): tables and plots show it. */
  label?: string;
}

/** What tables, plots and rows call a varied key: its label, or the key itself. */
export const varyName = (v: Vary): string => v.label ?? v.key;

export interface Stat {
  mean: number;
  /** 95% interval of the mean (Student's t); for a count, clipped at 0 (then `clipped`). */
  ci95: [number, number];
  /** This row's mean over its baseline row's mean (null: a zero baseline). */
  ratio: number | null;
  /** The difference from the baseline row is significant at 95% (Welch's t); null in the baseline row. */
  significant: boolean | null;
  /** The interval's lower bound was below 0 for a count, and is shown as 0. */
  clipped: boolean;
}

/** Which row each row's ratio is against: these keys set to these values, the others as the row's own. */
export type Baseline = Record<string, string>;

export interface CompareRow {
  params: Record<string, string>;
  seeds: number[];
  metrics: Record<string, Stat>;
  violations: number;
  /** The index of the row this row's ratios are against. */
  baseline: number;
}

/** `key=v1,v2,...` or `label=key=v1,v2,...` from the command line. */
export function parseVary(arg: string): Vary {
  let eq = arg.indexOf("=");
  if (eq <= 0)
    throw new InputError(`--vary ${arg}: expected key=value1,value2,... or "label=key=value1,..."`);
  let label: string | undefined;
  let rest = arg;
  // Values never hold '=': a second one means the first part is a label.
  if (arg.indexOf("=", eq + 1) > 0) {
    label = arg.slice(0, eq).trim();
    if (label === "" || label.length > 40)
      throw new InputError(`--vary ${arg}: a label is 1 to 40 characters (label=key=values)`);
    rest = arg.slice(eq + 1);
    eq = rest.indexOf("=");
    if (eq <= 0) throw new InputError(`--vary ${arg}: expected label=key=value1,value2,...`);
  }
  const values = rest
    .slice(eq + 1)
    .split(",")
    .filter((v) => v !== "");
  if (values.length === 0) throw new InputError(`--vary ${arg}: no values (an empty cross product)`);
  return label === undefined ? { key: rest.slice(0, eq), values } : { key: rest.slice(0, eq), values, label };
}

/** `--baseline key=value` (repeatable): the row each ratio is against, per varied key. */
export function parseBaseline(args: readonly string[], varies: readonly Vary[]): Baseline {
  const b: Baseline = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq <= 0)
      throw new InputError(`--baseline ${arg}: expected key=value (a varied key and one of its values)`);
    const key = arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    const v = varies.find((x) => x.key === key || x.label === key);
    if (v === undefined)
      throw new InputError(
        `--baseline ${arg}: ${key} is not varied (varied: ${varies.map((x) => varyName(x)).join(", ")})`,
      );
    if (!v.values.includes(value))
      throw new InputError(
        `--baseline ${arg}: ${value} is not one of ${key}'s values (${v.values.join(", ")})`,
      );
    if (Object.hasOwn(b, varyName(v))) throw new InputError(`--baseline ${key}: given twice`);
    b[varyName(v)] = value;
  }
  return b;
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
  const names = new Set<string>();
  for (const v of varies) {
    if (names.has(varyName(v))) throw new InputError(`--vary ${varyName(v)}: two varied keys with one name`);
    names.add(varyName(v));
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

export function compare(
  ls: LoadedScenario,
  varies: readonly Vary[],
  seeds: number,
  opts: { baseline?: Baseline; progress?: (done: number, total: number) => void } = {},
): CompareRow[] {
  if (varies.length === 0) throw new InputError("compare: nothing to vary (give --vary key=v1,v2)");
  checkVaries(varies);
  const groups: RunGroup[] = [];
  const combos = crossProduct(varies);
  let done = 0;
  for (const params of combos) {
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
      opts.progress?.(++done, combos.length * seeds);
    }
    // Rows name each key as a person chose (its label), or by its path.
    const shown = Object.fromEntries(varies.map((v) => [varyName(v), params[v.key]]));
    groups.push({ params: shown, seeds: seedList, runs, violations });
  }
  return summarise(groups, opts.baseline);
}

/** Runs of one combination of varied values: each run's metrics. */
export interface RunGroup {
  params: Record<string, string>;
  seeds: number[];
  runs: Record<string, number>[];
  violations: number;
}

/** Welch's test: is the difference of two samples' means significant at 95%? */
export function differs(a: readonly number[], b: readonly number[]): boolean {
  const m = (xs: readonly number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const v = (xs: readonly number[], mu: number) =>
    xs.length < 2 ? 0 : xs.reduce((x, y) => x + (y - mu) ** 2, 0) / (xs.length - 1);
  const ma = m(a);
  const mb = m(b);
  if (ma === mb) return false;
  const va = v(a, ma) / a.length;
  const vb = v(b, mb) / b.length;
  const se2 = va + vb;
  // No spread in either: any difference is real (the model is deterministic per seed).
  if (se2 === 0) return a.length > 1 || b.length > 1;
  if (a.length < 2 || b.length < 2) return false;
  const df = se2 ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  return Math.abs(ma - mb) > t975(Math.max(1, Math.floor(df))) * Math.sqrt(se2);
}

/**
 * Per group and metric: mean, 95% CI (clipped at 0: every metric is a count),
 * the ratio to the baseline row (by default: the first value of the first
 * varied key, per value of the others) and whether the difference is significant.
 */
export function summarise(groups: readonly RunGroup[], baseline?: Baseline): CompareRow[] {
  if (baseline === undefined || Object.keys(baseline).length === 0) {
    const first = Object.entries(groups[0]?.params ?? {})[0];
    baseline = first === undefined ? {} : { [first[0]]: first[1] };
  }
  const samplesOf = groups.map((g) => {
    const samples: Record<string, number[]> = {};
    for (const run of g.runs) {
      for (const [m, v] of Object.entries(run)) {
        if (samples[m] === undefined) samples[m] = [];
        samples[m].push(v);
      }
    }
    return samples;
  });
  const key = (p: Record<string, string>) => JSON.stringify(Object.entries(p).sort());
  const index = new Map(groups.map((g, i) => [key(g.params), i]));
  return groups.map((g, i) => {
    const want = { ...g.params };
    for (const [k, v] of Object.entries(baseline)) if (Object.hasOwn(want, k)) want[k] = v;
    const bi = index.get(key(want)) ?? 0;
    const metrics: Record<string, Stat> = {};
    for (const [m, xs] of Object.entries(samplesOf[i])) {
      const { mean, ci95 } = meanCi(xs);
      const base = samplesOf[bi][m];
      const bmean = base === undefined ? 0 : base.reduce((a, b) => a + b, 0) / base.length;
      const st: Stat = {
        mean,
        ci95,
        ratio: bmean === 0 ? null : mean / bmean,
        significant: bi === i || base === undefined ? null : differs(xs, base),
        clipped: false,
      };
      if (ci95[0] < 0) {
        st.ci95 = [0, ci95[1]];
        st.clipped = true;
      }
      metrics[m] = st;
    }
    return { params: g.params, seeds: g.seeds, metrics, violations: g.violations, baseline: bi };
  });
}
