// `sweep`: scenarios x varied values x policies x seeds on a worker pool.

import { Presets, SingleBar } from "cli-progress";
import type { Command } from "commander";
import { parseVary } from "../run/compare.js";
import { parseShard, planSweep, runSweep } from "../run/sweep.js";
import { loadSweepFile } from "../scenario/sweep-spec.js";
import { collect, intArg } from "./args.js";
import { capWorkers } from "./budget.js";

interface SweepFlags {
  vary: string[];
  workers?: number;
  shard?: string;
  out?: string;
  progress?: boolean;
}

async function cmdSweep(file: string, o: SweepFlags): Promise<number> {
  const spec = loadSweepFile(file);
  const shard = o.shard === undefined ? undefined : parseShard(o.shard);
  const plan = planSweep(spec, o.vary.map(parseVary));
  const cap = capWorkers(o.workers);
  if (cap.note !== null) process.stderr.write(`${cap.note}\n`);
  // A progress bar when stderr is a terminal (and not in CI), never in a log.
  const tty = process.stderr.isTTY === true && !process.env.CI && o.progress !== false;
  const bar = tty
    ? new SingleBar(
        { stream: process.stderr, format: "sweep {bar} {value}/{total} cells  {percentage}%  eta {eta}s" },
        Presets.shades_classic,
      )
    : null;
  let started = false;
  const summary = await runSweep(plan, {
    workers: cap.workers,
    shard,
    out: o.out,
    progress: (done, total) => {
      if (bar === null) return;
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(done);
    },
  });
  bar?.stop();
  const where = shard === undefined ? "" : ` in shard ${shard.k}/${shard.n}`;
  process.stderr.write(
    `sweep ${plan.name} (${plan.id}): ${summary.inShard} of ${summary.cells} cells${where}: ` +
      `${summary.skipped} already done, ${summary.ran} run, ${summary.failed} failed\n`,
  );
  return 0;
}

/** `sweep FILE`. */
export function registerSweep(cli: Command): void {
  cli
    .command("sweep")
    .description(
      "scenarios x varied values x policies x seeds on a worker-thread pool: NDJSON, one line per cell",
    )
    .argument("<file>", "a sweep file (.yaml/.json): name, scenarios, seeds, vary, policies, metrics")
    .option("--vary <key=v1,v2>", "vary one more key (repeatable), as in compare", collect, [])
    .option("--workers <n>", "worker threads (default: the CPUs available)", intArg("--workers", 1, 1024))
    .option("--shard <k/n>", "run only shard k of n (cells i with i mod n = k-1); `merge` joins the shards")
    .option("--out <file>", "write the results here, resumably: a rerun skips the cells already in it")
    .option("--no-progress", "no progress bar (there is none anyway unless stderr is a terminal)")
    .action(async (file: string, o: SweepFlags) => {
      process.exitCode = await cmdSweep(file, o);
    });
}
