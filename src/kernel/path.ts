// Kernel code paths as sequences of atomic steps. A path is named after the
// kernel function it mirrors; each step is one indivisible action on shared
// state. The engine fetches (path, pc) from the top frame of the CPU's
// current stack, advances pc, then runs the step; a step may instead jump
// within its path, call another path (push a frame) or return (pop).
// Running off the end of a path returns from it.

import type { CostKind } from "../machine/costs.js";
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

/**
 * Every path's id, fixed here: the id is part of the machine state (a
 * frame's first word), so it must not depend on the order in which modules
 * happen to load (which differs between the CLI, the workers and the tests).
 * A new path is added at the end; reordering changes every state fingerprint
 * and makes older schedule files stale.
 */
export const PATH_IDS: readonly string[] = [
  "mmput",
  "switch_mm_irqs_off",
  "flush_tlb_mm_range",
  "do_vmi_munmap",
  "set_pte_vaddr",
  "schedule",
  "do_idle",
  "do_exit",
  "mm_pasid_task_put",
  "do_execve",
  "SWITCH_TO_USER_CR3",
  "exc_nmi",
  "do_sched_yield",
  "hrtimer_nanosleep",
  "switch_fpu",
  "switch_fpu_return",
  "pasid_task_work",
  "fpu_clone",
  "fpu_flush_thread",
  "exc_device_not_available",
  "kernel_fpu_begin",
  "xstate_write_syscall",
  "handle_signal",
  "rt_sigreturn",
  "exc_general_protection",
  "do_syscall_64",
  "exit_to_user_mode",
  "preempt_schedule_irq",
  "common_interrupt",
  "kernel_clone",
  "ret_from_fork",
  "idxd_cdev_open",
  "close_fd",
  "idxd_file_dev_release",
  "close_files",
];

const registry: KPath[] = [];
let complete = false;

export type StepDef = readonly [name: string, fn: StepFn, cost?: CostKind];

export function defPath(name: string, defs: readonly StepDef[]): KPath {
  if (registry.some((p) => p?.name === name)) throw new Error(`kernel path ${name} defined twice`);
  if (defs.length === 0) throw new Error(`kernel path ${name} has no steps`);
  const steps = defs.map(([n, fn, cost]) => ({ name: n, fn, cost: cost ?? "step" }));
  const pc: Record<string, number> = {};
  steps.forEach((s, i) => {
    if (s.name in pc) throw new Error(`kernel path ${name}: step ${s.name} twice`);
    pc[s.name] = i;
  });
  const id = PATH_IDS.indexOf(name);
  if (id < 0)
    throw new Error(`kernel path ${name} has no id: add it at the end of PATH_IDS in kernel/path.ts`);
  const path: KPath = { id, name, steps, pc };
  registry[id] = path;
  return path;
}

export function pathById(id: number): KPath {
  const p = registry[id];
  if (p === undefined) throw new RangeError(`no kernel path ${id}`);
  return p;
}

/** Every path by id; each one in PATH_IDS is defined once the kernel's modules have loaded. */
export function allPaths(): readonly KPath[] {
  if (!complete) {
    const missing = PATH_IDS.filter((_, i) => registry[i] === undefined);
    if (missing.length > 0) throw new Error(`kernel paths not loaded: ${missing.join(", ")}`);
    complete = true;
  }
  return registry;
}
