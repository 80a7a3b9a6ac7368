// `run` throughput: simulated CPU steps per second of wall-clock time. A
// scenario is loaded and compiled once; every sample boots a fresh machine
// (timed on its own) and runs it to the end with `Engine.run` (timed on its
// own) — the same work `runScenario` does, split in two.

import { Engine } from "../src/engine/engine.js";
import { CORE_INVARIANTS } from "../src/engine/invariants.js";
import { boot } from "../src/kernel/boot.js";
import { DEFAULT_MAX_STEPS, makeScheduler, runScenario, type SchedulerName } from "../src/run/session.js";
import { type CompiledScenario, compileScenario } from "../src/scenario/compile.js";
import { loadScenarioFile } from "../src/scenario/load.js";
import { median, nowNs } from "./timing.js";

/** One way of running a scenario. */
export interface Variant {
  label: string;
  scheduler: SchedulerName;
  invariants: boolean;
  /** Steps per second this variant is measured against, if any. */
  target?: number;
}

/**
 * Variants of one scenario, measured together: their samples are interleaved
 * (A B C A B C ...) so that load from other processes and the JIT's state fall
 * on all of them alike and their ratios stay meaningful.
 */
export interface ThroughputGroup {
  /** Path of the scenario file. */
  file: string;
  variants: Variant[];
  /** Untimed runs of every variant first. */
  warmups: number;
  /** Timed runs of every variant. */
  runs: number;
}

export interface ThroughputResult {
  label: string;
  scenario: string;
  scheduler: string;
  invariants: boolean;
  cpus: number;
  /** Tasks the scenario starts with (idle tasks not counted). */
  tasks: number;
  /** CPU steps of one run (the `steps` metric). */
  steps: number;
  /** Every transition of one run: steps, ticks and timer expiries. */
  transitions: number;
  stop_reason: string;
  /** Distinct final state hashes over the runs (1 when the runs are deterministic). */
  distinct_hashes: number;
  /** Medians over the timed runs. */
  boot_ms: number;
  run_ms: number;
  steps_per_sec: number;
  runs: number;
  warmups: number;
  run_ms_samples: number[];
  boot_ms_samples: number[];
  target_steps_per_sec: number | null;
}

/** The cycle limit `runScenario` uses when no time limit is given. */
function noCycleLimit(cs: CompiledScenario): number {
  return Math.floor(((Number.MAX_SAFE_INTEGER / 4) * cs.boot.params.cpuMhz) / 1000);
}

interface Sample {
  bootNs: number;
  runNs: number;
  steps: number;
  transitions: number;
  stop: string;
  hash: string;
}

function sample(cs: CompiledScenario, c: Variant): Sample {
  const t0 = nowNs();
  const k = boot(cs.boot);
  const t1 = nowNs();
  const e = new Engine(k, c.invariants ? CORE_INVARIANTS : [], makeScheduler(c.scheduler, cs.seed));
  const limits = { maxSteps: DEFAULT_MAX_STEPS, maxCycles: noCycleLimit(cs) };
  const t2 = nowNs();
  const stop = e.run(limits);
  const t3 = nowNs();
  return {
    bootNs: t1 - t0,
    runNs: t3 - t2,
    steps: k.metrics.steps,
    transitions: e.transitions,
    stop,
    hash: k.mem.hashHex(),
  };
}

export function measureGroup(g: ThroughputGroup): ThroughputResult[] {
  const cs = compileScenario(loadScenarioFile(g.file));
  for (let i = 0; i < g.warmups; i++) for (const v of g.variants) sample(cs, v);
  const samples: Sample[][] = g.variants.map(() => []);
  for (let i = 0; i < g.runs; i++) {
    for (let j = 0; j < g.variants.length; j++) samples[j].push(sample(cs, g.variants[j]));
  }
  const tasks = cs.boot.procs.reduce((n, p) => n + p.count * p.threads, 0);
  return g.variants.map((v, j) => {
    const ss = samples[j];
    const first = ss[0];
    return {
      label: v.label,
      scenario: cs.name,
      scheduler: makeScheduler(v.scheduler, cs.seed).describe(),
      invariants: v.invariants,
      cpus: cs.boot.params.cpus,
      tasks,
      steps: first.steps,
      transitions: first.transitions,
      stop_reason: first.stop,
      distinct_hashes: new Set(ss.map((s) => s.hash)).size,
      boot_ms: median(ss.map((s) => s.bootNs / 1e6)),
      run_ms: median(ss.map((s) => s.runNs / 1e6)),
      steps_per_sec: median(ss.map((s) => s.steps / (s.runNs / 1e9))),
      runs: g.runs,
      warmups: g.warmups,
      run_ms_samples: ss.map((s) => round(s.runNs / 1e6, 3)),
      boot_ms_samples: ss.map((s) => round(s.bootNs / 1e6, 3)),
      target_steps_per_sec: v.target ?? null,
    };
  });
}

export interface EndToEndResult {
  scenario: string;
  /** Median wall-clock ms of one `runScenario(cs)` call (boot, run, result). */
  ms: number;
  steps: number;
  steps_per_sec: number;
  runs: number;
  ms_samples: number[];
}

/** `runScenario(cs)` as the CLI calls it, timed whole (after the cases above have warmed the code). */
export function measureRunScenario(file: string, runs: number): EndToEndResult {
  const cs = compileScenario(loadScenarioFile(file));
  const ms: number[] = [];
  let steps = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = nowNs();
    const r = runScenario(cs);
    ms.push((nowNs() - t0) / 1e6);
    steps = r.metrics.steps;
  }
  const m = median(ms);
  return {
    scenario: cs.name,
    ms: m,
    steps,
    steps_per_sec: steps / (m / 1e3),
    runs,
    ms_samples: ms.map((x) => round(x, 3)),
  };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
