// `check --workers N`: exhaustive search on N worker threads sharing one
// visited set. Each worker runs the same depth-first search over its own
// machine (undo journal and all) and explores a state only if it is the one
// that put its fingerprint in the shared table (a compare-and-swap); the
// workers start from the same root and take the enabled transitions in
// different orders (worker w rotates them by w), so they soon work on
// different subtrees. Every reachable state is claimed by exactly one worker,
// which explores all its transitions: for a pass, the states and transitions
// are those of the sequential search. A violation found by any worker stops
// them all; its path is a valid counterexample (check then looks for the
// shortest one, sequentially, as it does after the sequential search).
//
// The main thread waits with Atomics.wait (no event loop needed) and runs the
// budget's stop() between waits. Everything goes through shared memory.

import { isMainThread, Worker, workerData } from "node:worker_threads";
import { compileScenario, type Overrides } from "../scenario/compile.js";
import { loadScenarioString } from "../scenario/load.js";
import { TR_TICK, trKind } from "./engine.js";
import {
  type CheckBudget,
  checkMachine,
  type ExploreResult,
  enabled,
  replaySchedule,
  stateKeyLo,
} from "./explore.js";
import { FingerprintSet } from "./visited.js";

/** What a worker needs to build the machine: the scenario text, not the compiled object. */
export interface ScenarioInput {
  source: string;
  file: string;
  overrides: Overrides;
}

// Control words.
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

/**
 * The shared visited set: 64-bit fingerprints in open addressing over a
 * SharedArrayBuffer, fixed capacity. A slot is claimed by a CAS on its low
 * word, then its high word is stored; neither half is ever 0 in a stored
 * fingerprint (0 maps to 1), so a reader that sees the low word and a 0 high
 * word knows the writer is between its two stores and waits for it.
 */
class SharedFingerprints {
  private readonly t: Int32Array;
  private readonly mask: number;

  constructor(buf: SharedArrayBuffer) {
    this.t = new Int32Array(buf);
    this.mask = (this.t.length >> 1) - 1;
  }

  static bytes(capacityLog2: number): number {
    return 8 << capacityLog2;
  }

  /** True when this call put (lo, hi) in the table; false when it was there; null when the table is full. */
  add(lo: number, hi: number): boolean | null {
    lo |= 0;
    hi |= 0;
    if (lo === 0) lo = 1;
    if (hi === 0) hi = 1;
    const t = this.t;
    let i = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 0) & this.mask;
    for (let probes = 0; probes <= this.mask; probes++) {
      const a = 2 * i;
      let l = Atomics.load(t, a);
      if (l === 0) {
        l = Atomics.compareExchange(t, a, 0, lo);
        if (l === 0) {
          Atomics.store(t, a + 1, hi);
          return true;
        }
      }
      if (l === lo) {
        let h = Atomics.load(t, a + 1);
        while (h === 0) h = Atomics.load(t, a + 1);
        if (h === hi) return false;
      }
      i = (i + 1) & this.mask;
    }
    return null;
  }
}

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

const MAX_ENABLED = 4096;

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

/** The depth-first search of explore(), on the shared table, transitions rotated by the worker's index. */
function search(input: WorkerInput, ctl: Int32Array, counts: Float64Array): void {
  const ls = loadScenarioString(input.scenario.source, input.scenario.file);
  const cs = compileScenario(ls, input.scenario.overrides);
  const { k, e } = checkMachine(cs.boot, input.properties);
  const bound = input.preemptionBound;
  const table = new SharedFingerprints(input.table);
  const w = input.index;
  k.mem.startJournal();
  const marks: number[] = [];
  const hlo: number[] = [];
  const hhi: number[] = [];
  const trs: Int32Array[] = [];
  const cnt: number[] = [];
  const nexts: number[] = [];
  const ticks: number[] = [];
  const path: number[] = [];
  let depth = 0;
  let transitions = 0;
  let maxDepth = 0;
  let fresh = true;
  let sinceCheck = 0;
  const enabledAt = (d: number) => {
    if (trs.length <= d) trs.push(new Int32Array(MAX_ENABLED));
    return enabled(k, trs[d]);
  };
  // States claimed here and not yet added to the shared count (one atomic add per 1,024, not per state).
  let unflushed = 0;
  const flush = (): boolean => {
    const total = Atomics.add(ctl, STATES, unflushed) + unflushed;
    unflushed = 0;
    return total < input.limit;
  };
  const claim = (t: number) => {
    const r = table.add(stateKeyLo(k, t, bound), k.mem.hashHi());
    if (r === true) unflushed++;
    return r;
  };
  const push = (t: number, count: number) => {
    marks[depth] = k.mem.mark();
    hlo[depth] = k.w[0];
    hhi[depth] = k.w[1];
    cnt[depth] = count;
    nexts[depth] = 0;
    ticks[depth] = t;
  };
  const finish = () => {
    flush();
    counts[w * PER_WORKER] = transitions;
    counts[w * PER_WORKER + 1] = maxDepth;
  };
  const violation = (sched: number[]) => {
    if (Atomics.compareExchange(ctl, WINNER, 0, w + 1) === 0) {
      const s = new Int32Array(input.schedule);
      const n = Math.min(sched.length, MAX_SCHEDULE);
      for (let i = 0; i < n; i++) s[i + 1] = sched[i];
      s[0] = n;
    }
    Atomics.store(ctl, STOP, 1);
    finish();
  };
  const root = claim(0);
  if (root === null) {
    Atomics.store(ctl, FULL, 1);
    finish();
    return;
  }
  push(0, enabledAt(0)); // every worker starts at the root, claimed or not
  while (depth >= 0) {
    if (nexts[depth] >= cnt[depth]) {
      depth--;
      path.pop();
      fresh = false;
      continue;
    }
    const c = cnt[depth];
    const tr = trs[depth][(nexts[depth]++ + w) % c];
    const t = ticks[depth] + (trKind(tr) === TR_TICK ? 1 : 0);
    if (bound !== null && t > bound) continue;
    if (!fresh) k.mem.undo(marks[depth], hlo[depth], hhi[depth]);
    fresh = false;
    if (depth > 0 || root) transitions++; // a state's transitions count for the worker that claimed it
    if (k.violationCount !== 0) {
      k.violations.length = 0;
      k.violationCount = 0;
    }
    e.exec(tr);
    if (k.violations.length > 0) {
      violation([...path, tr]);
      return;
    }
    const mine = claim(t);
    if (mine === null) {
      Atomics.store(ctl, FULL, 1);
      Atomics.store(ctl, STOP, 1);
      finish();
      return;
    }
    if (!mine) continue;
    const count = enabledAt(depth + 1);
    if (count === 0) {
      e.checkEnd();
      if (k.violations.length > 0) {
        violation([...path, tr]);
        return;
      }
    }
    if (++sinceCheck === 1024) {
      sinceCheck = 0;
      if (!flush()) {
        Atomics.store(ctl, FULL, 1);
        Atomics.store(ctl, STOP, 1);
      }
      if (Atomics.load(ctl, STOP) !== 0) {
        finish();
        return;
      }
    }
    depth++;
    path.push(tr);
    if (depth > maxDepth) maxDepth = depth;
    push(t, count);
    fresh = true;
  }
  finish();
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
  const table = new SharedArrayBuffer(SharedFingerprints.bytes(log2));
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
  for (;;) {
    const done = Atomics.load(ctl, DONE);
    if (done === workers) break;
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
