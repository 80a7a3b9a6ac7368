// Which words of the machine a CPU owns: the static half of `check --por`'s
// persistent sets (por.ts). A word is
//   - PRIVATE to CPU c when no transition but CPU c's own steps ever reads or
//     writes it (ticks, devices, timers, other CPUs' steps, and the step
//     invariants that run inside those steps, all included);
//   - OWNER_WRITES when only CPU c's steps write it, others may read it;
//   - WAKE when others touch it only to raise an interrupt on c or wake a
//     task (the tick, a timer, a device's drain waiter): c owns it in states
//     where nothing can do that any more without c stepping (`silent`).
// With several CPUs: CPU c's own per-CPU fields in the lists below, and the
// listed task_struct fields of the task current on c, unless some CPU's
// switch is still finishing with it as prev (finish_task_switch() reads
// prev's state, and a wakeup in that window writes it, queueing the task
// on that CPU: p->on_cpu).
// Both conditions are words only their CPU writes (curr, prev_task), so
// nothing but CPU c's steps can change what c owns. With one CPU, every
// word but the devices', the NMI fields and the WAKE ones is CPU 0's: only
// ticks, timers and devices step besides it.
//
// The lists were measured, not guessed: full searches counting, per field,
// which actors touched it (every scenario in scenarios/ at bounds 0 and 1,
// the check variants). `audit` checks them on every transition recorded in
// footprint mode, and the tests run the unreduced search over every built-in
// check scenario with it on: a word another actor touches while c owns it is
// reported as a model bug (or a field to move out of these lists).
// End invariants read what they like: they are checked in terminal states
// only, and persistent sets keep every terminal state.

import type { Kernel } from "../kernel/kernel.js";
import { HEADER_WORDS } from "../machine/memory.js";
import type { Field } from "../machine/state.js";

const PRIVATE = 1;
const OWNER_WRITES = 2;
const WAKE = 3;

/** Per-CPU fields no other actor touches (NMI fields are left out: no scenario measured them). */
const CPU_PRIVATE = [
  "preempt_count",
  "irqs_off",
  "in_user",
  "irq_depth",
  "irq_frames",
  "xregs",
  "xmodified",
  "xrstor_task",
  "fpregs_owner",
  "fpregs_locked",
  "loaded_mm_asid",
  "next_asid",
  "invalidate_other",
  "user_pcid_flush_mask",
  "ctx_id",
  "ctx_gen",
  "sw_gen",
  "cr3_mm",
  "cr3_pcid",
  "cr3_user",
  "cr3_noflush",
  "sb_loaded_mm",
  "fi_freed",
  "tlb_next",
  "tlb",
] as const;

/** Per-CPU fields others read but never write (the tick reads halted; flushes read loaded_mm, is_lazy, fi_*). */
const CPU_OWNER_WRITES = [
  "curr",
  "idle",
  "halted",
  "loaded_mm",
  "is_lazy",
  "fi_mm",
  "fi_pages",
  "fi_gen",
  "prev_mm",
  "prev_task", // try_to_wake_up() reads it (p->on_cpu)
] as const;

/** task_struct fields no other actor touches while the task runs (not state, tif, on_rq, rq_next, cpu: wakeups write or read them). */
const TASK_PRIVATE = [
  "flags",
  "pid",
  "mm",
  "active_mm",
  "files",
  "ticks",
  "prog",
  "upc",
  "urem",
  "lsp",
  "loops",
  "exit_code",
  "pasid_ref",
  "pasid_activated",
  "xfeatures",
  "xcomp_bv",
  "xs",
  "xs_newer",
  "sigframe",
  "fpu_perm",
  "fpu_gen",
  "fpu_last_cpu",
  "depth",
  "frames",
] as const;

const TASK_OWNER_WRITES = ["tgid"] as const;

/** With one CPU: what ticks, timers and devices read (besides their own words), and what they write when they wake or interrupt. */
const ONE_CPU_OWNER_WRITES = { cpu: ["curr", "idle", "halted", "prev_task"], task: ["cpu"] } as const;
const ONE_CPU_WAKE = {
  cpu: ["pending", "nr_running", "rq_head", "rq_tail"],
  task: ["state", "tif", "on_rq", "rq_next"],
  glob: ["nr_timers"],
} as const;
/** Never owned: NMI state (no scenario measured it) and the devices' (their completions read and write it). */
const CPU_SHARED = ["in_nmi", "nmi_cr3_mm", "nmi_cr3_pcid", "nmi_cr3_user", "nmi_from_user"] as const;

/**
 * CPU c has interrupts masked (irqs_off, or inside an interrupt) and no NMI
 * can come: it takes no interrupt at its next step whatever others raise,
 * and stays enabled.
 */
export function interruptsMasked(k: Kernel, c: number): boolean {
  const C = k.C;
  return (
    !k.model.nmi && k.get(C.halted, c) === 0 && (k.get(C.irqs_off, c) !== 0 || k.get(C.irq_depth, c) !== 0)
  );
}

export class Ownership {
  /** Per word: 0 (shared), PRIVATE or OWNER_WRITES. */
  private readonly cls: Uint8Array;
  /** Per word: the CPU whose struct it is in, or -1. */
  private readonly cpuOf: Int32Array;
  /** Per word: the task slot whose struct it is in, or -1. */
  private readonly taskOf: Int32Array;
  /** Per task slot: the CPU that owns its task words in the captured state, or -1. */
  private readonly owner: Int32Array;
  private readonly after: Int32Array;
  private readonly ncpu: number;

  constructor(private readonly k: Kernel) {
    const size = k.mem.size;
    this.cls = new Uint8Array(size);
    this.cpuOf = new Int32Array(size).fill(-1);
    this.taskOf = new Int32Array(size).fill(-1);
    this.ncpu = k.params.cpus;
    const ntask = k.L.task.count;
    this.owner = new Int32Array(ntask).fill(-1);
    this.after = new Int32Array(ntask);
    const mark = (f: Field, count: number, cls: number, of: Int32Array | null) => {
      for (let i = 0; i < count; i++) {
        for (let j = 0; j < f.len; j++) {
          const a = f.at + i * f.stride + j;
          this.cls[a] = cls;
          if (of !== null) of[a] = i;
        }
      }
    };
    if (this.ncpu === 1) {
      this.cls.fill(PRIVATE, HEADER_WORDS);
      this.cpuOf.fill(0, HEADER_WORDS);
      for (const n of ONE_CPU_OWNER_WRITES.cpu) mark(k.C[n], 1, OWNER_WRITES, null);
      for (const n of ONE_CPU_OWNER_WRITES.task) mark(k.T[n], ntask, OWNER_WRITES, null);
      for (const n of ONE_CPU_WAKE.cpu) mark(k.C[n], 1, WAKE, null);
      for (const n of ONE_CPU_WAKE.task) mark(k.T[n], ntask, WAKE, null);
      for (const n of ONE_CPU_WAKE.glob) mark(k.G[n], 1, WAKE, null);
      for (const n of CPU_SHARED) mark(k.C[n], 1, 0, null);
      const dev = k.L.dev;
      this.cls.fill(0, dev.base, dev.base + dev.stride * dev.count);
      return;
    }
    for (const n of CPU_PRIVATE) mark(k.C[n], this.ncpu, PRIVATE, this.cpuOf);
    for (const n of CPU_OWNER_WRITES) mark(k.C[n], this.ncpu, OWNER_WRITES, this.cpuOf);
    for (const n of TASK_PRIVATE) mark(k.T[n], ntask, PRIVATE, this.taskOf);
    for (const n of TASK_OWNER_WRITES) mark(k.T[n], ntask, OWNER_WRITES, this.taskOf);
  }

  /**
   * Can nothing but CPU c's own steps raise an interrupt on c or wake a task,
   * from this state on, until c steps? With one CPU: no tick can come (the
   * preemption bound is used up, or nothing waits to run: only a wakeup
   * could change that), no timer is armed and no task waits for a device's
   * drain (a device's completion touches its own words only, then). Never
   * with several CPUs (IPIs).
   */
  silent(c: number, ticksLeft: boolean): boolean {
    const k = this.k;
    if (this.ncpu !== 1) return false;
    if (ticksLeft && k.get(k.C.nr_running, c) > 0) return false;
    if (k.get(k.G.nr_timers, 0) !== 0) return false;
    const D = k.D.drain;
    for (let d = 0; d < k.model.devices.length; d++) {
      for (let i = 0; i < D.len; i += 2) if (k.w[D.at + d * D.stride + i] !== 0) return false;
    }
    return true;
  }

  /** Take the task owners of the current state (before a transition runs). */
  capture(): void {
    this.fill(this.owner);
  }

  private fill(owner: Int32Array): void {
    const k = this.k;
    owner.fill(-1);
    for (let c = 0; c < this.ncpu; c++) owner[k.get(k.C.curr, c)] = c;
    for (let c = 0; c < this.ncpu; c++) {
      const prev = k.get(k.C.prev_task, c);
      if (prev !== 0) owner[prev] = -1;
    }
  }

  /** The CPU that owns word `a` in the captured state, or -1. */
  ownerOf(a: number): number {
    const c = this.cpuOf[a];
    if (c >= 0) return c;
    const t = this.taskOf[a];
    return t >= 0 ? this.owner[t] : -1;
  }

  /**
   * Does a step of CPU c, with this footprint (recorded from the captured
   * state: `nr` reads at fp[r..], `nw` writes at fp[w..]), stay within c's
   * words: every write to a PRIVATE word of c (or a WAKE one when `silent`),
   * every read from an owned word, but for `waived` (c's pending word when c
   * has interrupts masked, see por.ts)?
   */
  confined(
    c: number,
    fp: Int32Array,
    r: number,
    nr: number,
    w: number,
    nw: number,
    silent: boolean,
    waived: number,
  ): boolean {
    const cls = this.cls;
    for (let i = 0; i < nw; i++) {
      const a = fp[w + i];
      if (!(cls[a] === PRIVATE || (silent && cls[a] === WAKE)) || this.ownerOf(a) !== c) return false;
    }
    for (let i = 0; i < nr; i++) {
      const a = fp[r + i];
      if (a === waived) continue;
      if (cls[a] === 0 || (!silent && cls[a] === WAKE) || this.ownerOf(a) !== c) return false;
    }
    return true;
  }

  /**
   * The ownership assertion, after a transition whose footprint was recorded
   * from the captured state: `actor` is the CPU whose step it was, -1 for a
   * tick, timer or device; `silent`: which CPUs were silent before it (bit
   * c). A message when it touched another CPU's words (read a PRIVATE one,
   * wrote any; WAKE ones count when that CPU was silent), or changed which
   * CPU owns a task. The memory holds the state after the transition.
   */
  audit(
    actor: number,
    reads: Int32Array,
    nr: number,
    writes: Int32Array,
    nw: number,
    silent: number,
    what: string,
  ): string | null {
    const cls = this.cls;
    for (let i = 0; i < nw; i++) {
      const a = writes[i];
      const c = cls[a] === 0 ? -1 : this.ownerOf(a);
      if (c < 0 || c === actor || (cls[a] === WAKE && (silent & (1 << c)) === 0)) continue;
      return `${what} wrote ${this.k.L.describe(a)}, owned by cpu ${c}`;
    }
    for (let i = 0; i < nr; i++) {
      const a = reads[i];
      const c = cls[a] === PRIVATE || cls[a] === WAKE ? this.ownerOf(a) : -1;
      if (c < 0 || c === actor || (cls[a] === WAKE && (silent & (1 << c)) === 0)) continue;
      return `${what} read ${this.k.L.describe(a)}, private to cpu ${c}`;
    }
    this.fill(this.after);
    for (let t = 0; t < this.owner.length; t++) {
      const c = this.owner[t];
      if (c >= 0 && c !== actor && this.after[t] !== c)
        return `${what} took task ${t} from cpu ${c}, which owned it`;
    }
    return null;
  }
}
