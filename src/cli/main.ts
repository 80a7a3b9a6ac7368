#!/usr/bin/env node
// The asidlab command line. Exit codes (DESIGN.md contract): 0 success,
// 1 a violation was seen, 2 bad input or usage (one line on stderr, naming
// file:line:column where there is one, nothing on stdout).

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { runScenario, SCHEDULERS, type SchedulerName } from "../engine/session.js";
import { runJson, runTable } from "../report/run-report.js";
import { compileScenario } from "../scenario/compile.js";
import { InputError } from "../scenario/errors.js";
import { builtinScenarioDir, loadScenarioFile } from "../scenario/load.js";
import { scenarioJsonSchema } from "../scenario/schema.js";

function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a whole number`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`);
    return n;
  };
}

const collect = (v: string, prev: string[]) => [...prev, v];

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
  scheduler: SchedulerName;
  maxSteps?: number;
}

function cmdRun(file: string, o: RunFlags): number {
  const ls = loadScenarioFile(resolveScenario(file));
  const cs = compileScenario(ls, { seed: o.seed, policy: o.policy, kernel: o.kernel });
  const r = runScenario(cs, { scheduler: o.scheduler, maxSteps: o.maxSteps, trace: o.trace !== undefined });
  if (o.trace !== undefined && r.trace !== undefined) {
    try {
      writeFileSync(o.trace, r.trace);
    } catch (err) {
      throw new InputError(
        `${o.trace}: cannot write trace: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
  }
  process.stdout.write(o.json ? runJson(r) : runTable(r, cs.boot.params.cpus));
  if (!r.complete)
    process.stderr.write(`asidlab: run stopped at the ${r.stop_reason}; figures cover the part that ran\n`);
  return r.violations_total > 0 ? 1 : 0;
}

/** The built-in scenarios: name and the first comment line of each file. */
function cmdScenarios(): number {
  const dir = builtinScenarioDir();
  const files = readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();
  const rows = files.map((f) => {
    const text = readFileSync(join(dir, f), "utf8");
    const first = text.split("\n").find((l) => l.startsWith("#"));
    return [f.replace(/\.(ya?ml|json)$/, ""), first ? first.replace(/^#\s*/, "") : ""];
  });
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [name, desc] of rows) process.stdout.write(`${name.padEnd(w)}  ${desc}\n`);
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
    .option("--policy <key=value>", "override a policy (repeatable)", collect, [])
    .option(
      "--kernel <variant>",
      "add a kernel variant: historical or proposed code (repeatable)",
      collect,
      [],
    )
    .option("--trace <file>", "write a Chrome Trace Event JSON (Perfetto) of the run")
    .addOption(new Option("--scheduler <name>", "who picks the next step").choices(SCHEDULERS).default("sim"))
    .option(
      "--max-steps <n>",
      "stop after this many steps",
      intArg("--max-steps", 1, Number.MAX_SAFE_INTEGER),
    )
    .action((file: string, o: RunFlags) => {
      process.exitCode = cmdRun(file, o);
    });
  cli
    .command("scenarios")
    .description("list the built-in scenarios")
    .action(() => {
      process.exitCode = cmdScenarios();
    });
  cli
    .command("schema")
    .description("print the scenario file's JSON Schema (for editors)")
    .action(() => {
      process.stdout.write(`${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
    });
  return cli;
}

function main(argv: string[]): void {
  const cli = program();
  if (argv.length <= 2) {
    process.stderr.write(cli.helpInformation());
    process.exitCode = 2;
    return;
  }
  try {
    cli.parse(argv);
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
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`asidlab: internal error: ${msg}\n`);
    if (process.env.ASIDLAB_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 70;
  }
}

main(process.argv);
