// The kernel's counts beside the model's, reason by reason (docs/vs-kernel.md).
//
// The kernel side is the guest's trace (tlb:tlb_flush, sched:sched_switch,
// x86_fpu:*), filtered by the kernel to the workload's PIDs (set_event_pid
// with event-fork: every task the scenario's processes create). The model
// side is a run of the same scenario with the guest's machine settings,
// its flushes attributed to a reason by where they happen in the model's own
// trace (the kernel path on the CPU's stack), not by its totals: without PCID
// the model's tlb_flushes_full counts every CR3 write, PTI's at entry and exit
// included, which the tracepoint does not report.

import { runScenario } from "../run/session.js";
import type { CompiledScenario } from "../scenario/compile.js";

/** tlb_flush's reasons (include/linux/mm_types.h, enum tlb_flush_reason), as the tracepoint prints them. */
export const TLB_REASONS: Readonly<Record<string, string>> = {
  "flush on task switch": "task_switch",
  "remote shootdown": "remote_shootdown",
  "local shootdown": "local_shootdown",
  "local mm shootdown": "local_mm_shootdown",
  "remote ipi send": "remote_ipi_send",
};

export type Counts = Record<string, number>;

/** Events the trace buffer dropped, from the trace file's header (0 when it says nothing). */
export function traceLost(lines: readonly string[]): number {
  for (const l of lines) {
    const m = /entries-in-buffer\/entries-written: (\d+)\/(\d+)/.exec(l);
    if (m !== null) return Math.max(0, Number(m[2]) - Number(m[1]));
  }
  return 0;
}

function bump(c: Counts, key: string, n = 1): void {
  c[key] = (c[key] ?? 0) + n;
}

/**
 * Counts of the guest's trace lines: `sched_switch`, `tlb_flush.REASON.full`
 * (pages -1: TLB_FLUSH_ALL), `.range` (1 or more pages), `.none` (0: a CR3
 * write that keeps the ASID's entries), `tlb_flush.remote_ipi_send`, and
 * `x86_fpu.EVENT`. Unknown reasons are counted under their own text.
 */
export function kernelCounts(lines: readonly string[]): Counts {
  const c: Counts = {};
  for (const line of lines) {
    if (line.startsWith("#")) continue;
    const m = /\s(\w+): (.*)$/.exec(line);
    if (m === null) continue;
    const [, event, rest] = m;
    if (event === "sched_switch") bump(c, "sched_switch");
    else if (event === "tlb_flush") {
      const f = /pages:(-?\d+) reason:(.*?) \(\d+\)/.exec(rest);
      if (f === null) continue;
      const reason = TLB_REASONS[f[2]] ?? f[2].replace(/\W+/g, "_");
      if (reason === "remote_ipi_send") bump(c, "tlb_flush.remote_ipi_send");
      else {
        const pages = Number(f[1]);
        bump(c, `tlb_flush.${reason}.${pages < 0 ? "full" : pages === 0 ? "none" : "range"}`);
      }
    } else if (event.startsWith("x86_fpu_")) bump(c, `x86_fpu.${event.slice("x86_fpu_".length)}`);
  }
  return c;
}

const isIdle = (name: string | number | undefined) => typeof name !== "string" || name.startsWith("swapper/");

/**
 * The model's counts under the kernel's names: a run of the scenario with
 * its trace's instants observed (the trace itself is thrown away). A full
 * flush (the "PCID flush" instant, not PTI's user one) inside
 * switch_mm_irqs_off is a task-switch flush, inside an interrupt (the
 * shootdown IPI's flush_tlb_func) a remote shootdown, inside
 * flush_tlb_mm_range a local mm shootdown: the slices open on the CPU's
 * track when it happens.
 */
export function modelCounts(cs: CompiledScenario): Counts {
  const c: Counts = {
    sched_switch: 0,
    "tlb_flush.range": 0,
    ipis: 0,
    forks: 0,
    "tlb_flush.task_switch.full": 0,
    "tlb_flush.remote_shootdown.full": 0,
    "tlb_flush.local_mm_shootdown.full": 0,
    "tlb_flush.other.full": 0,
    switch_fpu: 0,
  };
  const r = runScenario(cs, {
    trace: {
      write: () => {},
      onInstant: (_cpu, name, args, open) => {
        if (name === "sched_switch") {
          // The kernel's x86_fpu_regs_deactivated is seen (set_event_pid) when a user task's registers are
          // saved for a workload task: a switch between two tasks of the scenario.
          if (!isIdle(args.prev) && !isIdle(args.next)) bump(c, "switch_fpu");
        } else if (name === "PCID flush") {
          // At exit the mm's last flush (exit_mmap) finds its CPU lazy: the kernel's flush_tlb_func
          // then leaves the mm (switch_mm_irqs_off to init_mm), which the tracepoint calls a task switch.
          if (open.includes("switch_mm_irqs_off") || open.includes("mmput"))
            bump(c, "tlb_flush.task_switch.full");
          else if (open.includes("common_interrupt")) bump(c, "tlb_flush.remote_shootdown.full");
          else if (open.includes("flush_tlb_mm_range")) bump(c, "tlb_flush.local_mm_shootdown.full");
          else bump(c, "tlb_flush.other.full");
        }
      },
    },
  });
  c.sched_switch = r.metrics.context_switches;
  c["tlb_flush.range"] = r.metrics.tlb_flushes_range;
  c.ipis = r.metrics.ipis;
  c.forks = r.metrics.forks;
  return c;
}

export interface Row {
  metric: string;
  /** what the kernel's side counts */
  kernel_source: string;
  /** what the model's side counts */
  model_source: string;
  kernel: number;
  model: number | null;
  /** kernel / model (null when the model has no counterpart or counts 0 where the kernel does not) */
  ratio: number | null;
  /** the model claims to reproduce this count exactly */
  exact: boolean;
}

/** What in a scenario decides whether a count can be reproduced exactly (docs/vs-kernel.md). */
export interface Features {
  cpus: number;
  /** fork, clone_vm or exec anywhere: copy-on-write breaks flush one page each, which the model does not do */
  copies: boolean;
  /** exec anywhere: exec moves the new stack (shift_arg_pages), a flush the model does not do */
  exec: boolean;
  /** a process starts with threads > 1: the guest clones them after the start, the model has them at boot */
  initialThreads: boolean;
}

interface Mapping {
  metric: string;
  kernel: (k: Counts) => number;
  kernelSource: string;
  model: ((m: Counts) => number) | null;
  modelSource: string;
  /** whether the model claims this count exactly for a scenario with these features */
  exact: (f: Features) => boolean;
}

const never = () => false;

const g = (c: Counts, key: string) => c[key] ?? 0;

/** Every row: kernel event(s), model counter, and whether the model claims the count exactly (docs/vs-kernel.md says why). */
export const MAPPINGS: readonly Mapping[] = [
  {
    metric: "context_switches",
    kernel: (k) => g(k, "sched_switch"),
    kernelSource: "sched:sched_switch with a workload task as prev or next",
    model: (m) => g(m, "sched_switch"),
    modelSource: "context_switches",
    exact: never,
  },
  {
    metric: "flush.task_switch.full",
    kernel: (k) => g(k, "tlb_flush.task_switch.full"),
    kernelSource: "tlb_flush reason 'flush on task switch', pages -1",
    model: (m) => g(m, "tlb_flush.task_switch.full"),
    modelSource: "full flushes inside switch_mm_irqs_off",
    exact: never,
  },
  {
    metric: "flush.local_mm_shootdown.full",
    kernel: (k) => g(k, "tlb_flush.local_mm_shootdown.full"),
    kernelSource: "tlb_flush reason 'local mm shootdown', pages -1",
    model: (m) => g(m, "tlb_flush.local_mm_shootdown.full"),
    modelSource: "full flushes inside flush_tlb_mm_range",
    exact: (f) => !f.exec,
  },
  {
    metric: "flush.remote_shootdown.full",
    kernel: (k) => g(k, "tlb_flush.remote_shootdown.full"),
    kernelSource: "tlb_flush reason 'remote shootdown', pages -1",
    model: (m) => g(m, "tlb_flush.remote_shootdown.full"),
    modelSource: "full flushes inside the shootdown IPI (common_interrupt)",
    exact: never,
  },
  {
    metric: "flush.range",
    kernel: (k) => g(k, "tlb_flush.local_mm_shootdown.range") + g(k, "tlb_flush.remote_shootdown.range"),
    kernelSource: "tlb_flush reasons 'local mm shootdown' and 'remote shootdown', pages >= 1",
    model: (m) => g(m, "tlb_flush.range"),
    modelSource: "tlb_flushes_range",
    // On 2+ CPUs whether the other CPU runs the mm at the moment of a flush is a matter of timing.
    exact: (f) => f.cpus === 1 && !f.copies,
  },
  {
    metric: "flush.local_shootdown",
    kernel: (k) => g(k, "tlb_flush.local_shootdown.full") + g(k, "tlb_flush.local_shootdown.range"),
    kernelSource: "tlb_flush reason 'local shootdown' (flush_tlb_kernel_range and other kernel-side callers)",
    model: null,
    modelSource: "not modelled",
    exact: never,
  },
  {
    metric: "shootdown_ipis",
    kernel: (k) => g(k, "tlb_flush.remote_ipi_send"),
    kernelSource: "tlb_flush reason 'remote ipi send' (one per flush_tlb_multi call)",
    model: (m) => g(m, "ipis"),
    modelSource: "ipis (one per target CPU)",
    exact: never,
  },
  {
    metric: "fpu.regs_deactivated",
    kernel: (k) => g(k, "x86_fpu.regs_deactivated"),
    kernelSource:
      "x86_fpu:x86_fpu_regs_deactivated (switch_fpu_prepare: the outgoing task's registers saved)",
    model: (m) => g(m, "switch_fpu"),
    modelSource:
      "context switches from a task to a task (neither idle): switch_fpu saves the outgoing registers",
    exact: never,
  },
  {
    metric: "fpu.copy_dst",
    kernel: (k) => g(k, "x86_fpu.copy_dst"),
    kernelSource:
      "x86_fpu:x86_fpu_copy_dst (fpu_clone: the child's FPU state, at every fork and clone of a user task)",
    model: (m) => g(m, "forks"),
    modelSource: "forks (every fork and clone runs fpu_clone)",
    exact: (f) => !f.initialThreads,
  },
];

export function compareCounts(kernel: Counts, model: Counts, features: Features): Row[] {
  const rows: Row[] = MAPPINGS.map((mp) => {
    const kv = mp.kernel(kernel);
    const mv = mp.model === null ? null : mp.model(model);
    return {
      metric: mp.metric,
      kernel_source: mp.kernelSource,
      model_source: mp.modelSource,
      kernel: kv,
      model: mv,
      ratio: mv === null || mv === 0 ? (mv === 0 && kv === 0 ? 1 : null) : round3(kv / mv),
      exact: mp.exact(features),
    };
  });
  // The other x86_fpu events: the kernel's side only (the model counts bytes, not these events).
  for (const key of Object.keys(kernel).sort()) {
    if (!key.startsWith("x86_fpu.") || key === "x86_fpu.regs_deactivated" || key === "x86_fpu.copy_dst")
      continue;
    rows.push({
      metric: key.replace("x86_fpu.", "fpu."),
      kernel_source: `x86_fpu:x86_fpu_${key.slice("x86_fpu.".length)}`,
      model_source: "no counterpart",
      kernel: kernel[key],
      model: null,
      ratio: null,
      exact: false,
    });
  }
  return rows;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export interface VsKernelResult {
  scenario: string;
  kernel: { version: string; accel: string; cmdline: string; pcid: boolean };
  /** ops left out with --skip-unsupported */
  skipped: { at: string; op: string }[];
  /** tasks of the workload that died or failed an op in the guest */
  guest_failures: number;
  /** events the guest's trace buffer lost (its header's entries-written minus entries-in-buffer) */
  trace_lost: number;
  rows: Row[];
}

export function vsKernelTable(r: VsKernelResult): string {
  const head = [
    `scenario ${r.scenario}: kernel ${r.kernel.version} (${r.kernel.accel}, ${r.kernel.cmdline}), model with pcid=${r.kernel.pcid}`,
  ];
  for (const s of r.skipped) head.push(`skipped: ${s.op} at ${s.at}`);
  if (r.guest_failures > 0) head.push(`warning: ${r.guest_failures} workload task(s) failed in the guest`);
  if (r.trace_lost > 0)
    head.push(`warning: the guest's trace buffer lost ${r.trace_lost} events: its counts are low`);
  const cells = [
    ["metric", "kernel", "model", "ratio", "exact?"],
    ...r.rows.map((x) => [
      x.metric,
      String(x.kernel),
      x.model === null ? "-" : String(x.model),
      x.ratio === null ? "-" : String(x.ratio),
      x.exact ? (x.model === x.kernel ? "yes: equal" : "yes: DIFFERS") : "no",
    ]),
  ];
  const w = cells[0].map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  const lines = cells.map((c) => c.map((v, i) => (i === 0 ? v.padEnd(w[i]) : v.padStart(w[i]))).join("  "));
  return `${[...head, ...lines].join("\n")}\n`;
}
