// `check --workers N`: exhaustive search on N worker threads sharing one
// visited set. Each worker runs the same depth-first search over its own
// machine (undo journal and all) and explores a state only if it is the one
// that put its fingerprint in the shared table (a compare-and-swap); the
// workers start from the same root and take the enabled transitions in
// different orders (worker w rotates them by w), so they soon work on
// different subtrees. Every reachable state is claimed by exactly one worker,
// which explores all its transitions: for a pass, the states are those of the
// sequential search (and with no preemption bound the transitions too; with
// one, a state reached again with fewer preemptions is explored again, as in
// the sequential search, and how often depends on the order). A violation found by any worker stops
// them all; its path is a valid counterexample (check then looks for the
// shortest one, sequentially, as it does after the sequential search).
//
// The main thread waits with Atomics.wait (no event loop needed) and runs the
// budget's stop() between waits. Everything goes through shared memory.

import { isMainThread, Worker, workerData } from "node:worker_threads";
import type { Kernel } from "../kernel/kernel.js";
import { compileScenario, type Overrides } from "../scenario/compile.js";
import { loadScenarioString } from "../scenario/load.js";
import { Dfs } from "./dfs.js";
import { replaySchedule } from "./replay.js";
import { BaseDfs, EXPLORE, REVISIT, SKIP, STOP as STOP_SEARCH, type Visit } from "./strategy.js";
import { checkMachine } from "./transitions.js";
import { type CheckBudget, type ExploreResult, type Finding, POLL_STATES } from "./types.js";
import { FingerprintSet, SharedFingerprints } from "./visited.js";

/** What a worker needs to build the machine: the scenario text, not the compiled object. */
export interface ScenarioInput {
  source: string;
  file: string;
  overrides: Overrides;
}

// Control words.
const GRACE_WAITS = 2;
const STOP = 0; // 1: stop (a violation, a budget, an error)
const STATES = 1; // states claimed so far
const DONE = 2; // workers finished
const WINNER = 3; // 1 + the worker whose violation is reported
const FULL = 4; // the shared table is full
const STARTED = 5;
const ERROR = 6; // 1 + a worker that threw
const CTL_WORDS = 8;
// Per worker (Float64Array): transitions, max depth.
const PER_WORKER = 2;
const MAX_SCHEDULE = 1 << 16;

interface WorkerInput {
  kind: "asidlab-check-worker";
  scenario: ScenarioInput;
  properties: string[];
  preemptionBound: number | null;
  index: number;
  workers: number;
  /** The table stops taking states at this many (the state budget, or 3/4 of the capacity). */
  limit: number;
  table: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  counts: SharedArrayBuffer;
  schedule: SharedArrayBuffer;
}

function workerMain(input: WorkerInput): void {
  const ctl = new Int32Array(input.ctl);
  const counts = new Float64Array(input.counts);
  Atomics.add(ctl, STARTED, 1);
  try {
    search(input, ctl, counts);
  } catch {
    Atomics.compareExchange(ctl, ERROR, 0, input.index + 1);
    Atomics.store(ctl, STOP, 1);
  }
  Atomics.add(ctl, DONE, 1);
  Atomics.notify(ctl, DONE);
}

/**
 * A worker's strategy: plain depth-first search over the shared table,
 * exploring only the states this worker claimed, the transitions rotated by
 * its index.
 */
class ClaimDfs extends BaseDfs {
  private readonly table: SharedFingerprints;

  private readonly w: number;
  // States claimed here and not yet added to the shared count (one atomic add per 1,024, not per state).
  private unflushed = 0;
  private sinceCheck = 0;

  constructor(
    k: Kernel,
    private readonly input: WorkerInput,
    private readonly ctl: Int32Array,
  ) {
    super(k, { maxStates: input.limit });
    // Bounded: the table keeps each state's fewest ticks.
    this.table = new SharedFingerprints(input.table, input.preemptionBound === null ? 2 : 3);
    this.w = input.index;
  }

  /** Add the claimed states to the shared count; false when the table is past its limit. */
  flush(): boolean {
    const total = Atomics.add(this.ctl, STATES, this.unflushed) + this.unflushed;
    this.unflushed = 0;
    return total < this.input.limit;
  }

  /** Claimed here, claimed by another worker, or the table is full. Every worker starts at the root, claimed or not. */
  visit(ticks: number, depth: number): Visit {
    const mem = this.k.mem;
    // Bounded, as the sequential search: a state reached again with fewer ticks is explored again.
    const r = this.table.lowerOrNew(mem.hashLo(), mem.hashHi(), ticks);
    if (r === 1) {
      this.unflushed++;
      return EXPLORE;
    }
    if (r !== null) return r === 2 ? REVISIT : SKIP;
    Atomics.store(this.ctl, FULL, 1);
    if (depth > 0) Atomics.store(this.ctl, STOP, 1);
    return STOP_SEARCH;
  }

  override choose(_buf: Int32Array, n: number, i: number): number {
    return (i + this.w) % n;
  }

  /** The first worker to find one reports it; all stop. */
  override found(f: Finding): number {
    const ctl = this.ctl;
    if (Atomics.compareExchange(ctl, WINNER, 0, this.w + 1) === 0) {
      const s = new Int32Array(this.input.schedule);
      const n = Math.min(f.schedule.length, MAX_SCHEDULE);
      for (let i = 0; i < n; i++) s[i + 1] = f.schedule[i];
      s[0] = n;
    }
    Atomics.store(ctl, STOP, 1);
    return -1;
  }

  /** Every POLL_STATES states claimed: the shared count, and whether to stop. */
  override poll(): string | null {
    if (++this.sinceCheck !== POLL_STATES) return null;
    this.sinceCheck = 0;
    const ctl = this.ctl;
    if (!this.flush()) {
      Atomics.store(ctl, FULL, 1);
      Atomics.store(ctl, STOP, 1);
    }
    return Atomics.load(ctl, STOP) !== 0 ? "stopped" : null;
  }

  describe(): string {
    return `worker ${this.w}`;
  }
}

/** A worker's search, on the shared table. */
function search(input: WorkerInput, ctl: Int32Array, counts: Float64Array): void {
  const ls = loadScenarioString(input.scenario.source, input.scenario.file);
  const cs = compileScenario(ls, input.scenario.overrides);
  const { k, e } = checkMachine(cs.boot, input.properties);
  const strat = new ClaimDfs(k, input, ctl);
  const dfs = new Dfs(k, e, strat, { bound: input.preemptionBound });
  if (dfs.start() >= 0) dfs.run();
  strat.flush();
  counts[input.index * PER_WORKER] = dfs.transitions;
  counts[input.index * PER_WORKER + 1] = dfs.maxDepth;
}

if (!isMainThread && (workerData as WorkerInput | undefined)?.kind === "asidlab-check-worker")
  workerMain(workerData as WorkerInput);

/**
 * Exhaustive search on `workers` threads. The shared table has a fixed
 * capacity: the state budget's, at most 2^25 slots (256 MiB); filling 3/4 of
 * it ends the search as incomplete.
 */
export function exploreParallel(
  scenario: ScenarioInput,
  properties: readonly string[],
  budget: CheckBudget,
  preemptionBound: number | null,
  workers: number,
): ExploreResult {
  let log2 = 16;
  while (log2 < 25 && 2 ** log2 * 0.75 < budget.maxStates) log2++;
  const limit = Math.min(budget.maxStates, Math.floor(2 ** log2 * 0.75));
  const table = new SharedArrayBuffer(SharedFingerprints.bytes(log2, preemptionBound === null ? 2 : 3));
  const ctlBuf = new SharedArrayBuffer(4 * CTL_WORDS);
  const countsBuf = new SharedArrayBuffer(8 * PER_WORKER * workers);
  const scheduleBuf = new SharedArrayBuffer(4 * (MAX_SCHEDULE + 1));
  const ctl = new Int32Array(ctlBuf);
  const threads: Worker[] = [];
  for (let i = 0; i < workers; i++) {
    const input: WorkerInput = {
      kind: "asidlab-check-worker",
      scenario,
      properties: [...properties],
      preemptionBound,
      index: i,
      workers,
      limit,
      table,
      ctl: ctlBuf,
      counts: countsBuf,
      schedule: scheduleBuf,
    };
    // Under tsx (the tests) this module is TypeScript: the worker loads it through tsx's API.
    const url = import.meta.url;
    threads.push(
      url.endsWith(".ts")
        ? new Worker(
            `import("tsx/esm/api").then((api) => api.tsImport(${JSON.stringify(url)}, ${JSON.stringify(url)}));`,
            {
              eval: true,
              workerData: input,
            },
          )
        : new Worker(new URL(url), { workerData: input }),
    );
  }
  let reason: string | null = null;
  // Waits of at most 100 ms each while some worker has not started: 200 of
  // them (about 20 s) and the threads are given up on. No clock is read.
  let startWaits = 0;
  // Once the budget says stop, waits of 100 ms for the workers to see it:
  // after GRACE_WAITS the threads are terminated (one may still be booting a
  // large machine), so a budget ends the search within about 0.2 s.
  let graceWaits = 0;
  for (;;) {
    const done = Atomics.load(ctl, DONE);
    if (done === workers) break;
    if (reason !== null && ++graceWaits > GRACE_WAITS && Atomics.load(ctl, WINNER) === 0) break;
    Atomics.wait(ctl, DONE, done, 100);
    if (Atomics.load(ctl, STARTED) < workers && ++startWaits > 200) {
      for (const th of threads) void th.terminate();
      throw new Error("check --workers: the worker threads did not start");
    }
    if (reason === null && budget.stop && Atomics.load(ctl, STOP) === 0) {
      const why = budget.stop({ states: Atomics.load(ctl, STATES), transitions: 0, depth: 0 });
      if (why !== null) {
        reason = why;
        Atomics.store(ctl, STOP, 1);
      }
    }
  }
  for (const th of threads) void th.terminate();
  if (Atomics.load(ctl, ERROR) !== 0)
    throw new Error(`check --workers: worker ${Atomics.load(ctl, ERROR) - 1} failed`);
  const counts = new Float64Array(countsBuf);
  let transitions = 0;
  let maxDepth = 0;
  for (let i = 0; i < workers; i++) {
    transitions += counts[i * PER_WORKER];
    maxDepth = Math.max(maxDepth, counts[i * PER_WORKER + 1]);
  }
  const states = Atomics.load(ctl, STATES);
  const base = {
    states,
    transitions,
    maxDepth,
    coverage: `${preemptionBound === null ? "complete" : `preemption-bound:${preemptionBound}`}, ${workers} workers`,
    collisionProbability: FingerprintSet.collisionProbability(states),
  };
  if (Atomics.load(ctl, WINNER) !== 0) {
    const s = new Int32Array(scheduleBuf);
    const schedule = Array.from(s.subarray(1, 1 + s[0]));
    // The worker's path, replayed here for the property and message it breaks.
    const cs = compileScenario(loadScenarioString(scenario.source, scenario.file), scenario.overrides);
    const r = replaySchedule(cs.boot, properties, schedule);
    if (r.finding === null) throw new Error("check --workers: a worker's counterexample does not replay");
    return {
      ...base,
      verdict: "violation",
      finding: { ...r.finding, schedule: schedule.slice(0, r.at) },
      reason: null,
    };
  }
  if (reason === null && Atomics.load(ctl, FULL) !== 0) reason = `state budget: ${limit} states`;
  return { ...base, verdict: reason === null ? "pass" : "incomplete", finding: null, reason };
}
