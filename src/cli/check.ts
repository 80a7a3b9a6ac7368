// `check`: explore a scenario's interleavings for a violation.

import { join } from "node:path";
import type { Command } from "commander";
import { checkJson, checkTable } from "../report/check-report.js";
import { explainSchedule, listingText } from "../report/explain.js";
import { parseShard } from "../run/sweep.js";
import { compileScenario } from "../scenario/compile.js";
import { loadScenarioFile } from "../scenario/load.js";
import { checkOutputPath, writeOutputFile } from "../scenario/read.js";
import { checkScenario } from "../search/check.js";
import { plan } from "../search/plan.js";
import { formatSchedule } from "../search/schedule.js";
import { collect, intArg, KERNEL_HELP, POLICY_HELP, resolveScenario } from "./args.js";
import { budgetStop, budgets, capWorkers, DEFAULT_MEMORY_CAP_MIB, DEFAULT_TIME_S } from "./budget.js";
import { writeExports } from "./counterexample.js";

interface CheckFlags {
  json?: boolean;
  seed?: number;
  policy: string[];
  kernel: string[];
  maxStates?: number;
  time?: number;
  memory?: number;
  bitstate?: number;
  preemptionBound?: number | "none";
  random?: number;
  pct?: number;
  depth?: number;
  out?: string;
  strict?: boolean;
  timing?: boolean;
  shortest: boolean;
  por?: boolean;
  workers?: number;
  exhaustive?: boolean;
  shard?: string;
  trace?: string;
  itf?: string;
  traceMaxEvents?: number;
}

function cmdCheck(file: string, o: CheckFlags): number {
  for (const out of [o.out, o.trace, o.itf]) if (out !== undefined) checkOutputPath(out);
  const path = resolveScenario(file);
  const ls = loadScenarioFile(path);
  const cs = compileScenario(ls, { seed: o.seed, policy: o.policy, kernel: o.kernel });
  const cap = capWorkers(o.workers);
  if (cap.note !== null) process.stderr.write(`${cap.note}\n`);
  const p = plan(
    ls.scenario.check,
    { ...o, workers: cap.workers, shard: o.shard === undefined ? undefined : parseShard(o.shard) },
    cs.seed,
  );
  const { stop, elapsed } = budgetStop(budgets(o.time, o.memory));
  const shardPart = p.shard === null ? "" : `.shard-${p.shard.k}-of-${p.shard.n}`;
  const schedulePath = o.out ?? join("out", `${cs.name}${shardPart}.schedule`);
  const { result, schedule } = checkScenario(
    cs,
    ls.source,
    file, // as given: a built-in name or a path, the same on every machine
    {
      ...p,
      stop,
      workers:
        p.workers === null
          ? undefined
          : {
              count: p.workers,
              scenario: {
                source: ls.source,
                file: path,
                overrides: { seed: o.seed, policy: o.policy, kernel: o.kernel },
              },
            },
    },
    schedulePath,
  );
  if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
  // Wall time is not a result (same scenario and seed, same bytes): on stderr, when asked.
  if (o.timing === true)
    process.stderr.write(
      `timing: ${elapsed().toFixed(3)} s, ${result.states.toLocaleString("en-US")} states\n`,
    );
  if (schedule !== null) {
    writeOutputFile(schedulePath, formatSchedule(schedule), "write the schedule");
  }
  if (schedule !== null && (o.trace !== undefined || o.itf !== undefined)) {
    writeExports(cs, p.properties, schedule.schedule, o, file, schedulePath);
  } else if (o.trace !== undefined || o.itf !== undefined) {
    const files = [o.trace, o.itf].filter((f) => f !== undefined).join(" and ");
    process.stderr.write(`asidlab: no counterexample, so ${files} not written\n`);
  }
  // The counterexample's steps with their changes as named fields, and the listing that reads them.
  let listing: string | null = null;
  if (schedule !== null && result.counterexample !== null) {
    const ex = explainSchedule(cs, p.properties, schedule.schedule);
    result.counterexample.steps.forEach((s, i) => {
      s.changes = ex.steps[i]?.changes ?? [];
    });
    listing = listingText(ex);
  }
  process.stdout.write(o.json ? checkJson(result) : checkTable(result, cs.name, listing));
  if (result.verdict === "violation") return 1;
  if (result.verdict === "incomplete" && o.strict) return 3;
  return 0;
}

/** `check SCENARIO`. */
export function registerCheck(cli: Command): void {
  cli
    .command("check")
    .description(
      "explore interleavings: every one the machine allows, or random walks; a minimal counterexample",
    )
    .argument("<scenario>", "a scenario file (.yaml/.json) or a built-in scenario's name")
    .option("--json", "one JSON object on stdout")
    .option("--seed <n>", "override the scenario's seed (random walks)", intArg("--seed", 0, 2 ** 32 - 1))
    .option("--policy <key=value>", POLICY_HELP, collect, [])
    .option("--kernel <variant>", KERNEL_HELP, collect, [])
    .option("--max-states <n>", "state budget", intArg("--max-states", 1, 1e10))
    .option("--time <seconds>", `time budget (default ${DEFAULT_TIME_S})`, intArg("--time", 1, 1e6))
    .option(
      "--memory <MiB>",
      `memory budget, resident set (default half the machine's memory, at most ${DEFAULT_MEMORY_CAP_MIB})`,
      intArg("--memory", 16, 1e7),
    )
    .option(
      "--preemption-bound <k|none>",
      "at most k preemptions (ticks) per path (races rarely need more than 2: a bound looks deep into a large scenario); `none`: every interleaving, the state space searched to its end (for small scenarios)",
      (v: string): number | "none" => (v === "none" ? v : intArg("--preemption-bound", 0, 1000)(v)),
    )
    .option(
      "--bitstate <MiB>",
      "supertrace: a bit array of this size instead of a full visited set",
      intArg("--bitstate", 1, 16384),
    )
    .option("--random <walks>", "random walks instead of exhaustive search", intArg("--random", 1, 1e9))
    .option(
      "--pct <d>",
      "PCT walks with d-1 priority change points (with --random N walks, default 1000)",
      intArg("--pct", 1, 100),
    )
    .option("--depth <n>", "random walk length (PCT's k)", intArg("--depth", 1, 1e9))
    .option("--out <file>", "where to write the counterexample schedule (default out/NAME.schedule)")
    .option("--strict", "exit 3 when the verdict is incomplete")
    .option(
      "--timing",
      "print the wall time the check took on stderr (never in the results, which are the same bytes on every run)",
    )
    .option(
      "--workers <n>",
      "exhaustive search on n worker threads sharing the visited set (at most the CPUs available)",
      intArg("--workers", 1, 64),
    )
    .option(
      "--por",
      "partial-order reduction: sleep sets over read/write footprints (fewer transitions) and persistent sets, one CPU's step alone where it touches only what that CPU owns (fewer states)",
    )
    .option(
      "--no-symmetry",
      "no symmetry reduction (by default the exhaustive search stores one state per class of states that differ only in which slot holds which task, mm or file, and in pids; it switches itself off after 20,000 states where it merged fewer than 3 per class)",
    )
    .option("--exhaustive", "the exhaustive search, where the scenario's check.random asks for random walks")
    .option(
      "--shard <k/n>",
      "swarm shard k of n: random/PCT walks i with i mod n = k-1, or bitstate with hash seed k; `merge` joins the shards' --json",
    )
    .option("--no-shortest", "report the first counterexample found, not the shortest (shrunk either way)")
    .option(
      "--trace <file>",
      "on a violation, also write the counterexample as Chrome Trace Event JSON (one step = 1 µs)",
    )
    .option("--itf <file>", "on a violation, also write the counterexample as ITF JSON (Apalache, Quint)")
    .option(
      "--trace-max-events <n>",
      "cut the trace at n events (as run's)",
      intArg("--trace-max-events", 1, Number.MAX_SAFE_INTEGER),
    )
    .action((file: string, o: CheckFlags) => {
      process.exitCode = cmdCheck(file, o);
    });
}
