// The metric glossary: every counter `run --json` can emit, defined once
// (name, group, unit, kernel counterpart, one-line meaning). `asidlab metrics`
// prints it; run/compare tables, plots and the JSON Schema read it. A test
// checks that its names are exactly the names `run --json` emits.

import { CONTRACT_METRICS, CORE_METRICS, type MetricName, PER_CPU_METRICS } from "./metrics.js";

/** How metrics are grouped in tables: one group, one kernel subsystem. */
export const METRIC_GROUPS = [
  "pasid",
  "enqcmd/device",
  "xstate/fpu",
  "tlb/asid",
  "scheduling",
  "processes",
  "faults/signals",
  "time/cost",
] as const;
export type MetricGroup = (typeof METRIC_GROUPS)[number];

export interface MetricDef {
  name: MetricName;
  group: MetricGroup;
  /** What one unit of the value is: "events" for plain counts. */
  unit: "events" | "bytes" | "cycles" | "ns" | "PASIDs" | "steps" | "IPIs" | "tasks";
  /** The kernel function, instruction or structure the counter stands for. */
  kernel: string;
  meaning: string;
}

const D = (
  name: MetricName,
  group: MetricGroup,
  unit: MetricDef["unit"],
  kernel: string,
  meaning: string,
): MetricDef => ({ name, group, unit, kernel, meaning });

/** Every metric, in the order tables show them (grouped). */
export const GLOSSARY: readonly MetricDef[] = [
  D("pasid_allocs", "pasid", "PASIDs", "iommu_sva_alloc_pasid()", "PASIDs allocated to an mm (first bind)"),
  D("pasid_frees", "pasid", "PASIDs", "iommu_free_global_pasid()", "PASIDs returned to the global IDA"),
  D("pasid_peak", "pasid", "PASIDs", "iommu_global_pasid_ida", "most PASIDs live at one time"),
  D(
    "refcount_ops",
    "pasid",
    "events",
    "struct file f_count (dup_fd, fput)",
    "device-file reference gets and puts",
  ),
  D(
    "bind_failures",
    "pasid",
    "events",
    "open() of the device fails (iommu_sva_bind_device)",
    "device opens that failed to bind",
  ),
  D("pasid_msr_writes", "pasid", "events", "wrmsrl(MSR_IA32_PASID)", "writes of the IA32_PASID MSR"),
  D(
    "task_works",
    "pasid",
    "events",
    "task_work_run() (PASID resync)",
    "task_work runs that resynced the PASID MSR",
  ),
  D("drains", "pasid", "events", "idxd_cdev_release() drain", "device drains when a bound file is released"),
  D("enqcmd_submitted", "enqcmd/device", "events", "ENQCMD", "descriptors accepted by a shared work queue"),
  D(
    "enqcmd_retries",
    "enqcmd/device",
    "events",
    "ENQCMD ZF=1",
    "ENQCMD attempts refused (queue full), retried",
  ),
  D(
    "descriptors_completed",
    "enqcmd/device",
    "events",
    "idxd completion record",
    "descriptors the device completed",
  ),
  D(
    "dma_writes",
    "enqcmd/device",
    "events",
    "device DMA via PASID",
    "device writes through a PASID's page table",
  ),
  D(
    "dma_faults",
    "enqcmd/device",
    "events",
    "IOMMU fault (PRQ)",
    "device accesses that faulted in the IOMMU",
  ),
  D(
    "secondary_tlb_flushes",
    "enqcmd/device",
    "events",
    "intel_arch_invalidate_secondary_tlbs()",
    "IOTLB/device-TLB invalidations for bound devices",
  ),
  D(
    "xsaves_bytes",
    "xstate/fpu",
    "bytes",
    "XSAVES (os_xsave, copy_fpstate_to_sigframe)",
    "bytes of register state saved",
  ),
  D(
    "xrstors_bytes",
    "xstate/fpu",
    "bytes",
    "XRSTORS (os_xrstor, restore_fpregs_from_user)",
    "bytes of register state restored",
  ),
  D(
    "xstate_helper_bytes",
    "xstate/fpu",
    "bytes",
    "get_xsave_addr() / xstate copy helpers",
    "bytes copied by in-kernel xstate helpers",
  ),
  D("kernel_fpu", "xstate/fpu", "events", "kernel_fpu_begin()", "in-kernel FPU sections"),
  D(
    "xfd_faults",
    "xstate/fpu",
    "events",
    "#NM with XFD (handle_xfd_event)",
    "first uses of an XFD-armed feature (AMX)",
  ),
  D("tlb_flushes_full", "tlb/asid", "events", "flush_tlb_func() full / INVPCID", "whole-ASID TLB flushes"),
  D("tlb_flushes_range", "tlb/asid", "events", "flush_tlb_func() range / INVLPG", "ranged TLB flushes"),
  D(
    "user_asid_flushes",
    "tlb/asid",
    "events",
    "invalidate_user_asid() / INVPCID",
    "full flushes that also hit a PTI user ASID",
  ),
  D(
    "asid_switches",
    "tlb/asid",
    "events",
    "switch_mm_irqs_off() choose_new_asid()",
    "switches to another mm's ASID",
  ),
  D("cr3_writes", "tlb/asid", "events", "write_cr3() / load_new_mm_cr3()", "CR3 loads"),
  D("invlpgb", "tlb/asid", "events", "INVLPGB + TLBSYNC", "broadcast TLB invalidations (AMD)"),
  D("global_asids", "tlb/asid", "events", "use_global_asid()", "global ASIDs assigned to an mm"),
  D("ipis", "tlb/asid", "IPIs", "smp_call_function_many()", "IPIs sent (TLB shootdown, PASID MSR update)"),
  D("context_switches", "scheduling", "events", "context_switch()", "task switches on a CPU"),
  D("preemptions", "scheduling", "events", "preempt_schedule_irq()", "switches forced by a tick"),
  D("ticks", "scheduling", "events", "scheduler_tick()", "timer ticks"),
  D("wakeups", "scheduling", "events", "try_to_wake_up()", "tasks woken"),
  D("resched_ipis", "scheduling", "IPIs", "smp_send_reschedule()", "reschedule IPIs"),
  D("interrupts", "scheduling", "events", "common_interrupt()", "device and timer interrupts taken"),
  D("nmis", "scheduling", "events", "exc_nmi()", "NMIs taken"),
  D("syscalls", "processes", "events", "do_syscall_64()", "system calls made"),
  D("forks", "processes", "tasks", "kernel_clone()", "tasks created by the workload"),
  D("fork_failures", "processes", "events", "kernel_clone() error", "clones that failed"),
  D("execs", "processes", "events", "begin_new_exec()", "execve()s"),
  D("exits", "processes", "tasks", "do_exit()", "tasks that exited"),
  D("mm_allocs", "processes", "events", "mm_alloc()", "address spaces (mm_struct) created"),
  D("mm_frees", "processes", "events", "__mmdrop()", "address spaces freed"),
  D("user_ops", "processes", "events", "user mode", "user-program operations executed"),
  D(
    "gp_faults",
    "faults/signals",
    "events",
    "exc_general_protection()",
    "#GP faults (ENQCMD without a valid PASID)",
  ),
  D("sigsegv", "faults/signals", "events", "force_sig(SIGSEGV)", "SIGSEGVs delivered"),
  D("sigill", "faults/signals", "events", "force_sig(SIGILL)", "SIGILLs delivered"),
  D("ebadf", "faults/signals", "events", "-EBADF", "operations on a closed device file"),
  D(
    "cycles_total",
    "time/cost",
    "cycles",
    "CPU cycles (busy)",
    "cycles spent busy on every CPU, idle excluded",
  ),
  D("idle_cycles", "time/cost", "cycles", "do_idle()", "cycles CPUs spent idle"),
  D(
    "sim_time_ns",
    "time/cost",
    "ns",
    "wall time of the machine",
    "simulated time from boot to the last step",
  ),
  D("steps", "time/cost", "steps", "(the model)", "model steps taken (one kernel/user step each)"),
];

/** The per-CPU counters (`metrics.per_cpu[i]`), defined by the whole-machine entry of the same name. */
export const PER_CPU_GLOSSARY: readonly MetricDef[] = PER_CPU_METRICS.map((n) => {
  const d = GLOSSARY.find((g) => g.name === n);
  if (d === undefined) throw new Error(`glossary: per-CPU metric ${n} has no entry`);
  return { ...d, meaning: `${d.meaning}, on this CPU` };
});

const BY_NAME = new Map<string, MetricDef>(GLOSSARY.map((d) => [d.name, d]));

export function metricDef(name: string): MetricDef | undefined {
  return BY_NAME.get(name);
}

/** A metric's unit as a table or axis shows it: "" for plain counts. */
export function metricUnit(name: string): string {
  const u = BY_NAME.get(name)?.unit;
  return u === undefined || u === "events" ? "" : u;
}

/** `name (unit)`, or the name alone for plain counts. */
export function metricTitle(name: string): string {
  const u = metricUnit(name);
  return u === "" ? name : `${name} (${u})`;
}

/** Counts cannot go below 0 (every metric the model has is non-negative). */
export function isCount(name: string): boolean {
  return BY_NAME.has(name);
}

// Every metric once, and no entry without a metric.
{
  const all = new Set<string>([...CONTRACT_METRICS, ...CORE_METRICS]);
  if (BY_NAME.size !== GLOSSARY.length) throw new Error("glossary: a metric defined twice");
  for (const n of all) if (!BY_NAME.has(n)) throw new Error(`glossary: metric ${n} has no entry`);
  for (const n of BY_NAME.keys()) if (!all.has(n)) throw new Error(`glossary: ${n} is not a metric`);
}

/** `asidlab metrics`: the glossary as text, grouped. */
export function glossaryText(): string {
  const out: string[] = [
    "Every metric `run --json` emits (metrics.NAME; metrics.per_cpu[i] carries the starred ones per CPU).",
    "Unit: what one unit is (blank: a count of events). Kernel: the function, instruction or structure it counts.",
  ];
  const w = Math.max(...GLOSSARY.map((d) => d.name.length)) + 1;
  const pc = new Set<string>(PER_CPU_METRICS);
  for (const g of METRIC_GROUPS) {
    out.push("", `${g}:`);
    for (const d of GLOSSARY.filter((x) => x.group === g)) {
      const name = `${d.name}${pc.has(d.name) ? "*" : ""}`;
      out.push(`  ${name.padEnd(w)} ${metricUnit(d.name).padEnd(6)} ${d.meaning}  [${d.kernel}]`);
    }
  }
  return `${out.join("\n")}\n`;
}

/** `asidlab metrics --json`. */
export function glossaryJson(): string {
  return `${JSON.stringify(
    {
      format: "asidlab/metrics/v1",
      metrics: GLOSSARY,
      per_cpu: PER_CPU_GLOSSARY,
    },
    null,
    2,
  )}\n`;
}
