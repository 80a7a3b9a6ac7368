// `run`: one simulation of a scenario.

import { type Command, Option } from "commander";
import { runJson, runTable } from "../report/run-report.js";
import { runScenario, SCHEDULERS, type SchedulerName, type TraceInfo } from "../run/session.js";
import { compileScenario } from "../scenario/compile.js";
import { loadScenarioFile } from "../scenario/load.js";
import { checkOutputPath } from "../scenario/read.js";
import { collect, intArg, KERNEL_HELP, POLICY_HELP, resolveScenario } from "./args.js";
import { wallClockBudget } from "./budget.js";
import { TraceFile, traceCut } from "./trace-file.js";

interface RunFlags {
  json?: boolean;
  seed?: number;
  policy: string[];
  kernel: string[];
  trace?: string;
  traceMaxEvents?: number;
  scheduler: SchedulerName;
  maxSteps?: number;
  time?: number;
}

function cmdRun(file: string, o: RunFlags): number {
  if (o.trace !== undefined) checkOutputPath(o.trace);
  const ls = loadScenarioFile(resolveScenario(file));
  const cs = compileScenario(ls, { seed: o.seed, policy: o.policy, kernel: o.kernel });
  const tf = o.trace === undefined ? null : new TraceFile(o.trace);
  let info: TraceInfo | null = null;
  let r: ReturnType<typeof runScenario>;
  try {
    r = runScenario(cs, {
      scheduler: o.scheduler,
      maxSteps: o.maxSteps,
      trace: tf === null ? false : { write: tf.write, maxEvents: o.traceMaxEvents, done: (i) => (info = i) },
      budget: o.time === undefined ? undefined : wallClockBudget(o.time),
    });
  } finally {
    tf?.close();
  }
  if (tf !== null) traceCut(tf.path, info);
  process.stdout.write(o.json ? runJson(r) : runTable(r, cs.boot.params.cpus));
  if (!r.complete)
    process.stderr.write(`asidlab: run stopped at the ${r.stop_reason}; figures cover the part that ran\n`);
  return r.violations_total > 0 ? 1 : 0;
}

/** `run SCENARIO`. */
export function registerRun(cli: Command): void {
  cli
    .command("run")
    .description("simulate a scenario: counts, costs, violations")
    .argument("<scenario>", "a scenario file (.yaml/.json) or a built-in scenario's name")
    .option("--json", "one JSON object on stdout")
    .option("--seed <n>", "override the scenario's seed", intArg("--seed", 0, 2 ** 32 - 1))
    .option("--policy <key=value>", POLICY_HELP, collect, [])
    .option("--kernel <variant>", KERNEL_HELP, collect, [])
    .option(
      "--trace <file>",
      "write a Chrome Trace Event JSON (Perfetto) of the run, streamed: the whole run",
    )
    .option(
      "--trace-max-events <n>",
      'cut the trace at n events (every open slice closed; a line on stderr; "truncated": true in its metadata)',
      intArg("--trace-max-events", 1, Number.MAX_SAFE_INTEGER),
    )
    .addOption(new Option("--scheduler <name>", "who picks the next step").choices(SCHEDULERS).default("sim"))
    .option(
      "--max-steps <n>",
      "stop after this many steps",
      intArg("--max-steps", 1, Number.MAX_SAFE_INTEGER),
    )
    .option(
      "--time <seconds>",
      "stop after this many seconds of wall-clock time (figures then cover the part that ran)",
      intArg("--time", 1, 1e6),
    )
    .action((file: string, o: RunFlags) => {
      process.exitCode = cmdRun(file, o);
    });
}
