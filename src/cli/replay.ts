// `replay`: a counterexample schedule, step by step.

import type { Command } from "commander";
import { explainSchedule, type ListingFilter, listingText } from "../report/explain.js";
import { InputError } from "../scenario/errors.js";
import { checkOutputPath } from "../scenario/read.js";
import { intArg } from "./args.js";
import { loadCounterexample, writeExports } from "./counterexample.js";

interface ReplayFlags {
  scenario?: string;
  trace?: string;
  itf?: string;
  traceMaxEvents?: number;
  from?: number;
  to?: number;
  cpu?: number;
  task?: string;
  raw?: boolean;
}

function cmdReplay(file: string, o: ReplayFlags): number {
  for (const out of [o.trace, o.itf]) if (out !== undefined) checkOutputPath(out);
  const { sf, scenarioPath, cs, props, at, finding } = loadCounterexample(file, o.scenario);
  // Exports: one more replay with a Chrome trace sink and/or ITF states (one step = 1 µs).
  if (o.trace !== undefined || o.itf !== undefined)
    writeExports(cs, props, sf.schedule, o, scenarioPath, file);
  const ex = explainSchedule(cs, props, sf.schedule);
  const filter: ListingFilter = { from: o.from, to: o.to, cpu: o.cpu, task: o.task, raw: o.raw };
  if (o.cpu !== undefined && o.cpu >= ex.cpus)
    throw new InputError(
      `--cpu ${o.cpu}: the scenario has ${ex.cpus} CPU${ex.cpus === 1 ? "" : "s"} (0..${ex.cpus - 1})`,
    );
  process.stdout.write(
    `replay of ${file}: ${cs.name}, ${sf.schedule.length} steps\n${listingText(ex, filter)}`,
  );
  process.stdout.write(`\n${finding.property}: ${finding.message} (at step ${at})\n`);
  return 1;
}

/** `replay SCHEDULE`. */
export function registerReplay(cli: Command): void {
  cli
    .command("replay")
    .description("step through a counterexample schedule written by check")
    .argument("<schedule>", "a .schedule file")
    .option("--scenario <file>", "the scenario, if not where the schedule says")
    .option("--trace <file>", "also write it as Chrome Trace Event JSON (Perfetto; one step = 1 µs)")
    .option("--itf <file>", "also write it as ITF JSON (the trace format of Apalache and Quint)")
    .option(
      "--trace-max-events <n>",
      "cut the trace at n events (as run's)",
      intArg("--trace-max-events", 1, Number.MAX_SAFE_INTEGER),
    )
    .option("--from <n>", "list from step n", intArg("--from", 1, 1e9))
    .option("--to <n>", "list up to step n", intArg("--to", 1, 1e9))
    .option("--cpu <n>", "list only the steps of CPU n", intArg("--cpu", 0, 4095))
    .option("--task <name|pid>", "list only the steps of this task (its scenario name, or pid)")
    .option(
      "--raw",
      "also show the model's internal fields (kernel frames, user program counters, free lists)",
    )
    .action((file: string, o: ReplayFlags) => {
      process.exitCode = cmdReplay(file, o);
    });
}
