// `check` at scale: the three scenarios that mirror the hand-written SPIN
// models of issue #13 (and their kernel variants), at preemption bounds 0-2,
// each searched by plain search, with symmetry reduction kept on, and with
// --por: states, seconds and the ratio of each to plain search, side by side
// in one run. A search stopped by the time budget prints ">" before its
// states. Counts are deterministic; times are this machine's.
// Run: npm run build && node dist/bench/scale.js [--time SECONDS] [--runs N] [--bounds 0,1,2]

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compileScenario } from "../src/scenario/compile.js";
import { builtinScenarioDir, loadScenarioString } from "../src/scenario/load.js";
import { explore } from "../src/search/plain.js";
import { explorePor } from "../src/search/por.js";
import type { CheckBudget, ExploreResult } from "../src/search/types.js";
import { nowNs } from "./timing.js";

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const TIME = Number(opt("--time", "30"));
const RUNS = Number(opt("--runs", "1"));
const BOUNDS = opt("--bounds", "0,1,2").split(",").map(Number);

const CASES: { name: string; variant: string }[] = [
  { name: "check-gp-fixup-2cpu", variant: "gp-fixup-irqs-on" },
  { name: "check-exit-inflight-8", variant: "free-at-mmput" },
  { name: "check-user-asid-3cpu", variant: "fea4e317f9e7" },
];

type Search = (
  boot: ReturnType<typeof compileScenario>["boot"],
  budget: CheckBudget,
  bound: number,
) => ExploreResult;
const SEARCHES: [string, Search][] = [
  ["plain", (boot, budget, bound) => explore(boot, [], budget, bound)],
  ["symmetry", (boot, budget, bound) => explore(boot, [], budget, bound, null, "always")],
  ["--por", (boot, budget, bound) => explorePor(boot, [], budget, bound)],
];

const n = (x: number) => x.toLocaleString("en-US");

/** One search RUNS times: its result and its seconds (min, median, max). */
function measure(f: (budget: CheckBudget) => ExploreResult): { r: ExploreResult; s: number[] } {
  const times: number[] = [];
  let r: ExploreResult | null = null;
  for (let i = 0; i < RUNS; i++) {
    const t0 = nowNs();
    const budget: CheckBudget = {
      maxStates: 1e9,
      stop: () => (Number(nowNs() - t0) / 1e9 > TIME ? `time budget: ${TIME} s` : null),
    };
    r = f(budget);
    times.push(Number(nowNs() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return { r: r as ExploreResult, s: times };
}

const secs = (s: number[]) =>
  s.length === 1
    ? s[0].toFixed(2)
    : `${s[Math.floor(s.length / 2)].toFixed(2)} (${s[0].toFixed(2)}-${s[s.length - 1].toFixed(2)})`;

const others = SEARCHES.slice(1).map(([m]) => m);
const head = [
  "scenario",
  "kernel",
  "bound",
  ...SEARCHES.map(([m]) => `${m}: verdict, states, s`),
  ...others.map((m) => `${m}/plain: states, time`),
];
console.log(`| ${head.join(" | ")} |`);
console.log(`|${head.map(() => "---|").join("")}`);
for (const c of CASES) {
  const src = readFileSync(join(builtinScenarioDir(), `${c.name}.yaml`), "utf8");
  for (const kernel of [[], [c.variant]]) {
    const cs = compileScenario(loadScenarioString(src, `${c.name}.yaml`), { kernel });
    for (const bound of BOUNDS) {
      const cells = SEARCHES.map(([, f]) => measure((budget) => f(cs.boot, budget, bound)));
      const plain = cells[0];
      const median = (s: number[]) => s[Math.floor(s.length / 2)];
      const row = [
        c.name,
        kernel.length === 0 ? "mainline" : kernel[0],
        String(bound),
        ...cells.map(({ r, s }) => {
          const v = r.verdict === "violation" ? `violation (${r.finding?.schedule.length})` : r.verdict;
          return `${v}, ${r.verdict === "incomplete" ? ">" : ""}${n(r.states)}, ${secs(s)}`;
        }),
        ...cells.slice(1).map(({ r, s }) => {
          const st = (r.states / Math.max(1, plain.r.states)).toFixed(2);
          const t = (median(s) / Math.max(1e-9, median(plain.s))).toFixed(2);
          return `${st}, ${t}`;
        }),
      ];
      console.log(`| ${row.join(" | ")} |`);
    }
  }
}
