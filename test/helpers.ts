// Shared helpers for the foundation's tests: build a scenario from YAML text,
// boot it and drive the engine step by step, name the step a CPU is about to
// take, record trace callbacks, and run the CLI.

import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Engine, TR_CPU, trArg, trKind } from "../src/engine/engine.js";
import { CORE_INVARIANTS } from "../src/engine/invariants.js";
import { RandomScheduler } from "../src/engine/random.js";
import { SimScheduler } from "../src/engine/sim.js";
import { boot } from "../src/kernel/boot.js";
import type { Kernel } from "../src/kernel/kernel.js";
import { pathById } from "../src/kernel/path.js";
import type { TraceSink } from "../src/machine/machine.js";
import { FR_PATH, FR_PC } from "../src/machine/state.js";
import type { SchedulerName } from "../src/run/session.js";
import { type CompiledScenario, compileScenario, type Overrides } from "../src/scenario/compile.js";
import { loadScenarioFile, loadScenarioString } from "../src/scenario/load.js";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** A compiled scenario from YAML text. */
export function scenario(yaml: string, ov: Overrides = {}): CompiledScenario {
  return compileScenario(loadScenarioString(yaml, "t.yaml"), ov);
}

/** A compiled built-in scenario (scenarios/<name>.yaml). */
export function builtin(name: string, ov: Overrides = {}): CompiledScenario {
  return compileScenario(loadScenarioFile(join(REPO_ROOT, "scenarios", `${name}.yaml`)), ov);
}

export interface Booted {
  k: Kernel;
  e: Engine;
}

/** Boot a compiled scenario under a scheduler (default: the simulation, seeded from the scenario). */
export function bootEngine(cs: CompiledScenario, sched: SchedulerName = "sim", seed = cs.seed): Booted {
  const k = boot(cs.boot);
  const s = sched === "random" ? new RandomScheduler(seed) : new SimScheduler(seed);
  return { k, e: new Engine(k, CORE_INVARIANTS, s) };
}

/** What one transition was, as seen just before it ran. */
export interface StepInfo {
  /** Index of the transition in the run (0-based). */
  i: number;
  tr: number;
  /** The CPU for a CPU step, else -1. */
  cpu: number;
  /** The task current on that CPU before the step (-1 for events). */
  task: number;
  /** `path.step`, "irq" for interrupt entry, "user" for a user op, "tick"/"timer" for events. */
  name: string;
}

/**
 * The step `cpu` takes next, named `path.step`, without changing anything:
 * the same fetch as the CPU's (interrupt first when deliverable, then the top
 * frame with steps left, frames that ran off their end being returned from).
 */
export function peekStep(k: Kernel, cpu: number): string {
  const C = k.C;
  if (k.get(C.pending, cpu) !== 0 && k.get(C.irqs_off, cpu) === 0 && k.get(C.irq_depth, cpu) === 0) {
    return "irq";
  }
  const frames: number[] = [];
  for (let d = k.get(C.irq_depth, cpu) - 1; d >= 0; d--) frames.push(k.irqFrameAddr(cpu, d));
  const t = k.curr(cpu);
  for (let d = k.get(k.T.depth, t) - 1; d >= 0; d--) frames.push(k.taskFrameAddr(t, d));
  for (const fr of frames) {
    const p = pathById(k.w[fr + FR_PATH]);
    const pc = k.w[fr + FR_PC];
    if (pc < p.steps.length) return `${p.name}.${p.steps[pc].name}`;
  }
  return "user";
}

/** Names of the paths on a task's kernel stack, bottom first. */
export function taskStack(k: Kernel, t: number): string[] {
  const names: string[] = [];
  for (let d = 0; d < k.get(k.T.depth, t); d++) names.push(pathById(k.w[k.taskFrameAddr(t, d)]).name);
  return names;
}

/**
 * Drive a run transition by transition from its start: `before` sees each
 * transition before it runs, `after` right after. Stops after
 * `maxTransitions` (without fetching another one, so the caller may go on
 * with `e.sched.next`), or at quiescence, where the end-of-run invariants are
 * checked. Returns the number of transitions and whether the run is quiescent.
 */
export function drive(
  e: Engine,
  hooks: { before?: (s: StepInfo) => void; after?: (s: StepInfo) => void },
  maxTransitions = 2_000_000,
): { transitions: number; quiescent: boolean } {
  const k = e.k;
  e.sched.start(e);
  let i = 0;
  for (; i < maxTransitions; i++) {
    const tr = e.sched.next(e);
    if (tr < 0) {
      e.checkEnd();
      return { transitions: i, quiescent: true };
    }
    const kind = trKind(tr);
    const cpu = kind === TR_CPU ? trArg(tr) : -1;
    const info: StepInfo = {
      i,
      tr,
      cpu,
      task: cpu >= 0 ? k.curr(cpu) : -1,
      name: cpu >= 0 ? peekStep(k, cpu) : kind === 1 ? "tick" : "timer",
    };
    hooks.before?.(info);
    e.exec(tr);
    hooks.after?.(info);
  }
  return { transitions: i, quiescent: false };
}

/** A TraceSink that forwards to optional callbacks (and records path entries if asked). */
export class Recorder implements TraceSink {
  readonly entered: { cpu: number; task: number; path: string }[] = [];
  constructor(
    private readonly cb: Partial<TraceSink> = {},
    private readonly keepEntries = false,
  ) {}
  pathEnter(cpu: number, task: number, path: string): void {
    if (this.keepEntries) this.entered.push({ cpu, task, path });
    this.cb.pathEnter?.(cpu, task, path);
  }
  pathExit(cpu: number, task: number): void {
    this.cb.pathExit?.(cpu, task);
  }
  contextSwitch(cpu: number, prev: number, next: number, nextStack: readonly string[]): void {
    this.cb.contextSwitch?.(cpu, prev, next, nextStack);
  }
  instant(cpu: number, name: string, args: Record<string, number | string>): void {
    this.cb.instant?.(cpu, name, args);
  }
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `asidlab ...args` from the repository root, through tsx. */
export function cli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, ASIDLAB_DEBUG: "", NO_COLOR: "1" },
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
