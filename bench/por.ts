// `check --por`'s reductions on the built-in check scenarios and a 2-CPU
// variant: states and transitions of plain search, sleep sets alone, sleep
// sets + persistent sets, and the time each took. Counts are deterministic;
// times are this machine's. Run: npm run build && node dist/bench/por.js

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compileScenario } from "../src/scenario/compile.js";
import { builtinScenarioDir, loadScenarioString } from "../src/scenario/load.js";
import { explore } from "../src/search/plain.js";
import { boundOf } from "../src/search/plan.js";
import { explorePor } from "../src/search/por.js";
import type { ExploreResult } from "../src/search/types.js";
import { nowNs } from "./timing.js";

const CASES: { name: string; cpus2?: boolean; bound?: number }[] = [
  { name: "check-exit-inflight" },
  { name: "check-exit-inflight", bound: 2 },
  { name: "check-close-inflight" },
  { name: "check-gp-fixup" },
  { name: "check-gp-fixup", bound: 2 },
  { name: "check-ipi-in-bh" },
  { name: "check-switching-flush" },
  { name: "check-exit-inflight", cpus2: true, bound: 0 },
];

const timed = (f: () => ExploreResult): [ExploreResult, number] => {
  const t0 = nowNs();
  const r = f();
  return [r, Number(nowNs() - t0) / 1e6];
};

const n = (x: number) => x.toLocaleString("en-US");
const pct = (a: number, b: number) => `${((100 * (b - a)) / b).toFixed(1)} %`;

console.log(
  "| scenario | states: plain / sleep / sleep+persistent | transitions: plain / sleep / sleep+persistent | states saved | ms: plain / sleep / sleep+persistent |",
);
console.log("|---|---|---|---|---|");
for (const c of CASES) {
  let src = readFileSync(join(builtinScenarioDir(), `${c.name}.yaml`), "utf8");
  if (c.cpus2 === true) src = src.replace("cpus: 1", "cpus: 2");
  const ls = loadScenarioString(src, `${c.name}.yaml`);
  const cs = compileScenario(ls, {});
  const bound = c.bound ?? boundOf(ls.scenario.check);
  const budget = { maxStates: 5_000_000 };
  const [p, tp] = timed(() => explore(cs.boot, [], budget, bound));
  const [s, ts] = timed(() =>
    explorePor(cs.boot, [], budget, bound, { sleep: true, persistent: false, audit: true }),
  );
  const [f, tf] = timed(() => explorePor(cs.boot, [], budget, bound));
  const what = `${c.name}${c.cpus2 === true ? " at 2 CPUs" : ""}, bound ${bound} (${p.verdict})`;
  console.log(
    `| ${what} | ${n(p.states)} / ${n(s.states)} / ${n(f.states)} | ${n(p.transitions)} / ${n(s.transitions)} / ${n(f.transitions)} | ${pct(f.states, p.states)} | ${tp.toFixed(0)} / ${ts.toFixed(0)} / ${tf.toFixed(0)} |`,
  );
}
