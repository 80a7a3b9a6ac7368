// `npm run bench`: the performance figures of the model, printed side by side
// with the targets. It measures and prints; it never fails on a figure.
//
//   node dist/bench/run.js           aligned tables on stdout
//   node dist/bench/run.js --json    the same figures as JSON on stdout
//   node dist/bench/run.js --only ida   only the PASID allocator (bench/ida.ts)
//   node dist/bench/run.js --only sweep only the 1,000-cell sweep on 1 and 2 workers (bench/sweep.ts)
//   node dist/bench/run.js --only check check's throughput alone (bench/check.ts)
//   node dist/bench/run.js --only spin  check beside SPIN on Promela twins (bench/spin.ts; npm run bench:spin)
//
// Progress goes to stderr. See docs/performance.md for what each figure is.

import { arch, cpus, platform } from "node:os";
import { basename, join } from "node:path";
import { builtinScenarioDir } from "../src/scenario/load.js";
import { type CheckBenchResult, formatCheck, measureCheck } from "./check.js";
import { formatIda, type IdaResult, idaJson, measureIda } from "./ida.js";
import { formatSpin, measureSpin } from "./spin.js";
import { measureState, type StateResult, TARGET_SNAPSHOT_HASH_NS } from "./state.js";
import { formatSweep, measureSweep, type SweepBenchResult, sweepJson } from "./sweep.js";
import {
  type EndToEndResult,
  measureGroup,
  measureRunScenario,
  round,
  type ThroughputGroup,
  type ThroughputResult,
} from "./throughput.js";
import { consumeSink } from "./timing.js";

/** >= 5 M simulated steps/s on 64 CPUs / 10k tasks. */
const TARGET_STEPS_PER_SEC = 5_000_000;

function usage(): never {
  process.stderr.write("usage: node dist/bench/run.js [--json] [--only ida|sweep|check|spin]\n");
  process.exit(2);
}

const args = process.argv.slice(2);
const onlyAt = args.indexOf("--only");
const only = onlyAt < 0 ? undefined : args.splice(onlyAt, 2)[1];
if (only !== undefined && !["ida", "sweep", "check", "spin"].includes(only)) usage();
for (const a of args) if (a !== "--json") usage();
const asJson = args.includes("--json");

const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

const dir = builtinScenarioDir();
const BIG = join(dir, "big-machine.yaml");
const SMALL = join(dir, "thread-pool.yaml");

// The big machine first, while the process has seen nothing else (as in a CLI run);
// runScenario end to end right after it (see measureAll).
const groups: ThroughputGroup[] = [
  {
    file: BIG,
    warmups: 1,
    runs: 5,
    variants: [
      { label: "sim, invariants on", scheduler: "sim", invariants: true, target: TARGET_STEPS_PER_SEC },
      { label: "sim, invariants off", scheduler: "sim", invariants: false },
    ],
  },
  {
    file: SMALL,
    warmups: 5,
    runs: 25,
    variants: [
      { label: "sim, invariants on", scheduler: "sim", invariants: true },
      { label: "random, invariants on", scheduler: "random", invariants: true },
      { label: "random, invariants off", scheduler: "random", invariants: false },
    ],
  },
];

// ---------------------------------------------------------------------------------------------

function met(ok: boolean): string {
  return ok ? "met" : "NOT met";
}

function opNs(state: StateResult, key: string): number {
  return state.ops.find((o) => o.key === key)?.timing.nsPerOp ?? Number.NaN;
}

/** Share of run time the invariants cost, from the on/off pair of one scenario and scheduler. */
function invariantCost(on: ThroughputResult, off: ThroughputResult): number {
  return (on.run_ms - off.run_ms) / on.run_ms;
}

function printJson({ env, elapsedS, throughput, endToEnd, state, ida, check, sweep }: Results): string {
  const out = {
    env,
    elapsed_s: round(elapsedS, 1),
    targets: {
      run_steps_per_sec: TARGET_STEPS_PER_SEC,
      snapshot_hash_ns: TARGET_SNAPSHOT_HASH_NS,
    },
    run: throughput.map((t) => ({
      ...t,
      boot_ms: round(t.boot_ms, 3),
      run_ms: round(t.run_ms, 3),
      steps_per_sec: Math.round(t.steps_per_sec),
      target_met: t.target_steps_per_sec === null ? null : t.steps_per_sec >= t.target_steps_per_sec,
    })),
    run_scenario: {
      ...endToEnd,
      ms: round(endToEnd.ms, 3),
      steps_per_sec: Math.round(endToEnd.steps_per_sec),
    },
    invariant_cost: {
      big_machine_sim: round(invariantCost(throughput[0], throughput[1]), 3),
      thread_pool_random: round(invariantCost(throughput[3], throughput[4]), 3),
    },
    state: {
      ...state,
      ops: state.ops.map((o) => ({
        key: o.key,
        label: o.label,
        ns_per_op: round(o.timing.nsPerOp, 2),
        iterations: o.timing.iterations,
        samples_ns: o.timing.samples.map((s) => round(s, 2)),
        target_ns: o.target ?? null,
        target_met: o.target === undefined ? null : o.timing.nsPerOp <= o.target,
      })),
    },
    ida: idaJson(ida),
    check,
    sweep: sweepJson(sweep),
  };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** Rows of cells to text: column i left-aligned when `align[i]` is "l", else right-aligned. */
function table(header: string[], rows: string[][], align: string): string {
  const all = [header, ...rows];
  const width = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((cell, i) => (align[i] === "l" ? cell.padEnd(width[i]) : cell.padStart(width[i])))
      .join("  ")
      .trimEnd();
  const rule = width.map((w) => "-".repeat(w)).join("  ");
  return [line(header), rule, ...rows.map(line)].join("\n");
}

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const fixed = (x: number, d: number) =>
  x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const mega = (x: number) => `${fixed(x / 1e6, 2)} M/s`;
const ns = (x: number) => (x >= 1000 ? `${fixed(x / 1000, 1)} µs` : `${fixed(x, x < 10 ? 2 : 1)} ns`);

function printTables({ env, elapsedS, throughput, endToEnd, state, ida, check, sweep }: Results): string {
  const out: string[] = [];
  out.push(
    `asidlab bench  ${env.date}  node ${env.node}  ${env.cpu}  ${env.cores} cores  ${env.platform}  (${fixed(elapsedS, 1)} s)`,
  );
  out.push("wall-clock figures; on a small shared machine they vary by about +-30% from run to run");
  out.push("");

  out.push(
    "run throughput: per run, boot (timed apart) then Engine.run to the end; variants of a scenario interleaved; medians",
  );
  out.push(
    table(
      [
        "case",
        "scenario",
        "cpus",
        "tasks",
        "steps/run",
        "runs",
        "boot ms",
        "run ms: median (min..max)",
        "steps/s",
        "target",
        "",
      ],
      throughput.map((t) => [
        t.label,
        t.scenario,
        String(t.cpus),
        int(t.tasks),
        int(t.steps),
        `${t.warmups}+${t.runs}`,
        fixed(t.boot_ms, 1),
        `${fixed(t.run_ms, 1)} (${fixed(Math.min(...t.run_ms_samples), 1)}..${fixed(Math.max(...t.run_ms_samples), 1)})`,
        mega(t.steps_per_sec),
        t.target_steps_per_sec === null ? "" : `>= ${mega(t.target_steps_per_sec)}`,
        t.target_steps_per_sec === null ? "" : met(t.steps_per_sec >= t.target_steps_per_sec),
      ]),
      "llrrrrrrrll",
    ),
  );
  const odd = throughput.filter((t) => t.distinct_hashes !== 1 || t.stop_reason !== "quiescent");
  for (const t of odd) {
    out.push(
      `note: ${t.label} on ${t.scenario}: stop ${t.stop_reason}, ${t.distinct_hashes} distinct final hashes over the runs`,
    );
  }
  out.push(
    `runScenario(cs) end to end on ${endToEnd.scenario}: ${fixed(endToEnd.ms, 1)} ms median of ${endToEnd.runs} ` +
      `(min ${fixed(Math.min(...endToEnd.ms_samples), 1)}, max ${fixed(Math.max(...endToEnd.ms_samples), 1)}) ` +
      `= ${mega(endToEnd.steps_per_sec)} (boot included)`,
  );
  out.push(
    `invariants cost ${fixed(100 * invariantCost(throughput[0], throughput[1]), 0)}% of run time on big-machine (sim), ` +
      `${fixed(100 * invariantCost(throughput[3], throughput[4]), 0)}% on thread-pool (random)`,
  );
  out.push("");

  out.push(
    `machine state: ${state.cpus} CPUs, ${state.tasks} tasks (${state.task_slots} task slots), after ${int(state.steps)} steps: ` +
      `${int(state.words)} words = ${int(state.bytes)} bytes (naive JSON: ${int(state.json_bytes)} bytes)`,
  );
  out.push(
    table(
      ["operation", "ns/op", "iterations", "target", ""],
      state.ops.map((o) => [
        o.label,
        ns(o.timing.nsPerOp),
        int(o.timing.iterations),
        o.target === undefined ? "" : `<= ${ns(o.target)}`,
        o.target === undefined ? "" : met(o.timing.nsPerOp <= o.target),
      ]),
      "lrrll",
    ),
  );
  const flat = opNs(state, "snapshot_hash");
  const naive = opNs(state, "json_snapshot_hash");
  out.push(
    `naive JSON snapshot + hash is ${fixed(naive / flat, 0)}x the flat snapshot + hash; ` +
      `fullHash() is ${fixed(opNs(state, "full_hash") / opNs(state, "hash"), 0)}x the incremental hash read`,
  );
  out.push("", formatIda(ida).trimEnd());
  out.push("", formatCheck(check).trimEnd());
  out.push("", formatSweep(sweep).trimEnd());
  return `${out.join("\n")}\n`;
}

interface Results {
  env: typeof env;
  elapsedS: number;
  throughput: ThroughputResult[];
  endToEnd: EndToEndResult;
  state: StateResult;
  ida: IdaResult;
  check: CheckBenchResult;
  sweep: SweepBenchResult;
}

const env = {
  node: process.version,
  cpu: cpus()[0]?.model.trim() ?? "unknown",
  cores: cpus().length,
  platform: `${platform()} ${arch()}`,
  date: new Date().toISOString().slice(0, 10),
};

async function measureAll(): Promise<Results> {
  const started = Date.now();
  const group = (g: ThroughputGroup) => {
    const what = g.variants.map((v) => v.label).join(" / ");
    progress(`run on ${basename(g.file)}: ${what}, interleaved (${g.warmups} warm-up + ${g.runs} runs each)`);
    return measureGroup(g);
  };
  const throughput = group(groups[0]);
  // Right after the big machine's runs, before the random scheduler has been seen.
  progress("runScenario(cs) end to end on big-machine.yaml (3 runs)");
  const endToEnd = measureRunScenario(BIG, 3);
  for (const g of groups.slice(1)) throughput.push(...group(g));
  progress("snapshot, hash and restore on the 4-CPU / 16-task machine");
  const state = measureState(
    { batchMs: 500, batches: 5, maxIterations: 10_000_000 },
    { batchMs: 200, batches: 5, maxIterations: 1_000_000 },
  );
  const ida = measureIda(progress);
  const check = measureCheck(progress);
  const sweep = await measureSweep(progress);
  const elapsedS = (Date.now() - started) / 1000;
  progress(`done in ${elapsedS.toFixed(1)} s`);
  // The sink holds results of the measured loops; reading it keeps them alive.
  if (consumeSink() === 0x7fffffff) progress("(sink)");
  return { env, elapsedS, throughput, endToEnd, state, ida, check, sweep };
}

if (only === "ida") {
  // The PASID allocator alone (bench/ida.ts), in a fresh process.
  const ida = measureIda(progress);
  const head = `asidlab bench  ${env.date}  node ${env.node}  ${env.cpu}  ${env.cores} cores  ${env.platform}\n`;
  process.stdout.write(
    asJson ? `${JSON.stringify({ env, ida: idaJson(ida) }, null, 2)}\n` : head + formatIda(ida),
  );
} else if (only === "sweep") {
  // The sweep alone (bench/sweep.ts), in a fresh process.
  const sweep = await measureSweep(progress);
  const head = `asidlab bench  ${env.date}  node ${env.node}  ${env.cpu}  ${env.cores} cores  ${env.platform}\n`;
  process.stdout.write(
    asJson ? `${JSON.stringify({ env, sweep: sweepJson(sweep) }, null, 2)}\n` : head + formatSweep(sweep),
  );
} else if (only === "check") {
  // check's throughput alone (bench/check.ts), in a fresh process.
  const check = measureCheck(progress);
  const head = `asidlab bench  ${env.date}  node ${env.node}  ${env.cpu}  ${env.cores} cores  ${env.platform}\n`;
  process.stdout.write(asJson ? `${JSON.stringify({ env, check }, null, 2)}\n` : head + formatCheck(check));
} else if (only === "spin") {
  // asidlab check beside SPIN (bench/spin.ts): child processes, one per tool and row.
  let spin: ReturnType<typeof measureSpin>;
  try {
    spin = measureSpin(progress);
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  const head = `asidlab bench  ${env.date}  node ${env.node}  ${env.cpu}  ${env.cores} cores  ${env.platform}\n`;
  process.stdout.write(asJson ? `${JSON.stringify({ env, spin }, null, 2)}\n` : head + formatSpin(spin));
} else {
  const results = await measureAll();
  process.stdout.write(asJson ? printJson(results) : printTables(results));
}
