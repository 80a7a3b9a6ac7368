// What several commands share: argument parsers, help texts, where a scenario is, a progress bar.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { Presets, SingleBar } from "cli-progress";
import { InvalidArgumentError } from "commander";
import { KERNEL_VARIANT_NAMES, POLICIES } from "../kernel/policy.js";
import { InputError } from "../scenario/errors.js";
import { builtinScenarioDir } from "../scenario/load.js";

export function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a whole number`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`);
    return n;
  };
}

export const collect = (v: string, prev: string[]) => [...prev, v];
// From the one table of policies and variants (kernel/policy.ts); the values are checked by compileScenario.
export const POLICY_HELP = `override a policy (repeatable; keys: ${Object.keys(POLICIES).join(", ")})`;
export const KERNEL_HELP = `add a kernel variant: historical or proposed code (repeatable; one of: ${KERNEL_VARIANT_NAMES.join(", ")})`;

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

/** A progress bar on stderr when it is a terminal (and not in CI), never in a log; null otherwise. */
export function progressBar(
  what: string,
  unit: string,
): ((done: number, total: number) => void) & { stop(): void } {
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
