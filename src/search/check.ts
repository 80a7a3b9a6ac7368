// One `check`: explore, shrink what breaks, and describe the counterexample
// step by step the way the seed threads read: CPU, task, kernel function,
// step, and what it wrote. The `--json` shape is a contract (README).

import { cpu_peek } from "../engine/cpu.js";
import { TR_CPU, TR_DEVICE, TR_TICK, trArg, trKind } from "../engine/engine.js";
import type { Kernel } from "../kernel/kernel.js";
import { HEADER_WORDS } from "../machine/memory.js";
import { FR_PC } from "../machine/state.js";
import type { CompiledScenario } from "../scenario/compile.js";
import { exploreParallel, type ScenarioInput } from "./parallel.js";
import { pctWalks } from "./pct.js";
import { explore } from "./plain.js";
import { explorePor } from "./por.js";
import { randomWalks } from "./random.js";
import { replaySchedule } from "./replay.js";
import { type ScheduleFile, stampOf } from "./schedule.js";
import { shortestCounterexample } from "./shortest.js";
import { shrink } from "./shrink.js";
import type { CheckBudget, Finding, Progress, Verdict } from "./types.js";

export interface CheckOptions {
  properties: readonly string[];
  maxStates: number;
  stop?: (p: Progress) => string | null;
  preemptionBound: number | null;
  /** Bitstate (supertrace) search in this many MiB instead of a full visited set. */
  bitstateMiB?: number | null;
  /** Exhaustive search on this many worker threads (>= 2), which rebuild the machine from `scenario`. */
  workers?: { count: number; scenario: ScenarioInput };
  /** Partial-order reduction (sleep sets and persistent sets) in the exhaustive search. */
  por?: boolean;
  /** Symmetry reduction in the plain exhaustive search (plain.ts). */
  symmetry?: boolean;
  /** After an exhaustive search finds a violation, search for the shortest one (default true). */
  shortest?: boolean;
  /** Random walks instead of exhaustive search; with `pct`, PCT walks of that depth. */
  random: WalkPlan | null;
  /** Swarm shard k of n: its share of the walks, or bitstate with hash seed k. */
  shard?: { k: number; n: number } | null;
}

/** Random or PCT walks: how many, their seed, --depth (null: derived), PCT's d, the shard. */
export interface WalkPlan {
  walks: number;
  seed: number;
  depth: number | null;
  pct?: number;
  shard?: { k: number; n: number } | null;
}

function walkOptions(r: WalkPlan, shard: { k: number; n: number } | null | undefined) {
  return { count: r.walks, seed: r.seed, depth: r.depth, shard: shard ?? null };
}

/** The search a result comes from, but for its shard: shards of one search say the same (`merge` checks). */
function searchOf(opts: CheckOptions): string {
  const props = opts.properties.length === 0 ? "" : `, properties ${opts.properties.join(",")}`;
  const r = opts.random;
  if (r !== null) {
    const kind = r.pct === undefined ? "random" : `pct d=${r.pct}`;
    return `${kind}, ${r.walks} walks, depth ${r.depth ?? "derived"}${props}`;
  }
  const bound = `preemption bound ${opts.preemptionBound ?? "none"}, max states ${opts.maxStates}${props}`;
  if (opts.bitstateMiB != null) return `bitstate ${opts.bitstateMiB} MiB, ${bound}`;
  return `${opts.por === true ? "por" : "exhaustive"}, ${bound}`;
}

export interface CounterexampleStep {
  cpu?: number;
  device?: number;
  path: string;
  step: string;
  pc: number;
  summary: string;
  /** The fields the step changed, named as kernel structs (filled in by the report layer: report/explain.ts). */
  changes?: { field: string; old: string; new: string; internal?: true }[];
}

export interface CheckResult {
  verdict: Verdict;
  property: string | null;
  message: string | null;
  states: number;
  transitions: number;
  max_depth: number;
  coverage: string;
  collision_probability: number;
  counterexample: {
    steps: CounterexampleStep[];
    length: number;
    /** The length the first search found it at. */
    found_length: number;
    /** The shortest counterexample's length (before shrinking); null when not searched (random walks, --no-shortest). */
    shortest_length: number | null;
    /** Whether the shortest search ran to the end (false: a budget stopped it; the shortest seen so far is used). */
    shortest_complete: boolean | null;
    reproduce: string;
  } | null;
  reason: string | null;
  /** What was checked, for `merge` to refuse shards of different checks: the scenario, its variants, the seed, the stamp (schedule.ts). */
  scenario: string;
  kernel: string[];
  seed: number;
  stamp: string;
  /** The search, but for the shard (kind, walks, depth, bound, budget, properties). */
  search: string;
  /** Random or PCT walks made; null for a depth-first search. */
  walks: number | null;
  /** This shard of a swarm, or null. */
  shard: { k: number; n: number } | null;
  /** In `merge`'s output: the shards merged and those missing; null otherwise. */
  merged: { n: number; shards: number[]; missing: number[] } | null;
}

export function checkScenario(
  cs: CompiledScenario,
  source: string,
  scenarioFile: string,
  opts: CheckOptions,
  schedulePath: string,
): { result: CheckResult; schedule: ScheduleFile | null } {
  const budget: CheckBudget = { maxStates: opts.maxStates, stop: opts.stop };
  const r =
    opts.random === null
      ? opts.workers !== undefined
        ? exploreParallel(
            opts.workers.scenario,
            opts.properties,
            budget,
            opts.preemptionBound,
            opts.workers.count,
          )
        : opts.por === true
          ? explorePor(cs.boot, opts.properties, budget, opts.preemptionBound)
          : explore(
              cs.boot,
              opts.properties,
              budget,
              opts.preemptionBound,
              opts.bitstateMiB ?? null,
              opts.symmetry === true,
              opts.shard?.k ?? 0,
            )
      : opts.random.pct !== undefined
        ? pctWalks(cs.boot, opts.properties, walkOptions(opts.random, opts.shard), opts.random.pct, budget)
        : randomWalks(cs.boot, opts.properties, walkOptions(opts.random, opts.shard), budget);
  const result: CheckResult = {
    verdict: r.verdict,
    property: null,
    message: null,
    states: r.states,
    transitions: r.transitions,
    max_depth: r.maxDepth,
    coverage: r.coverage,
    collision_probability: r.collisionProbability,
    counterexample: null,
    reason: r.reason,
    scenario: cs.name,
    kernel: cs.variants,
    seed: opts.random?.seed ?? cs.seed,
    stamp: stampOf(cs, source, opts.properties),
    search: searchOf(opts),
    walks: r.walks ?? null,
    shard: opts.shard ?? null,
    merged: null,
  };
  if (r.finding === null) return { result, schedule: null };
  // The shortest counterexample (exhaustive search only: random walks are for
  // state spaces too large to search to that depth), then ddmin on it.
  const sh =
    opts.random === null && opts.shortest !== false
      ? shortestCounterexample(cs.boot, opts.properties, r.finding, budget, opts.preemptionBound)
      : null;
  // With worker threads the first counterexample depends on their timing, and
  // so may the shortest search's pick among those of the shortest length: a
  // second search bounded by that length from the start picks the first of
  // them in depth-first order, the same on every run.
  if (sh?.complete && opts.workers !== undefined) {
    const len = sh.finding.schedule.length;
    const again = shortestCounterexample(
      cs.boot,
      opts.properties,
      { ...sh.finding, schedule: sh.finding.schedule.concat([sh.finding.schedule[len - 1]]) },
      budget,
      opts.preemptionBound,
    );
    if (again.complete && again.finding.schedule.length === len) sh.finding = again.finding;
  }
  const small = shrink(cs.boot, opts.properties, sh?.finding ?? r.finding);
  result.property = small.property;
  result.message = small.message;
  result.counterexample = {
    steps: describeSchedule(cs, opts.properties, small),
    length: small.schedule.length,
    found_length: r.finding.schedule.length,
    shortest_length: sh === null ? null : sh.finding.schedule.length,
    shortest_complete: sh === null ? null : sh.complete,
    reproduce: `asidlab replay ${schedulePath}`,
  };
  const schedule: ScheduleFile = {
    scenarioFile,
    kernel: cs.variants,
    policy: Object.entries(cs.policy).map(([key, v]) => `${key}=${v}`),
    stamp: stampOf(cs, source, opts.properties),
    property: small.property,
    message: small.message,
    schedule: small.schedule,
  };
  return { result, schedule };
}

/** Replay a schedule, describing every step: who ran what, and which fields it changed. */
export function describeSchedule(
  cs: CompiledScenario,
  properties: readonly string[],
  f: Finding,
): CounterexampleStep[] {
  const steps: CounterexampleStep[] = [];
  let peek = "";
  let who = "";
  let pc = -1;
  replaySchedule(cs.boot, properties, f.schedule, {
    before(_i, tr, k) {
      if (trKind(tr) !== TR_CPU) return;
      const cpu = trArg(tr);
      const t = k.curr(cpu);
      peek = cpu_peek(k, cpu);
      who = `cpu ${cpu} task ${t} (pid ${k.get(k.T.pid, t)}):`;
      const fr = k.topFrame(cpu);
      pc = fr >= 0 ? k.w[fr + FR_PC] : -1;
    },
    after(_i, tr, k, before) {
      const kind = trKind(tr);
      const arg = trArg(tr);
      const changed = changes(k, before);
      if (kind === TR_CPU) {
        const sep = peek.indexOf(": ");
        const path = sep < 0 ? peek : peek.slice(0, sep);
        const step = sep < 0 ? "" : peek.slice(sep + 2);
        steps.push({ cpu: arg, path, step, pc, summary: `${who} ${peek}${changed}` });
      } else if (kind === TR_DEVICE) {
        const name = k.model.devices[arg].name;
        steps.push({
          device: arg,
          path: "device",
          step: "complete",
          pc: 0,
          summary: `${name} completes a descriptor${changed}`,
        });
      } else if (kind === TR_TICK) {
        steps.push({
          cpu: arg,
          path: "apic",
          step: "tick",
          pc: 0,
          summary: `the tick is raised on cpu ${arg}`,
        });
      } else {
        steps.push({
          path: "hrtimer",
          step: "expire",
          pc: 0,
          summary: `the timer of task ${arg} expires${changed}`,
        });
      }
    },
  });
  return steps;
}

/** The fields a step changed, described through the layout, at most eight. */
function changes(k: Kernel, before: Int32Array): string {
  const out: string[] = [];
  const w = k.w;
  for (let a = HEADER_WORDS; a < w.length && out.length < 9; a++) {
    if (w[a] !== before[a]) out.push(`${k.L.describe(a)} ${before[a]}->${w[a]}`);
  }
  if (out.length === 0) return "";
  const more = out.length > 8 ? ", ..." : "";
  return `; ${out.slice(0, 8).join(", ")}${more}`;
}
