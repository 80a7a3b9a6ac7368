// The fuzzing campaign of issue #18, as code: scenario files made
// structurally (a grammar of scenarios with hostile values mixed in) and by
// mutating the built-in scenarios' text, each loaded, compiled, run and
// checked in-process under small budgets, or passed to the CLI. What a case
// may do: be accepted (run and check end, within their budgets) or be
// refused with one located line (an InputError). Anything else is a finding:
// another exception (an internal error), a run or check past its budget by
// more than 10% (an overshoot), or a CLI exit other than 0, 1, 2, a stack
// trace, a stderr of more than one line, or stdout that is not JSON.
//
// Used by test/fuzz.test.ts (a few hundred cases, in CI) and bench/fuzz.ts
// (`npm run fuzz`: 100,000 cases and a table of figures).

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { stringify } from "yaml";
import { runScenario } from "../src/run/session.js";
import { compileScenario } from "../src/scenario/compile.js";
import { InputError } from "../src/scenario/errors.js";
import { loadScenarioString } from "../src/scenario/load.js";
import { OP_KINDS } from "../src/scenario/schema.js";
import { explore } from "../src/search/plain.js";

/** A run's steps and a check's states, per case: small, so that 100,000 cases take minutes. */
export const RUN_STEPS = 20_000;
export const CHECK_STATES = 300;
/** The wall-clock budget of a case's run and of its check, and the overshoot allowed (10%). */
export const CASE_BUDGET_MS = 2_000;
const OVERSHOOT = 1.1;

export type Outcome = "accepted" | "refused" | "internal-error" | "overshoot";

export interface CaseResult {
  outcome: Outcome;
  /** The message: the refusal's line, or what went wrong. */
  detail: string;
  ms: number;
}

// ---------------------------------------------------------------------------------------------
// generators

/** Every op of the scenario format but `repeat` (made below, with a body). */
const OP_NAMES = OP_KINDS.filter((k) => k !== "repeat");

/** Values a careless or hostile author writes: edge numbers, odd strings, wrong types. */
const hostile = fc.oneof(
  fc.constantFrom(0, -1, 1.5, 2 ** 31, 2 ** 53, 1e12, 1e20, Number.NaN),
  fc.constantFrom("", "__proto__", "constructor", "toString", "dsa0", "x".repeat(200), "\u0000", "é"),
  fc.constantFrom(true, false, null),
  fc.constant([]),
  fc.constant({}),
);

const small = fc.integer({ min: 1, max: 3000 });

function opArb(depth: number): fc.Arbitrary<unknown> {
  const program =
    depth <= 0 ? fc.constant([{ compute: 10 }]) : fc.array(opArb(depth - 1), { minLength: 1, maxLength: 4 });
  const arg = fc.oneof({ weight: 6, arbitrary: small }, { weight: 1, arbitrary: hostile });
  const simple = fc
    .tuple(fc.constantFrom(...OP_NAMES), arg, fc.constantFrom("dsa0", "dsa1", "nope"))
    .map(([name, a, dev]) => {
      if (["bind", "unbind", "enqcmd", "wait"].includes(name))
        return { [name]: typeof a === "number" && a % 3 === 0 ? a : dev };
      if (["fpu", "xstate_write"].includes(name)) return { [name]: ["avx"] };
      if (["yield", "signal", "sigreturn", "gp_fault", "kernel_fpu"].includes(name)) return { [name]: true };
      if (name === "req_xcomp_perm") return { [name]: "amx" };
      if (name === "exit") return { exit: 0 };
      return { [name]: a };
    });
  if (depth <= 0) return simple;
  return fc.oneof(
    { weight: 5, arbitrary: simple },
    { weight: 1, arbitrary: fc.record({ fork: program }) },
    { weight: 1, arbitrary: fc.record({ exec: program }) },
    { weight: 1, arbitrary: fc.record({ clone_thread: program }) },
    {
      weight: 1,
      arbitrary: fc.record({ repeat: fc.oneof(small, hostile), do: program }),
    },
  );
}

/** A scenario document built from the grammar, hostile values mixed in. */
const structured = fc
  .record({
    name: fc.oneof({ weight: 8, arbitrary: fc.constant("fuzz") }, { weight: 1, arbitrary: hostile }),
    seed: fc.oneof({ weight: 4, arbitrary: fc.nat(1000) }, { weight: 1, arbitrary: hostile }),
    cpus: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 1, max: 4 }) },
      { weight: 1, arbitrary: hostile },
    ),
    device: fc.boolean(),
    wq: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: hostile }),
    processes: fc.array(
      fc.record({
        name: fc.constantFrom("a", "b", "c", "a"),
        count: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) },
          { weight: 1, arbitrary: hostile },
        ),
        threads: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) },
          { weight: 1, arbitrary: hostile },
        ),
        program: fc.array(opArb(2), { minLength: 1, maxLength: 6 }),
      }),
      { minLength: 0, maxLength: 3 },
    ),
    extra: fc.option(fc.dictionary(fc.constantFrom("policy", "costs", "kernel", "check", "bogus"), hostile)),
    json: fc.boolean(),
  })
  .map((r) => {
    const doc: Record<string, unknown> = {
      name: r.name,
      seed: r.seed,
      machine: { cpus: r.cpus },
      ...(r.device ? { devices: { dsa0: { wq_depth: r.wq } } } : {}),
      processes: r.processes,
      ...(r.extra ?? {}),
    };
    return r.json
      ? { file: "fuzz.json", text: JSON.stringify(doc) }
      : { file: "fuzz.yaml", text: stringify(doc, { aliasDuplicateObjects: false }) };
  });

/** The built-in scenarios' texts, sorted by name (the scenarios/ folder, from bench/ or dist/bench/). */
const BUILTINS = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  const d =
    [join(here, "..", "scenarios"), join(here, "..", "..", "scenarios")].find((p) => existsSync(p)) ?? "";
  return readdirSync(d)
    .filter((n) => n.endsWith(".yaml"))
    .sort()
    .map((n) => readFileSync(join(d, n), "utf8"));
})();

const SPECIAL = [..."{}[]:-,\"'&*!|>%@`#?\n\t 0123456789"];

/** One edit of a text: cut, duplicate, swap, insert, renumber or nest. */
const mutation = fc.tuple(fc.nat(5), fc.nat(), fc.nat(), fc.constantFrom(...SPECIAL), hostile);

function mutate(text: string, edits: [number, number, number, string, unknown][]): string {
  let t = text;
  for (const [kind, a, b, ch, v] of edits) {
    const i = t.length === 0 ? 0 : a % t.length;
    const j = Math.min(t.length, i + (b % 40));
    const lines = t.split("\n");
    const li = a % lines.length;
    const lj = b % lines.length;
    switch (kind) {
      case 0:
        t = t.slice(0, i) + t.slice(j); // cut
        break;
      case 1:
        t = t.slice(0, i) + t.slice(i, j) + t.slice(i); // duplicate
        break;
      case 2:
        [lines[li], lines[lj]] = [lines[lj], lines[li]]; // swap two lines
        t = lines.join("\n");
        break;
      case 3:
        t = t.slice(0, i) + ch + t.slice(i); // insert
        break;
      case 4:
        t = t.replace(/\d+/, String(v)); // renumber the first number
        break;
      default:
        t = t.slice(0, i) + "[".repeat(b % 200) + t.slice(i); // open lists
    }
  }
  return t;
}

const mutated = fc
  .tuple(fc.nat(BUILTINS.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }))
  .map(([n, edits]) => ({ file: "fuzz.yaml", text: mutate(BUILTINS[n], edits) }));

/** A scenario file's name and text: half built from the grammar, half mutated built-ins. */
export const scenarioFile = fc.oneof(structured, mutated);

// ---------------------------------------------------------------------------------------------
// running a case

/** One line, located at the file (`fuzz.yaml: ...` or `fuzz.yaml:3:7: ...`). */
function locatedLine(msg: string, file: string): boolean {
  return !msg.includes("\n") && msg.startsWith(`${file}:`);
}

/** Load, compile, run and check one file in-process; the outcome by the rules above. */
export function runCase(file: string, text: string, check = true): CaseResult {
  const t0 = performance.now();
  const done = (outcome: Outcome, detail: string): CaseResult => ({
    outcome,
    detail,
    ms: performance.now() - t0,
  });
  try {
    const ls = loadScenarioString(text, file);
    const cs = compileScenario(ls);
    const r0 = performance.now();
    runScenario(cs, { maxSteps: RUN_STEPS, budget: () => performance.now() - r0 > CASE_BUDGET_MS });
    const ran = performance.now() - r0;
    if (ran > CASE_BUDGET_MS * OVERSHOOT) return done("overshoot", `run took ${Math.round(ran)} ms`);
    if (check) {
      const c0 = performance.now();
      explore(
        cs.boot,
        ls.scenario.check.properties ?? [],
        { maxStates: CHECK_STATES, stop: () => (performance.now() - c0 > CASE_BUDGET_MS ? "time" : null) },
        1,
      );
      const checked = performance.now() - c0;
      if (checked > CASE_BUDGET_MS * OVERSHOOT)
        return done("overshoot", `check took ${Math.round(checked)} ms`);
    }
    return done("accepted", "");
  } catch (err) {
    if (err instanceof InputError) {
      return locatedLine(err.message, file)
        ? done("refused", err.message)
        : done("internal-error", `unlocated or multi-line refusal: ${JSON.stringify(err.message)}`);
    }
    return done("internal-error", err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  }
}

/** What the CLI did with a file, judged: null when it kept the rules, else what it broke. */
export function cliCase(cliArgs: string[], path: string, text: string): string | null {
  writeFileSync(path, text);
  const problems: string[] = [];
  for (const args of [
    ["run", path, "--json", "--max-steps", String(RUN_STEPS)],
    [
      "check",
      path,
      "--json",
      "--max-states",
      String(CHECK_STATES),
      "--time",
      "10",
      "--out",
      `${path}.schedule`,
    ],
  ]) {
    const r = spawnSync(process.execPath, [...cliArgs, ...args], {
      encoding: "utf8",
      env: { ...process.env, ASIDLAB_DEBUG: "", NO_COLOR: "1" },
      timeout: 60_000,
    });
    const what = `${args[0]}: `;
    if (r.error) {
      problems.push(`${what}${r.error.message}`);
      continue;
    }
    if (r.status === null || ![0, 1, 2].includes(r.status))
      problems.push(`${what}exit ${r.status ?? r.signal}`);
    if (/\n\s+at /.test(r.stderr)) problems.push(`${what}a stack trace`);
    if (r.status === 2) {
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      if (lines.length !== 1 || !lines[0].startsWith("asidlab: "))
        problems.push(`${what}stderr ${JSON.stringify(r.stderr)}`);
      if (r.stdout !== "") problems.push(`${what}stdout on a refusal`);
    } else if (r.status === 0 || r.status === 1) {
      try {
        JSON.parse(r.stdout);
      } catch {
        problems.push(`${what}stdout is not JSON`);
      }
    }
  }
  return problems.length === 0 ? null : problems.join("; ");
}
