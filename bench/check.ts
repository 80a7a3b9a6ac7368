// `check`'s throughput: exhaustive search (depth-first over the undo journal,
// 64-bit fingerprints) on a 2-CPU version of the built-in leaver/newcomer
// scenario, preemption bound 2. Prints states/s beside the 1 M target; SPIN
// on Promela twins of the same problems is bench/spin.ts (npm run bench:spin).

import { compileScenario } from "../src/scenario/compile.js";
import { loadScenarioString } from "../src/scenario/load.js";
import { explore } from "../src/search/plain.js";
import { median, nowNs } from "./timing.js";

const SCENARIO = `
name: check-exit-inflight-2cpu
machine: { cpus: 2, pasid_bits: 4 }
devices: { dsa0: { wq_depth: 4 } }
processes:
  - name: leaver
    program: [ { bind: dsa0 }, { enqcmd: dsa0, count: 2 }, { exit: 0 } ]
  - name: newcomer
    program: [ { bind: dsa0 }, { enqcmd: dsa0 }, { wait: dsa0 }, { unbind: dsa0 } ]
`;

export interface CheckBenchResult {
  scenario: string;
  bound: number;
  verdict: string;
  states: number;
  transitions: number;
  ms: number;
  statesPerS: number;
  transitionsPerS: number;
}

const BOUND = 2;
const TARGET = 1_000_000;

export function measureCheck(progress: (msg: string) => void, runs = 3): CheckBenchResult {
  progress(`check: exhaustive search, 2 CPUs, preemption bound ${BOUND} (${runs} runs)`);
  const cs = compileScenario(loadScenarioString(SCENARIO, "check-exit-inflight-2cpu.yaml"), {});
  const times: number[] = [];
  let last = explore(cs.boot, [], { maxStates: 1e9 }, BOUND);
  for (let i = 0; i < runs; i++) {
    const t0 = nowNs();
    last = explore(cs.boot, [], { maxStates: 1e9 }, BOUND);
    times.push(Number(nowNs() - t0) / 1e6);
  }
  const ms = median(times);
  return {
    scenario: "check-exit-inflight (2 CPUs)",
    bound: BOUND,
    verdict: last.verdict,
    states: last.states,
    transitions: last.transitions,
    ms,
    statesPerS: (last.states * 1000) / ms,
    transitionsPerS: (last.transitions * 1000) / ms,
  };
}

export function formatCheck(r: CheckBenchResult): string {
  const m = (x: number) => `${(x / 1e6).toFixed(2)} M/s`;
  return [
    "check: exhaustive search (undo journal, 64-bit fingerprints); median of 3 after a warm-up",
    `${r.scenario}, preemption bound ${r.bound}: ${r.verdict}, ${r.states.toLocaleString("en-US")} states, ${r.transitions.toLocaleString("en-US")} transitions in ${r.ms.toFixed(0)} ms`,
    `${m(r.statesPerS)} states, ${m(r.transitionsPerS)} transitions; target >= ${m(TARGET)} states: ${r.statesPerS >= TARGET ? "met" : "NOT met"}`,
    "",
  ].join("\n");
}
