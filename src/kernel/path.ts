// Kernel code paths as sequences of atomic steps. A path is named after the
// kernel function it mirrors; each step is one indivisible action on shared
// state. The engine fetches (path, pc) from the top frame of the CPU's
// current stack, advances pc, then runs the step; a step may instead jump
// within its path, call another path (push a frame) or return (pop).
// Running off the end of a path returns from it.

import type { CostKind } from "../machine/costs.js";
import { FR_A0 } from "../machine/state.js";
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
  /** The frame locals that point at a slot (a task, an mm, ...): what check's symmetry reduction renames. */
  readonly refs: readonly LocalRef[];
}

/** What a frame local points at: a task slot, an mm slot, a files_struct, a file, a bond. */
export type RefKind = "task" | "mm" | "files" | "file" | "bond";

/** A frame local holding a pointer: bits [shift, shift + bits) of the frame's word FR_A0 + word. */
export interface LocalRef {
  readonly off: number;
  readonly shift: number;
  readonly bits: number;
  readonly kind: RefKind;
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

/** The pointer locals of each path, by name, from frameLocals (declared before their path). */
const refsOf = new Map<string, LocalRef[]>();

export function defPath(name: string, defs: readonly StepDef[]): KPath {
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
  if (registry[id] !== undefined) throw new Error(`kernel path ${name} defined twice`);
  const path: KPath = { id, name, steps, pc, refs: refsOf.get(name) ?? [] };
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

// --- a frame's locals -----------------------------------------------------------

/**
 * Where a frame local lives: [word (0: a0, 1: a1), shift, bits]. Without
 * shift and bits it is the whole word, signed; otherwise an unsigned bit
 * field. Locals may overlap (one word read under two names, e.g. a
 * clone's program that becomes the child).
 */
export type LocalSpec = readonly [word: 0 | 1, shift?: number, bits?: number, kind?: RefKind];

/** A named local of a path's frame. None of the methods allocates. */
export interface Local {
  /** The frame's value of this local. */
  get(k: Kernel, fr: number): number;
  /** Store `v` in this local, leaving the word's other locals as they are. */
  set(k: Kernel, fr: number, v: number): void;
  /** `v` placed in this local's bits: OR such values to build the a0 or a1 of a call. */
  put(v: number): number;
  /** This local's value in a packed word (as `put` built it). */
  of(word: number): number;
  /** Where it is and what it points at, when it is a pointer (declared with a kind); else null. */
  readonly ref: LocalRef | null;
}

/** A whole word. */
class WordLocal implements Local {
  constructor(
    private readonly off: number,
    readonly ref: LocalRef | null,
  ) {}
  get(k: Kernel, fr: number): number {
    return k.w[fr + this.off];
  }
  set(k: Kernel, fr: number, v: number): void {
    k.mem.write(fr + this.off, v);
  }
  put(v: number): number {
    return v;
  }
  of(word: number): number {
    return word;
  }
}

/** Bits [shift, shift + bits) of a word. */
class BitsLocal implements Local {
  /** The bits in place. */
  private readonly mask: number;
  /** The bits shifted down. */
  private readonly low: number;
  constructor(
    private readonly off: number,
    private readonly shift: number,
    bits: number,
    readonly ref: LocalRef | null,
  ) {
    this.low = 0xffffffff >>> (32 - bits);
    this.mask = this.low << shift;
  }
  get(k: Kernel, fr: number): number {
    return (k.w[fr + this.off] >>> this.shift) & this.low;
  }
  set(k: Kernel, fr: number, v: number): void {
    const a = fr + this.off;
    k.mem.write(a, (k.w[a] & ~this.mask) | ((v << this.shift) & this.mask));
  }
  put(v: number): number {
    return (v << this.shift) & this.mask;
  }
  of(word: number): number {
    return (word >>> this.shift) & this.low;
  }
}

export type FrameLocals<S> = { readonly [K in keyof S]: Local };

/**
 * A path's frame locals, declared once next to the path:
 * `frameLocals({ dev: [0, 0, 8], priv: [0, 8, 1], fd: [0, 16, 16], file: [1] })`
 * gives `L.fd.get(k, fr)`, `L.fd.set(k, fr, v)`, and `L.dev.put(d) | L.priv.put(1)`
 * for a caller building a0. A local that points at a slot says at what
 * (`child: [1, 16, 16, "task"]`), and then `path` names the path whose
 * frame it is: check's symmetry reduction renames such locals. Two locals
 * that share bits must not hold a pointer in one and a plain value in the other.
 */
export function frameLocals<const S extends Record<string, LocalSpec>>(
  spec: S,
  path?: string,
): FrameLocals<S> {
  const out: Record<string, Local> = {};
  for (const [name, [word, shift = 0, bits = 32 - shift, kind]] of Object.entries(spec)) {
    if (word !== 0 && word !== 1) throw new Error(`frame local ${name}: word ${word}`);
    if (shift < 0 || bits < 1 || shift + bits > 32)
      throw new Error(`frame local ${name}: bits ${shift}+${bits}`);
    const off = FR_A0 + word;
    const ref = kind === undefined ? null : { off, shift, bits, kind };
    out[name] = shift === 0 && bits === 32 ? new WordLocal(off, ref) : new BitsLocal(off, shift, bits, ref);
    if (ref !== null) {
      if (path === undefined) throw new Error(`frame local ${name} points at a ${kind}: name its path`);
      if (registry[PATH_IDS.indexOf(path)] !== undefined)
        throw new Error(`frame locals of ${path}: declare them before the path`);
      const known = refsOf.get(path) ?? [];
      // Locals that share bits (a word reused for another pointer) are one pointer to rename, once.
      const same = known.find((r) => r.off === off && r.shift === shift && r.bits === bits);
      if (same !== undefined && same.kind !== kind)
        throw new Error(`frame locals of ${path}: ${name} shares bits with a pointer to a ${same.kind}`);
      const overlap = known.find(
        (r) => r !== same && r.off === off && r.shift < shift + bits && shift < r.shift + r.bits,
      );
      if (overlap !== undefined) throw new Error(`frame locals of ${path}: ${name} overlaps another pointer`);
      if (same === undefined) refsOf.set(path, [...known, ref]);
    }
  }
  return out as FrameLocals<S>;
}
