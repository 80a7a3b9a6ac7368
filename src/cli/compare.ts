// `compare`: one workload under each combination of varied values.

import { join } from "node:path";
import type { Command } from "commander";
import {
  chooseMetrics,
  compareCsv,
  compareJson,
  compareMarkdown,
  compareTable,
} from "../report/compare-report.js";
import { compare, parseBaseline, parseVary } from "../run/compare.js";
import { loadScenarioFile } from "../scenario/load.js";
import { writeOutputFile } from "../scenario/read.js";
import { collect, intArg, progressBar, resolveScenario } from "./args.js";

interface CompareFlags {
  vary: string[];
  baseline: string[];
  seeds: number;
  metrics?: string;
  json?: boolean;
  csv?: boolean;
  markdown?: boolean;
  plot?: string;
}

async function cmdCompare(file: string, o: CompareFlags): Promise<number> {
  const ls = loadScenarioFile(resolveScenario(file));
  const varies = o.vary.map(parseVary);
  const baseline = parseBaseline(o.baseline, varies);
  const progress = progressBar("compare", "runs");
  let rows: ReturnType<typeof compare>;
  try {
    rows = compare(ls, varies, o.seeds, { baseline, progress });
  } finally {
    progress.stop();
  }
  const metrics = chooseMetrics(
    rows,
    o.metrics?.split(",").filter((m) => m !== ""),
  );
  const name = ls.scenario.name;
  if (o.json) process.stdout.write(compareJson(name, rows));
  else if (o.csv) process.stdout.write(compareCsv(rows, metrics));
  else if (o.markdown) process.stdout.write(compareMarkdown(rows, metrics, name));
  else process.stdout.write(compareTable(name, rows, metrics));
  if (o.plot !== undefined) {
    // Loaded only here: vega and vega-lite take a while to load.
    const { comparePlots, flatNote, stem, writePlot } = await import("../report/plot.js");
    // The comparison itself beside its plots, so that `report DIR` can show the table.
    writeOutputFile(join(o.plot, `${stem(name)}.compare.json`), compareJson(name, rows, metrics));
    for (const p of comparePlots(name, rows, metrics)) await writePlot(o.plot, p);
    for (const m of metrics) {
      const note = flatNote(rows, m);
      if (note !== null) process.stderr.write(`asidlab: plot: ${note}\n`);
    }
  }
  return rows.some((r) => r.violations > 0) ? 1 : 0;
}

/** `compare SCENARIO`. */
export function registerCompare(cli: Command): void {
  cli
    .command("compare")
    .description(
      "the same workload under each combination of varied values: mean, 95% CI and ratio per metric",
    )
    .argument("<scenario>", "a scenario file (.yaml/.json) or a built-in scenario's name")
    .option(
      "--vary <key=v1,v2>",
      "a policy, kernel (variants joined by +, or mainline) or a path such as machine.cpus (repeatable)",
      collect,
      [],
    )
    .option(
      "--baseline <key=value>",
      "ratios against the row with this value of a varied key, per value of the others (repeatable; default: the first value of the first --vary)",
      collect,
      [],
    )
    .option("--seeds <n>", "seeds per combination", intArg("--seeds", 1, 10000), 5)
    .option("--metrics <a,b>", "metrics to show (default: the contract's that are not zero)")
    .option("--json", "one JSON object: {scenario, rows}")
    .option("--csv", "CSV, one line per row and metric")
    .option("--markdown", "a Markdown table")
    .option(
      "--plot <dir>",
      "also write a plot per metric into DIR (NAME.vl.json, .svg, .png) and the comparison (NAME.compare.json)",
    )
    .action(async (file: string, o: CompareFlags) => {
      process.exitCode = await cmdCompare(file, o);
    });
}
