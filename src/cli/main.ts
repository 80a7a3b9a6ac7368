#!/usr/bin/env node
// The asidlab command line. Exit codes (the README's contract): 0 success,
// 1 a violation was seen, 2 bad input or usage (one line on stderr, naming
// file:line:column where there is one, nothing on stdout).

import { closeSync, existsSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Presets, SingleBar } from "cli-progress";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { KERNEL_VARIANT_NAMES, POLICIES } from "../kernel/policy.js";
import { glossaryJson, glossaryText } from "../machine/glossary.js";
import { checkJson, checkTable } from "../report/check-report.js";
import {
  chooseMetrics,
  compareCsv,
  compareJson,
  compareMarkdown,
  compareTable,
} from "../report/compare-report.js";
import { explainSchedule, type ListingFilter, listingText } from "../report/explain.js";
import { exportCounterexample } from "../report/export.js";
import { runJson, runTable } from "../report/run-report.js";
import { listingColumns } from "../report/text.js";
import { compare, parseBaseline, parseVary } from "../run/compare.js";
import { runScenario, SCHEDULERS, type SchedulerName, type TraceInfo } from "../run/session.js";
import { mergeResults, parseShard, planSweep, runSweep } from "../run/sweep.js";
import { type CompiledScenario, compileScenario } from "../scenario/compile.js";
import { InputError } from "../scenario/errors.js";
import { scenarioJsonSchema, sweepJsonSchema } from "../scenario/json-schema.js";
import { builtinScenarioDir, loadScenarioFile } from "../scenario/load.js";
import { checkOutputPath, fsFailure, openOutput, readInputFile, writeOutputFile } from "../scenario/read.js";
import { loadSweepFile } from "../scenario/sweep-spec.js";
import { checkScenario } from "../search/check.js";
import { isCheckResult, mergeChecks } from "../search/merge.js";
import { plan } from "../search/plan.js";
import { replaySchedule } from "../search/replay.js";
import { formatSchedule, parseSchedule, stampOf } from "../search/schedule.js";
import { vsKernelTable } from "../vskernel/compare.js";
import { vsKernel } from "../vskernel/vskernel.js";
import {
  budgetStop,
  budgets,
  capWorkers,
  DEFAULT_MEMORY_CAP_MIB,
  DEFAULT_TIME_S,
  wallClockBudget,
} from "./budget.js";
import { fsMessage, guardProcess, guardStdout } from "./guard.js";

function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a whole number`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`);
    return n;
  };
}

const collect = (v: string, prev: string[]) => [...prev, v];
// From the one table of policies and variants (kernel/policy.ts); the values are checked by compileScenario.
const POLICY_HELP = `override a policy (repeatable; keys: ${Object.keys(POLICIES).join(", ")})`;
const KERNEL_HELP = `add a kernel variant: historical or proposed code (repeatable; one of: ${KERNEL_VARIANT_NAMES.join(", ")})`;

/** A path, or the name of a built-in scenario (`thread-pool` -> scenarios/thread-pool.yaml). */
export function resolveScenario(arg: string): string {
  if (existsSync(arg)) return arg;
  const isName = /^[A-Za-z0-9_-]+$/.test(arg);
  if (isName) {
    for (const ext of [".yaml", ".yml", ".json"]) {
      const p = join(builtinScenarioDir(), arg + ext);
      if (existsSync(p)) return p;
    }
    throw new InputError(
      `${arg}: no such file, and no built-in scenario of that name (see 'asidlab scenarios')`,
    );
  }
  return arg; // the loader reports it
}

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

/** A trace file written as it is made: opened before the run (so a bad path fails first), written in chunks. */
class TraceFile {
  private readonly fd: number;
  constructor(readonly path: string) {
    this.fd = openOutput(path, "write trace");
  }
  readonly write = (chunk: string | Uint8Array): void => {
    try {
      const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      for (let off = 0; off < b.length; ) off += writeSync(this.fd, b, off, b.length - off);
    } catch (err) {
      throw new InputError(`${this.path}: cannot write trace: ${fsFailure(err)}`);
    }
  };
  close(): void {
    closeSync(this.fd);
  }
}

/** The one line that says a trace was cut at --trace-max-events. */
function traceCut(path: string, info: TraceInfo | null): void {
  if (info?.truncated)
    process.stderr.write(
      `asidlab: ${path}: trace cut at --trace-max-events: ${info.events} events, the first ${info.truncatedAtUs} µs (every open slice closed there); its metadata says "truncated": true\n`,
    );
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

/** A counterexample's Chrome trace and/or ITF, from one more replay of its schedule. */
function writeExports(
  cs: CompiledScenario,
  props: readonly string[],
  schedule: readonly number[],
  o: { trace?: string; itf?: string; traceMaxEvents?: number },
  scenarioFile: string,
  schedulePath: string,
): void {
  const tf = o.trace === undefined ? null : new TraceFile(o.trace);
  let x: ReturnType<typeof exportCounterexample>;
  try {
    x = exportCounterexample(
      cs,
      props,
      schedule,
      {
        trace: tf === null ? undefined : { write: tf.write, maxEvents: o.traceMaxEvents },
        itf: o.itf !== undefined,
      },
      { scenarioFile, schedule: schedulePath },
    );
  } finally {
    tf?.close();
  }
  if (tf !== null) traceCut(tf.path, x.traceInfo);
  if (o.itf !== undefined && x.itf !== null) writeOutputFile(o.itf, x.itf);
}

/**
 * A schedule file and what it was made from, checked: the stamp matches the scenario and the model,
 * and the schedule replays to the violation it records (else where it stops, as an InputError).
 */
function loadCounterexample(file: string, scenario: string | undefined) {
  const sf = parseSchedule(readInputFile(file), file);
  const scenarioPath = scenario ?? sf.scenarioFile;
  const ls = loadScenarioFile(resolveScenario(scenarioPath));
  const cs = compileScenario(ls, { kernel: sf.kernel, policy: sf.policy });
  const props = ls.scenario.check.properties ?? [];
  // The stamp covers the scenario text, policy, variants and the model itself.
  if (stampOf(cs, ls.source, props) !== sf.stamp) {
    throw new InputError(
      `${file}: stale schedule: made from another version of ${scenarioPath} or of the model (stamp ${sf.stamp}); run check again`,
    );
  }
  const r = replaySchedule(cs.boot, props, sf.schedule);
  if (r.error !== null) throw new InputError(`${file}:${sf.lines[r.at]}: ${r.error}`);
  if (r.finding === null) {
    const where =
      sf.schedule.length === 0 ? `${file}: no steps` : `${file}:${sf.lines[r.at - 1]}: step ${r.at}`;
    throw new InputError(
      `${where}: the schedule ends without reaching the violation it records (${sf.property}): cut short or edited? run check again`,
    );
  }
  return { sf, scenarioPath, cs, props, at: r.at, finding: r.finding };
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

interface ViewFlags {
  scenario?: string;
  out?: string;
  serve?: boolean;
  port?: number;
}

/** `view FILE`: the counterexample explorer, one self-contained HTML page. */
async function cmdView(file: string, o: ViewFlags): Promise<number> {
  const { cs, props, sf } = loadCounterexample(file, o.scenario);
  const { viewHtml } = await import("../report/view.js");
  const ex = explainSchedule(cs, props, sf.schedule);
  const html = viewHtml(ex, file);
  const what = `${cs.name}, ${ex.steps.length} steps, ${ex.property} at step ${ex.violation}`;
  if (o.serve !== true || o.out !== undefined) {
    const out = o.out ?? `${file.replace(/\.schedule$/, "")}.html`;
    writeOutputFile(out, html);
    process.stdout.write(`wrote ${out}: ${what}\n`);
  }
  if (o.serve === true) {
    // The same page over HTTP, on the loopback interface only; it stays up until interrupted.
    const { createServer } = await import("node:http");
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split(/[?#]/)[0];
      if (req.method !== "GET" || (path !== "/" && path !== "/index.html")) {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
        return;
      }
      res
        .writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
        .end(html);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) =>
        reject(new InputError(`--port ${o.port ?? 0}: cannot listen on 127.0.0.1: ${err.message}`)),
      );
      server.listen(o.port ?? 0, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    const port = typeof addr === "object" && addr !== null ? addr.port : o.port;
    process.stdout.write(`serving http://127.0.0.1:${port}/ : ${what} (Ctrl-C to stop)\n`);
  }
  return 0;
}

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

/** A progress bar on stderr when it is a terminal (and not in CI), never in a log; null otherwise. */
function progressBar(what: string, unit: string): ((done: number, total: number) => void) & { stop(): void } {
  const tty = process.stderr.isTTY === true && !process.env.CI;
  const bar = tty
    ? new SingleBar(
        {
          stream: process.stderr,
          format: `${what} {bar} {value}/{total} ${unit}  {percentage}%  eta {eta}s`,
        },
        Presets.shades_classic,
      )
    : null;
  let started = false;
  const f = (done: number, total: number) => {
    if (bar === null) return;
    if (!started) {
      bar.start(total, done);
      started = true;
    } else bar.update(done);
  };
  return Object.assign(f, { stop: () => (started ? bar?.stop() : undefined) });
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

function cmdMerge(files: string[], o: { out?: string }): number {
  const inputs = files.map((file) => ({ file, text: readInputFile(file) }));
  // Shards of one check (check --json) or of one sweep (NDJSON), never a mix.
  const checks = inputs.filter((i) => isCheckResult(i.text));
  if (checks.length > 0 && checks.length < inputs.length) {
    const other = inputs.find((i) => !isCheckResult(i.text))!;
    throw new InputError(
      `merge: ${checks[0].file} is a check result and ${other.file} is not: merge the shards of one check, or of one sweep`,
    );
  }
  const merged = checks.length > 0 ? mergeChecks(inputs) : mergeResults(inputs);
  if (o.out !== undefined) writeOutputFile(o.out, merged);
  else process.stdout.write(merged);
  // Merged check shards exit as check does: 1 when a shard found a violation.
  return checks.length > 0 && (JSON.parse(merged) as { verdict: string }).verdict === "violation" ? 1 : 0;
}

async function cmdReport(dir: string, o: { html: string }): Promise<number> {
  const { loadManifest, renderHtml } = await import("../report/html.js");
  writeOutputFile(o.html, renderHtml(dir, loadManifest(dir), o.html));
  return 0;
}

async function cmdDemo(dir: string, o: { html?: string; seeds?: number }): Promise<number> {
  const { writeDemo } = await import("../report/demo.js");
  const { renderHtml } = await import("../report/html.js");
  const html = o.html ?? join(dir, "report.html");
  const manifest = await writeDemo(dir, {
    seeds: o.seeds,
    log: (m) => process.stderr.write(`demo: ${m}\n`),
  });
  writeOutputFile(html, renderHtml(dir, manifest, html));
  process.stderr.write(`demo: wrote ${html}\n`);
  return 0;
}

/** The built-in scenarios: name and the first comment line of each file. */
function cmdScenarios(): number {
  const dir = builtinScenarioDir();
  const files = readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();
  const rows = files.map((f): [string, string] => {
    const text = readFileSync(join(dir, f), "utf8");
    const first = text.split("\n").find((l) => l.startsWith("#"));
    return [f.replace(/\.(ya?ml|json)$/, ""), first ? first.replace(/^#\s*/, "") : ""];
  });
  // Wrapped at words to the terminal's width, or to 100 columns in a pipe or file.
  const width = process.stdout.isTTY === true ? (process.stdout.columns ?? 100) : 100;
  process.stdout.write(listingColumns(rows, width));
  return 0;
}

function program(): Command {
  const cli = new Command("asidlab")
    .description("An executable model of Linux x86 address-space IDs: PASID, XSTATE, PCID/ASID")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
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
  cli
    .command("merge")
    .description(
      "join shard outputs: of one sweep, into exactly the bytes of the unsharded run; of one check (--json), into one result",
    )
    .argument("<files...>", "the shards' NDJSON files (sweep) or JSON results (check --shard k/n --json)")
    .option("--out <file>", "write here instead of stdout")
    .action((files: string[], o: { out?: string }) => {
      process.exitCode = cmdMerge(files, o);
    });
  cli
    .command("report")
    .description(
      "one self-contained HTML page (tables, plots, links to traces) from what compare/sweep/demo wrote",
    )
    .argument("<dir>", "a directory written by compare --plot, sweep --out or demo")
    .requiredOption("--html <file>", "the page to write")
    .action(async (dir: string, o: { html: string }) => {
      process.exitCode = await cmdReport(dir, o);
    });
  cli
    .command("demo")
    .description("the seed debates: run each section's comparisons, write plots, traces and report.html")
    .argument("[dir]", "where to write", "out/demo")
    .option("--html <file>", "the page (default DIR/report.html)")
    .option("--seeds <n>", "seeds per combination (default 5)", intArg("--seeds", 1, 1000))
    .action(async (dir: string, o: { html?: string; seeds?: number }) => {
      process.exitCode = await cmdDemo(dir, o);
    });
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
  cli
    .command("view")
    .description(
      "explore a counterexample in the browser: one self-contained HTML page (timeline per CPU and device, state as kernel structs, stepping, filters)",
    )
    .argument("<schedule>", "a .schedule file written by check")
    .option("--scenario <file>", "the scenario, if not where the schedule says")
    .option("--out <page>", "the page to write (default: the schedule's name with .html)")
    .option(
      "--serve",
      "serve the page on http://127.0.0.1 (loopback only) until interrupted, instead of writing it (unless --out)",
    )
    .option("--port <n>", "the port for --serve (default: any free one)", intArg("--port", 0, 65535))
    .action(async (file: string, o: ViewFlags) => {
      process.exitCode = await cmdView(file, o);
    });
  cli
    .command("vs-kernel")
    .description(
      "run the scenario on a real Linux kernel in QEMU too: its tracepoint counts beside the model's",
    )
    .argument("<scenario>", "a scenario file (.yaml/.json) or a built-in scenario's name")
    .option(
      "--kernel-image <auto|path>",
      "a bzImage, or auto: Debian's linux-image-amd64 (apt-get download, cached)",
      "auto",
    )
    .addOption(
      new Option("--accel <name>", "KVM or TCG (auto: KVM where it works)")
        .choices(["auto", "kvm", "tcg"])
        .default("auto"),
    )
    .option(
      "--skip-unsupported",
      "leave out ops with no counterpart in the guest (listed), instead of refusing",
    )
    .option("--timeout <seconds>", "give up on the guest after this long", intArg("--timeout", 5, 3600), 120)
    .option(
      "--json",
      "one JSON object: {scenario, kernel: {version, accel}, rows: [{metric, kernel, model, ratio, exact}]}",
    )
    .action(
      async (
        file: string,
        o: {
          kernelImage: string;
          accel: "auto" | "kvm" | "tcg";
          skipUnsupported?: boolean;
          timeout: number;
          json?: boolean;
        },
      ) => {
        const r = await vsKernel(loadScenarioFile(resolveScenario(file)), {
          kernelImage: o.kernelImage,
          accel: o.accel,
          skipUnsupported: o.skipUnsupported === true,
          timeoutMs: o.timeout * 1000,
        });
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : vsKernelTable(r));
      },
    );
  cli
    .command("scenarios")
    .description("list the built-in scenarios")
    .action(() => {
      process.exitCode = cmdScenarios();
    });
  cli
    .command("metrics")
    .description(
      "the metric glossary: every metric run --json emits, with unit, kernel counterpart and meaning",
    )
    .option("--json", "one JSON object: {format, metrics, per_cpu}")
    .action((o: { json?: boolean }) => {
      process.stdout.write(o.json ? glossaryJson() : glossaryText());
    });
  cli
    .command("schema")
    .description("print the scenario file's JSON Schema (for editors)")
    .option("--sweep", "the sweep file's instead")
    .action((o: { sweep?: boolean }) => {
      process.stdout.write(
        `${JSON.stringify(o.sweep ? sweepJsonSchema() : scenarioJsonSchema(), null, 2)}\n`,
      );
    });
  return cli;
}

async function main(argv: string[]): Promise<void> {
  guardProcess();
  guardStdout();
  const cli = program();
  if (argv.length <= 2) {
    process.stderr.write(cli.helpInformation());
    process.exitCode = 2;
    return;
  }
  try {
    await cli.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return; // --help, --version
      process.stderr.write(`asidlab: ${err.message.replace(/^error: /, "")}\n`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof InputError) {
      process.stderr.write(`asidlab: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    const fs = fsMessage(err);
    if (fs !== null) {
      process.stderr.write(`asidlab: ${fs}\n`);
      process.exitCode = 2;
      return;
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`asidlab: internal error: ${msg}\n`);
    if (process.env.ASIDLAB_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 70;
  }
}

await main(process.argv);
