// Kernel code paths as sequences of atomic steps. A path is named after the
// kernel function it mirrors; each step is one indivisible action on shared
// state. The engine fetches (path, pc) from the top frame of the CPU's
// current stack, advances pc, then runs the step; a step may instead jump
// within its path, call another path (push a frame) or return (pop).
// Running off the end of a path returns from it.

import type { CostKind } from "../engine/costs.js";
import type { Kernel } from "./kernel.js";

export type StepFn = (k: Kernel, cpu: number, fr: number) => void;

export interface Step {
  readonly name: string;
  readonly fn: StepFn;
  readonly cost: CostKind;
}

export interface KPath {
  readonly id: number;
  readonly name: string;
  readonly steps: readonly Step[];
  /** Step index by name, for jumps: `p.pc.schedule_again`. */
  readonly pc: Readonly<Record<string, number>>;
}

const registry: KPath[] = [];

export type StepDef = readonly [name: string, fn: StepFn, cost?: CostKind];

export function defPath(name: string, defs: readonly StepDef[]): KPath {
  if (registry.some((p) => p.name === name)) throw new Error(`kernel path ${name} defined twice`);
  if (defs.length === 0) throw new Error(`kernel path ${name} has no steps`);
  const steps = defs.map(([n, fn, cost]) => ({ name: n, fn, cost: cost ?? "step" }));
  const pc: Record<string, number> = {};
  steps.forEach((s, i) => {
    if (s.name in pc) throw new Error(`kernel path ${name}: step ${s.name} twice`);
    pc[s.name] = i;
  });
  const path: KPath = { id: registry.length, name, steps, pc };
  registry.push(path);
  return path;
}

export function pathById(id: number): KPath {
  const p = registry[id];
  if (p === undefined) throw new RangeError(`no kernel path ${id}`);
  return p;
}

export function allPaths(): readonly KPath[] {
  return registry;
}
