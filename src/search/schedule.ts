// Counterexample schedules on disk: one transition per line, diff-able,
// stamped with a hash of the scenario text, the policy and variants in force,
// and the model itself (every kernel path and step name), so that a replay
// against a changed scenario or model is refused instead of silently
// diverging. Transitions are written as "cpu 0", "tick 1", "timer 5", "device 0".

import { describeTransition, parseTransition, TR_SHIFT } from "../engine/engine.js";
import { allPaths } from "../kernel/path.js";
import type { CompiledScenario } from "../scenario/compile.js";
import { InputError } from "../scenario/errors.js";

export interface ScheduleFile {
  scenarioFile: string;
  /** The overrides the check ran with: kernel variants and `key=value` policies. */
  kernel: string[];
  policy: string[];
  stamp: string;
  property: string;
  message: string;
  schedule: number[];
}

/** A schedule read from a file. */
export interface ParsedSchedule extends ScheduleFile {
  /** The 1-based line of each step in the file (where a replay that stops there says so). */
  lines: number[];
}

/** FNV-1a, 32 bits, twice with different offsets: a 64-bit hex digest of the text. */
function digest(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193 + 2);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

/** The model's identity: its paths and steps, in order. */
function modelText(): string {
  return allPaths()
    .map((p) => `${p.name}:${p.steps.map((s) => s.name).join(",")}`)
    .join(";");
}

export function stampOf(cs: CompiledScenario, source: string, properties: readonly string[]): string {
  return digest(
    [source, JSON.stringify(cs.policy), cs.variants.join(","), properties.join(","), modelText()].join("\n"),
  );
}

export function formatSchedule(f: ScheduleFile): string {
  const head = [
    "# asidlab counterexample schedule: one transition per line",
    `# scenario: ${f.scenarioFile}`,
    `# kernel: ${f.kernel.join(" ")}`,
    `# policy: ${f.policy.join(" ")}`,
    `# stamp: ${f.stamp}`,
    `# property: ${f.property}`,
    `# message: ${f.message.replace(/\n/g, " ")}`,
  ];
  return `${[...head, ...f.schedule.map(describeTransition)].join("\n")}\n`;
}

/** Parse a schedule file's text; errors name file:line. */
export function parseSchedule(text: string, file: string): ParsedSchedule {
  const lines = text.split("\n");
  const meta: Record<string, string> = {};
  const schedule: number[] = [];
  const at: number[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    if (line.startsWith("#")) {
      const m = /^#\s*(scenario|kernel|policy|stamp|property|message):\s*(.*)$/.exec(line);
      if (m !== null) meta[m[1]] = m[2];
      return;
    }
    const tr = parseTransition(line);
    if (tr === null)
      throw new InputError(
        `${file}:${i + 1}:1: not a transition: '${line}' (expected cpu N, tick N, timer N or device N)`,
      );
    // A number too large for its field would alias another transition (cpu 99999999999999999999 read as timer 0).
    const [kind, n] = line.split(/\s+/);
    if (describeTransition(tr) !== `${kind} ${n}`) {
      const field = kind === "timer" ? "task" : kind === "device" ? "device" : "CPU";
      throw new InputError(
        `${file}:${i + 1}:${raw.indexOf(n) + 1}: ${kind} ${n}: the ${field} number is out of range (at most ${TR_SHIFT - 1})`,
      );
    }
    schedule.push(tr);
    at.push(i + 1);
  });
  for (const key of ["scenario", "stamp", "property"]) {
    if (meta[key] === undefined)
      throw new InputError(`${file}: not an asidlab schedule: no '# ${key}:' line`);
  }
  const words = (v: string | undefined) => (v === undefined || v.trim() === "" ? [] : v.trim().split(/\s+/));
  return {
    scenarioFile: meta.scenario,
    kernel: words(meta.kernel),
    policy: words(meta.policy),
    stamp: meta.stamp,
    property: meta.property,
    message: meta.message ?? "",
    schedule,
    lines: at,
  };
}
