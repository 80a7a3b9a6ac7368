#!/usr/bin/env node
// The asidlab command line. Exit codes (the README's contract): 0 success,
// 1 a violation was seen, 2 bad input or usage (one line on stderr, naming
// file:line:column where there is one, nothing on stdout).

import { Command, CommanderError } from "commander";
import { InputError } from "../scenario/errors.js";
import { registerCheck } from "./check.js";
import { registerCompare } from "./compare.js";
import { fsMessage, guardProcess, guardStdout } from "./guard.js";
import { registerInfo } from "./info.js";
import { registerMerge } from "./merge.js";
import { registerReplay } from "./replay.js";
import { registerReport } from "./report.js";
import { registerRun } from "./run.js";
import { registerSweep } from "./sweep.js";
import { registerView } from "./view.js";
import { registerVsKernel } from "./vs-kernel.js";

/** The command line: each command is defined in its own file; the order here is the order of --help. */
function program(): Command {
  const cli = new Command("asidlab")
    .description("An executable model of Linux x86 address-space IDs: PASID, XSTATE, PCID/ASID")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
  registerRun(cli);
  registerCompare(cli);
  registerSweep(cli);
  registerMerge(cli);
  registerReport(cli); // report, demo
  registerCheck(cli);
  registerReplay(cli);
  registerView(cli);
  registerVsKernel(cli);
  registerInfo(cli); // scenarios, metrics, schema
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
