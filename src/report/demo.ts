// `npm run demo` (`asidlab demo DIR`): the seed debates as one report. Each
// section is a definition: comparisons to run (a built-in scenario, --vary
// keys, seeds, metrics to show), an optional trace, and a reading that is a
// function of the figures, so what the text says is what the numbers say.
// A new section is one more entry in DEMO_SECTIONS.

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type CompareRow, compare, parseVary } from "../run/compare.js";
import { runScenario } from "../run/session.js";
import { compileScenario } from "../scenario/compile.js";
import { InputError } from "../scenario/errors.js";
import { builtinScenarioDir, loadScenarioFile } from "../scenario/load.js";
import { fsFailure } from "../scenario/read.js";
import { compareJson } from "./compare-report.js";
import { MANIFEST, type ReportManifest, type ReportSection } from "./html.js";
import { comparePlots, flatNote, paramsLabel, writePlot } from "./plot.js";

export interface Comparison {
  /** A built-in scenario's name. */
  scenario: string;
  /** `key=v1,v2` as on the command line. */
  vary: string[];
  metrics: string[];
  /** Bars per combination, or lines over the last numeric varied key (auto: lines when there is one). */
  plot?: "auto" | "bar" | "line";
  /** Seeds per combination (default: the demo's). */
  seeds?: number;
}

export interface ComparisonResult {
  comparison: Comparison;
  /** File stem in the output directory. */
  name: string;
  rows: CompareRow[];
}

export interface DemoSection {
  id: string;
  title: string;
  question: string;
  comparisons: Comparison[];
  /** One run written as a Chrome trace: a built-in scenario with `--policy` overrides. */
  trace?: { scenario: string; policy?: string[] };
  /** Sentences generated from the figures of the comparisons, in order. */
  reading(results: ComparisonResult[]): string[];
}

// ---------------------------------------------------------------------------------------------
// reading helpers: sentences from figures

const fmt = (x: number) =>
  Math.abs(x) >= 1e6
    ? `${(x / 1e6).toFixed(2)} M`
    : Number.isInteger(x)
      ? x.toLocaleString("en-US")
      : x.toLocaleString("en-US", { maximumFractionDigits: 1 });

const list = (xs: string[]) =>
  xs.length <= 1 ? xs.join("") : `${xs.slice(0, -1).join(", ")} and ${xs[xs.length - 1]}`;

function overlap(a: [number, number], b: [number, number]): boolean {
  return a[0] <= b[1] && b[0] <= a[1];
}

/** The label of a row: its varied values, or only `key`'s. */
function label(r: CompareRow, key?: string): string {
  return key === undefined ? paramsLabel(r.params, Object.keys(r.params)) : r.params[key];
}

/**
 * How each row's `metric` compares with the first row's: "unbind makes 12.3x as many PASID
 * allocations as mm (24.7 vs 2 per run); task-refcount and static make as many as mm (2)".
 */
export function contrast(rows: readonly CompareRow[], metric: string, what: string, key?: string): string {
  const base = rows[0];
  const b = base.metrics[metric];
  const baseName = label(base, key);
  // Rows with the same mean are said together.
  const groups = new Map<number, CompareRow[]>();
  for (const r of rows.slice(1)) {
    const m = r.metrics[metric].mean;
    groups.set(m, [...(groups.get(m) ?? []), r]);
  }
  const parts: string[] = [];
  let same: string[] = [];
  for (const [mean, rs] of groups) {
    const names = rs.map((r) => label(r, key));
    const verb = names.length === 1 ? "has" : "have";
    if (Math.abs(mean - b.mean) <= 1e-9 * Math.max(1, Math.abs(b.mean))) {
      same = names;
      continue;
    }
    if (b.mean === 0) {
      parts.push(`${list(names)} ${verb} ${fmt(mean)} ${what} where ${baseName} has none`);
      continue;
    }
    const noise = rs.every((r) => overlap(r.metrics[metric].ci95, b.ci95))
      ? ", within each other's 95% intervals"
      : "";
    const ratio = mean / b.mean;
    const how =
      Math.abs(ratio - 1) < 0.05
        ? `${(Math.abs(ratio - 1) * 100).toFixed(1)}% ${ratio > 1 ? "more" : "fewer"} ${what} than`
        : ratio > 1
          ? `${ratio.toFixed(ratio < 10 ? 2 : 1)}x as many ${what} as`
          : `${(1 / ratio).toFixed(1 / ratio < 10 ? 2 : 1)}x fewer ${what} than`;
    parts.push(`${list(names)} ${verb} ${how} ${baseName} (${fmt(mean)} vs ${fmt(b.mean)} per run${noise})`);
  }
  if (same.length > 0)
    parts.push(`${list(same)} ${same.length === 1 ? "has" : "have"} as many as ${baseName} (${fmt(b.mean)})`);
  return parts.join("; ");
}

/** "every other row within 0.7% of mm (70.20 M per run), inside each other's 95% intervals", or a contrast. */
export function spread(rows: readonly CompareRow[], metric: string, what: string, key?: string): string {
  const b = rows[0].metrics[metric];
  if (b.mean === 0) return contrast(rows, metric, what, key);
  const dev = Math.max(...rows.slice(1).map((r) => Math.abs(r.metrics[metric].mean / b.mean - 1)));
  if (dev >= 0.05) return contrast(rows, metric, what, key);
  const noise = rows.every((r) => overlap(r.metrics[metric].ci95, b.ci95))
    ? ", inside each other's 95% intervals"
    : "";
  return `${what} within ${(dev * 100).toFixed(1)}% of ${label(rows[0], key)}'s ${fmt(b.mean)} per run everywhere${noise}`;
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

const plural = (n: number, one: string, many: string) => `${fmt(n)} ${n === 1 ? one : many}`;

/** The rows where varied key `key` has `value` (to read one slice of a cross product). */
export function byParam(rows: readonly CompareRow[], key: string, value: string): CompareRow[] {
  return rows.filter((r) => r.params[key] === value);
}

// ---------------------------------------------------------------------------------------------
// the sections

const LIFETIMES = "pasid_lifetime=mm,unbind,task-refcount,static";

const sectionA: DemoSection = {
  id: "a-pasid-lifetime",
  title: "(a) PASID lifetime: mm, unbind, task-refcount, static",
  question:
    "How many PASIDs does each lifetime policy allocate, how many are live at once, and what does it cost, on a thread pool, a fork-exec loop and short-lived threads?",
  comparisons: ["thread-pool", "fork-exec-churn", "short-lived-threads"].map((scenario) => ({
    scenario,
    vary: [LIFETIMES],
    metrics: ["pasid_allocs", "pasid_peak", "cycles_total"],
    plot: "bar" as const,
  })),
  trace: { scenario: "short-lived-threads", policy: ["pasid_lifetime=task-refcount"] },
  reading: (results) =>
    results.flatMap(({ comparison, rows }) => [
      `On ${comparison.scenario}: ${contrast(rows, "pasid_allocs", "PASID allocations")}.`,
      `Peak live PASIDs on ${comparison.scenario}: ${contrast(rows, "pasid_peak", "live PASIDs")}. ${cap(spread(rows, "cycles_total", "cycles"))}.`,
    ]),
};

/** tlb-seed-001: munmaps per syscall (its program's second op). */
const FLUSHES = "munmaps per syscall";

const sectionC: DemoSection = {
  id: "c-user-asid-flush",
  title: "(c) Deferred vs immediate user-ASID flushes",
  question:
    "With PTI, a kernel TLB flush must also flush the user PCID. Mainline defers it to the exit to user space; flushing at once costs what, as the flushes per syscall grow?",
  comparisons: [
    {
      scenario: "tlb-seed-001",
      vary: ["user_asid_flush=deferred,immediate", `${FLUSHES}=processes.0.program.1.count=1,10,100,1000`],
      metrics: ["user_asid_flushes", "tlb_flushes_full", "cycles_total"],
      plot: "line",
    },
    {
      scenario: "tlb-shootdown-storm",
      vary: ["user_asid_flush=deferred,immediate"],
      metrics: ["user_asid_flushes", "cr3_writes", "cycles_total"],
      plot: "bar",
    },
  ],
  trace: { scenario: "tlb-round-robin" },
  reading: ([seed, storm]) => {
    const key = FLUSHES;
    const counts = [...new Set(seed.rows.map((r) => r.params[key]))];
    const top = counts[counts.length - 1];
    const at = (v: string) => byParam(seed.rows, key, v);
    const d = at(top).find((r) => r.params.user_asid_flush === "deferred")!;
    const i = at(top).find((r) => r.params.user_asid_flush === "immediate")!;
    const flat = counts.every(
      (c) =>
        at(c).find((r) => r.params.user_asid_flush === "deferred")!.metrics.user_asid_flushes.mean ===
        d.metrics.user_asid_flushes.mean,
    );
    return [
      `On tlb-seed-001 with ${top} munmaps in one syscall, immediate makes ${fmt(i.metrics.user_asid_flushes.mean)} user-ASID flushes to deferred's ${fmt(d.metrics.user_asid_flushes.mean)} (${(i.metrics.user_asid_flushes.mean / d.metrics.user_asid_flushes.mean).toFixed(1)}x), and ${(i.metrics.cycles_total.mean / d.metrics.cycles_total.mean).toFixed(2)}x the cycles.`,
      flat
        ? `Deferred's user-ASID flushes stay at ${fmt(d.metrics.user_asid_flushes.mean)} from ${counts[0]} to ${top} flushes per syscall: one per exit to user space, however many flushes came before it.`
        : `Deferred's user-ASID flushes grow from ${fmt(at(counts[0]).find((r) => r.params.user_asid_flush === "deferred")!.metrics.user_asid_flushes.mean)} to ${fmt(d.metrics.user_asid_flushes.mean)} over the sweep.`,
      `On tlb-shootdown-storm (8 CPUs, shootdowns): ${contrast(storm.rows, "user_asid_flushes", "user-ASID flushes")}; ${spread(storm.rows, "cycles_total", "cycles")}.`,
    ];
  },
};

/** static-ceiling: processes that never open the device. */
const IDLE_PROCS = "processes not using the device";

const sectionE: DemoSection = {
  id: "e-static-ceiling",
  title: "(e) The static lifetime's ceiling: processes vs PASID space",
  question:
    "Under `static` every mm takes a PASID when it is created. How many processes fit in the PASID space before the processes that do use the device find none left?",
  comparisons: [
    {
      scenario: "static-ceiling",
      vary: ["pasid_lifetime=static,mm", `${IDLE_PROCS}=processes.0.count=4,8,12,13,14,16,32`],
      metrics: ["pasid_peak", "bind_failures", "enqcmd_submitted"],
      plot: "line",
    },
    {
      scenario: "static-ceiling",
      vary: ["PASID bits=machine.pasid_bits=3,4,5", `${IDLE_PROCS}=processes.0.count=2,8,16,32,48`],
      metrics: ["pasid_peak", "bind_failures"],
      plot: "line",
    },
  ],
  trace: { scenario: "static-ceiling", policy: ["pasid_lifetime=static"] },
  reading: ([lifetimes, bits]) => {
    const key = IDLE_PROCS;
    const out: string[] = [];
    for (const policy of ["static", "mm"]) {
      const rows = byParam(lifetimes.rows, "pasid_lifetime", policy);
      const fail = rows.find((r) => r.metrics.bind_failures.mean > 0);
      const peak = Math.max(...rows.map((r) => r.metrics.pasid_peak.mean));
      const last = rows[rows.length - 1];
      out.push(
        fail === undefined
          ? `${policy}: no bind fails up to ${last.params[key]} processes that never open the device; at most ${fmt(peak)} PASIDs live.`
          : `${policy}: binds start failing at ${fail.params[key]} processes that never open the device (${plural(fail.metrics.bind_failures.mean, "failure", "failures")}, ${fmt(fail.metrics.enqcmd_submitted.mean)} descriptors submitted instead of ${fmt(rows[0].metrics.enqcmd_submitted.mean)}); the PASIDs in use top out at ${fmt(peak)}.`,
      );
    }
    const ceilings = [...new Set(bits.rows.map((r) => r.params["PASID bits"]))].map((b) => {
      const rows = byParam(bits.rows, "PASID bits", b);
      return `${fmt(Math.max(...rows.map((r) => r.metrics.pasid_peak.mean)))} with ${b} bits`;
    });
    out.push(
      `Under static, the ceiling follows the PASID space, not the device's use: ${list(ceilings)} (2^bits - 1: PASID 0 is reserved).`,
    );
    return out;
  },
};

const MSR_POLICIES = "pasid_msr=gp-fixup,ipi,task-work,ctxsw-resync";
const IDLE_THREADS = "idle threads"; // eager-vs-lazy: threads that never submit
const CLONE_VM = "CLONE_VM processes"; // eager-vs-lazy: CLONE_VM helpers

/** The row of policy `p` among rows where `key` has `value`. */
function policyRow(rows: readonly CompareRow[], key: string, value: string, p: string): CompareRow {
  const r = byParam(rows, key, value).find((x) => x.params.pasid_msr === p);
  if (r === undefined) throw new Error(`demo: no row for pasid_msr=${p}, ${key}=${value}`);
  return r;
}

const sectionB: DemoSection = {
  id: "b-pasid-msr",
  title: "(b) How the PASID reaches IA32_PASID: gp-fixup, ipi, task-work, ctxsw-resync",
  question:
    "Seed 000's 'good' vs 'perfect': a process binds once and 4 of its threads submit. Lazy population takes a #GP in each submitter; the eager schemes reach every task of the mm at once. What does each cost as the threads that never submit, and the CLONE_VM processes, grow?",
  comparisons: [
    {
      scenario: "eager-vs-lazy",
      vary: [MSR_POLICIES, `${IDLE_THREADS}=processes.0.program.1.count=2,8,32`],
      metrics: ["gp_faults", "pasid_msr_writes", "ipis", "task_works", "cycles_total"],
      plot: "line",
    },
    {
      scenario: "eager-vs-lazy",
      vary: [MSR_POLICIES, `${CLONE_VM}=processes.0.program.2.count=1,4,16`],
      metrics: ["pasid_msr_writes", "task_works", "cycles_total"],
      plot: "line",
    },
  ],
  trace: { scenario: "xstate-demand-fill" },
  reading: ([threads, vms]) => {
    const counts = [...new Set(threads.rows.map((r) => r.params[IDLE_THREADS]))];
    const lo = counts[0];
    const hi = counts[counts.length - 1];
    const w = (p: string, c: string) =>
      policyRow(threads.rows, IDLE_THREADS, c, p).metrics.pasid_msr_writes.mean;
    const gp = (p: string, c: string) => policyRow(threads.rows, IDLE_THREADS, c, p).metrics.gp_faults.mean;
    const vmCounts = [...new Set(vms.rows.map((r) => r.params[CLONE_VM]))];
    const vmHi = vmCounts[vmCounts.length - 1];
    const tw = policyRow(vms.rows, CLONE_VM, vmHi, "task-work");
    const fix = policyRow(vms.rows, CLONE_VM, vmHi, "gp-fixup");
    return [
      `gp-fixup writes the MSR ${fmt(w("gp-fixup", lo))} times with ${lo} idle threads and ${fmt(w("gp-fixup", hi))} with ${hi}, one #GP per submitter (${fmt(gp("gp-fixup", hi))}); task-work writes it ${fmt(w("task-work", lo))} and ${fmt(w("task-work", hi))} times and takes ${fmt(gp("task-work", hi))} #GPs: it pays for every task of the mm, submitting or not.`,
      `MSR writes with ${hi} idle threads: ${contrast(byParam(threads.rows, IDLE_THREADS, hi), "pasid_msr_writes", "MSR writes", "pasid_msr")}.`,
      `With ${hi} idle threads: ${contrast(byParam(threads.rows, IDLE_THREADS, hi), "ipis", "IPIs", "pasid_msr")}.`,
      `With ${hi} idle threads: ${spread(byParam(threads.rows, IDLE_THREADS, hi), "cycles_total", "cycles", "pasid_msr")}.`,
      `With ${vmHi} CLONE_VM processes on the mm, task-work queues ${fmt(tw.metrics.task_works.mean)} task_works (it must walk every task to find them) and writes ${fmt(tw.metrics.pasid_msr_writes.mean)} MSRs, where gp-fixup writes ${fmt(fix.metrics.pasid_msr_writes.mean)}.`,
    ];
  },
};

const HELPERS = "xstate_helper=lock-and-load,update,replace";

const sectionD: DemoSection = {
  id: "d-xstate-helpers",
  title: "(d) Changing one XSTATE component: update vs replace, with and without AMX",
  question:
    "Seed 004: an 'update' helper materialises the current value before changing it, a 'replace' helper writes a whole new one. They look alike; what do they cost for 8 bytes of PKRU and for 8 KiB of AMX TILEDATA? And fpregs_lock_and_load(), as it landed?",
  comparisons: [
    {
      scenario: "xstate-helper-amx",
      vary: [HELPERS, "xstate_check=off,on"],
      metrics: ["xstate_helper_bytes", "xrstors_bytes", "cycles_total"],
      plot: "bar",
    },
    {
      scenario: "xstate-helper-pkru",
      vary: [HELPERS],
      metrics: ["xstate_helper_bytes", "cycles_total"],
      plot: "bar",
    },
  ],
  trace: { scenario: "xstate-amx-switch" },
  reading: ([amx, pkru]) => {
    const amxOff = byParam(amx.rows, "xstate_check", "off");
    const row = (rows: readonly CompareRow[], h: string) => rows.find((r) => r.params.xstate_helper === h)!;
    const upd = row(amxOff, "update");
    const rep = row(amxOff, "replace");
    const extra = (upd.metrics.cycles_total.mean - rep.metrics.cycles_total.mean) / 50;
    const pu = row(pkru.rows, "update");
    const pr = row(pkru.rows, "replace");
    const pextra = (pu.metrics.cycles_total.mean - pr.metrics.cycles_total.mean) / 50;
    const dbg = row(byParam(amx.rows, "xstate_check", "on"), "replace");
    return [
      `AMX TILEDATA: ${contrast(amxOff, "xstate_helper_bytes", "helper bytes", "xstate_helper")}.`,
      `That is ${fmt(extra)} cycles more per TILEDATA write for update than for replace, against ${fmt(pextra)} per PKRU write: ${contrast(pkru.rows, "xstate_helper_bytes", "helper bytes", "xstate_helper")}.`,
      `The debug copy (xstate_check=on) makes replace move ${fmt(dbg.metrics.xstate_helper_bytes.mean)} bytes instead of ${fmt(rep.metrics.xstate_helper_bytes.mean)}.`,
      `XRSTORS: ${spread(amxOff, "xrstors_bytes", "bytes restored", "xstate_helper")}: lock-and-load restores the registers at once rather than on the way out, the same bytes once the task returns to user space.`,
    ];
  },
};

/** The sections, in order. */
export const DEMO_SECTIONS: DemoSection[] = [sectionA, sectionB, sectionC, sectionD, sectionE];

export interface DemoOptions {
  /** Seeds per combination where a comparison does not say (default 5). */
  seeds?: number;
  sections?: DemoSection[];
  log?: (msg: string) => void;
}

/** Run every section's comparisons into `dir`: comparisons, plots, traces and report.json. */
export async function writeDemo(dir: string, opts: DemoOptions = {}): Promise<ReportManifest> {
  const sections: ReportSection[] = [];
  const scenarioPath = (name: string) => join(builtinScenarioDir(), `${name}.yaml`);
  for (const def of opts.sections ?? DEMO_SECTIONS) {
    opts.log?.(`${def.id}`);
    const results: ComparisonResult[] = [];
    const plots: string[] = [];
    const notes: string[] = [];
    const used = new Set<string>();
    for (const c of def.comparisons) {
      const ls = loadScenarioFile(scenarioPath(c.scenario));
      const rows = compare(ls, c.vary.map(parseVary), c.seeds ?? opts.seeds ?? 5);
      let name = `${def.id}.${c.scenario}`;
      for (let n = 2; used.has(name); n++) name = `${def.id}.${c.scenario}-${n}`;
      used.add(name);
      write(join(dir, `${name}.compare.json`), compareJson(ls.scenario.name, rows, c.metrics));
      for (const m of c.metrics) {
        const note = flatNote(rows, m);
        if (note !== null) notes.push(`${ls.scenario.name}: ${note}`);
      }
      for (const p of comparePlots(ls.scenario.name, rows, c.metrics, c.plot ?? "auto")) {
        const stem = `${name}-${p.metric}`;
        await writePlot(dir, { ...p, name: stem });
        plots.push(stem);
      }
      results.push({ comparison: c, name, rows });
    }
    const traces: string[] = [];
    if (def.trace !== undefined) {
      const ls = loadScenarioFile(scenarioPath(def.trace.scenario));
      const r = runScenario(compileScenario(ls, { policy: def.trace.policy ?? [] }), { trace: true });
      const file = `traces/${def.id}.${def.trace.scenario}.json`;
      write(join(dir, file), r.trace ?? "");
      traces.push(file);
    }
    sections.push({
      id: def.id,
      title: def.title,
      question: def.question,
      reading: [...def.reading(results), ...notes],
      comparisons: results.map((r) => `${r.name}.compare.json`),
      plots,
      traces,
    });
  }
  const manifest: ReportManifest = {
    title: "asidlab: the seed debates",
    intro: [
      "Each section runs built-in scenarios under the policies the seed threads argued about, over several seeds: tables give the mean, the 95% confidence interval (clipped at 0 for counts) and the ratio to the baseline row, * where the difference is significant; the readings are generated from those figures. Metric names, units and meanings: `asidlab metrics`.",
      "Reproduce with `npm run demo`; each plot's Vega-Lite spec (.vl.json) is beside it, to edit and re-render.",
    ],
    sections,
  };
  write(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

function write(path: string, text: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  } catch (err) {
    throw new InputError(`${path}: cannot write: ${fsFailure(err)}`);
  }
}
