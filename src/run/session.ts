// One `run`: boot the scenario's machine, pick the scheduler, run to the end
// (or a limit), and gather the result that the CLI prints. Pure: the output
// depends only on the compiled scenario, the seed and the options.

import { ChromeTrace, type ChromeTraceOptions } from "../engine/chrome-trace.js";
import { cpu_peek } from "../engine/cpu.js";
import {
  Engine,
  type Scheduler,
  type StopReason,
  TR_CPU,
  TR_DEVICE,
  TR_TICK,
  trArg,
  trKind,
} from "../engine/engine.js";
import { CORE_INVARIANTS } from "../engine/invariants.js";
import { RandomScheduler } from "../engine/random.js";
import { SimScheduler } from "../engine/sim.js";
import { boot } from "../kernel/boot.js";
import type { Kernel } from "../kernel/kernel.js";
import { cyclesToNs } from "../machine/costs.js";
import type { Violation } from "../machine/machine.js";
import { type Metrics, type PerCpuMetricName, perCpuMetrics } from "../machine/metrics.js";
import type { CompiledScenario } from "../scenario/compile.js";
import type { Policies } from "../scenario/schema.js";

export type SchedulerName = "sim" | "random";
export const SCHEDULERS: readonly SchedulerName[] = ["sim", "random"];

export interface RunOptions {
  scheduler?: SchedulerName;
  maxSteps?: number;
  /** Simulated-time limit in ns. */
  maxTimeNs?: number;
  /** Polled during the run (`run --time`): true stops it where it is. */
  budget?: () => boolean;
  /** A Chrome trace: kept in memory (true; RunResult.trace), or streamed to a writer. */
  trace?: boolean | TraceOut;
}

/** How a trace ended: the events written, and whether (and at which simulated µs) it was cut. */
export interface TraceInfo {
  events: number;
  truncated: boolean;
  truncatedAtUs: number;
}

/** Where a streamed trace goes, its limit, and who is told how it ended. */
export interface TraceOut {
  write: (chunk: string | Uint8Array) => void;
  maxEvents?: number;
  done?: (info: TraceInfo) => void;
  /** Told of every instant on a CPU's track with the slices open there (ChromeTraceOptions.onInstant). */
  onInstant?: ChromeTraceOptions["onInstant"];
}

export interface RunResult {
  scenario: string;
  seed: number;
  policy: Policies;
  scheduler: string;
  /** True when the run ended because nothing was left to do, not at a limit. */
  complete: boolean;
  stop_reason: StopReason;
  metrics: Metrics;
  /** metrics.per_cpu in the JSON: the TLB model's counters for each CPU. */
  per_cpu: Record<PerCpuMetricName, number>[];
  violations: Pick<Violation, "property" | "step" | "message">[];
  violations_total: number;
  /** Fingerprint of the final machine state. */
  state_hash: string;
  /** The first violation with what led to it: the last transitions before it, oldest first. */
  first_violation: (Violation & { trace: string[] }) | null;
  /** Chrome Trace JSON, when asked for. */
  trace?: string;
}

/** Actors that moved in this many steps before the first violation are shown in what led to it. */
export const TRACE_TAIL = 24;
/** Transitions shown per actor (runs of one transition counting as one). */
export const TRACE_PER_ACTOR = 6;

export const DEFAULT_MAX_STEPS = 200_000_000;

export function makeScheduler(name: SchedulerName, seed: number): Scheduler {
  return name === "random" ? new RandomScheduler(seed) : new SimScheduler(seed);
}

export function runScenario(cs: CompiledScenario, opts: RunOptions = {}): RunResult {
  const k = boot(cs.boot);
  const sched = makeScheduler(opts.scheduler ?? "sim", cs.seed);
  const e = new Engine(k, CORE_INVARIANTS, sched);
  let trace: ChromeTrace | null = null;
  const out = typeof opts.trace === "object" ? opts.trace : null;
  if (opts.trace) {
    const now = sched instanceof SimScheduler ? () => sched.time : undefined;
    trace = new ChromeTrace(k, e.clock, {
      write: out?.write,
      maxEvents: out?.maxEvents,
      now,
      onInstant: out?.onInstant,
    });
    k.trace = trace;
    trace.startRun();
  }
  const mhz = cs.boot.params.cpuMhz;
  const maxTimeNs = opts.maxTimeNs ?? Number.MAX_SAFE_INTEGER / 4;
  const stop = e.run({
    maxSteps: opts.maxSteps ?? DEFAULT_MAX_STEPS,
    maxCycles: Math.floor((maxTimeNs * mhz) / 1000),
    budget: opts.budget,
  });
  finishMetrics(k, e);
  const result: RunResult = {
    scenario: cs.name,
    seed: cs.seed,
    policy: cs.policy,
    scheduler: sched.describe(),
    complete: stop === "quiescent",
    stop_reason: stop,
    metrics: k.metrics,
    per_cpu: perCpuMetrics(k.perCpu, k.params.cpus),
    violations: k.violations.map((v) => ({ property: v.property, step: v.step, message: v.message })),
    violations_total: k.violationCount,
    state_hash: k.mem.hashHex(),
    first_violation: null,
  };
  if (k.violations.length > 0) {
    const v = k.violations[0];
    result.first_violation = { ...v, trace: traceTail(cs, opts, v.step) };
  }
  if (trace !== null) {
    const text = trace.finish({ scenario: cs.name, seed: cs.seed, scheduler: sched.describe() });
    if (out === null) result.trace = text;
    else out.done?.({ events: trace.count, truncated: trace.truncated, truncatedAtUs: trace.truncatedAtUs });
  }
  return result;
}

/**
 * What led to the violation at `step`: for each actor (CPU, tick, device,
 * timer) its last transitions before it, oldest first, with a run of the same
 * transition (a spin loop) shown as one line. Found by running the same
 * scenario and seed again with a recorder on: runs are deterministic, so this
 * is the same run, and the hot loop pays nothing for it.
 */
function traceTail(cs: CompiledScenario, opts: RunOptions, step: number): string[] {
  const k = boot(cs.boot);
  const e = new Engine(k, CORE_INVARIANTS, makeScheduler(opts.scheduler ?? "sim", cs.seed));
  interface Entry {
    actor: string;
    what: string;
    first: number;
    last: number;
    n: number;
    ns: string;
  }
  const perActor = new Map<string, Entry[]>();
  e.recorder = (en, tr) => {
    const kind = trKind(tr);
    const arg = trArg(tr);
    const no = k.stepNo + 1;
    let actor: string;
    let what: string;
    let ns = "";
    if (kind === TR_CPU) {
      const t = k.curr(arg);
      ns = `${cyclesToNs(en.clock[arg], k.params.cpuMhz)} ns`;
      actor = `cpu ${arg}`;
      what = `task ${t} (pid ${k.get(k.T.pid, t)})  ${cpu_peek(k, arg)}`;
    } else if (kind === TR_TICK) {
      actor = `tick cpu ${arg}`;
      what = `tick raised on cpu ${arg}`;
    } else if (kind === TR_DEVICE) {
      actor = `device ${arg}`;
      what = `device ${k.model.devices[arg]?.name ?? arg} completes a descriptor`;
    } else {
      actor = `timer ${arg}`;
      what = `timer of task ${arg} expires`;
    }
    const list = perActor.get(actor) ?? [];
    if (list.length === 0) perActor.set(actor, list);
    const top = list[list.length - 1];
    if (top !== undefined && top.what === what) {
      top.last = no;
      top.n++;
      top.ns = ns;
    } else {
      list.push({ actor, what, first: no, last: no, n: 1, ns });
      if (list.length > TRACE_PER_ACTOR) list.shift();
    }
  };
  e.run({ maxSteps: step, maxCycles: Number.MAX_SAFE_INTEGER });
  // The actors seen in the last TRACE_TAIL steps, each with its last transitions.
  const recent = [...perActor.values()].filter((l) => l[l.length - 1].last > step - TRACE_TAIL);
  return recent
    .flat()
    .sort((a, b) => a.last - b.last)
    .map((x) => {
      const steps = x.first === x.last ? `step ${x.last}` : `steps ${x.first}..${x.last} (${x.n} times)`;
      const cpu = x.actor.startsWith("cpu ") ? `  ${x.actor}` : "";
      return `${steps}${x.ns === "" ? "" : `  ${x.ns}`}${cpu}  ${x.what}`;
    });
}

function finishMetrics(k: Kernel, e: Engine): void {
  let busy = 0;
  for (let c = 0; c < e.clock.length; c++) busy += e.clock[c];
  k.metrics.cycles_total = busy - k.metrics.idle_cycles;
  k.metrics.sim_time_ns = cyclesToNs(e.maxClock(), k.params.cpuMhz);
}
