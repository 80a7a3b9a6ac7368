// Counters the model increments as it runs. The names are the `--json`
// contract of DESIGN.md where one applies; the model issues fill in the ones
// whose machinery has not landed yet (they stay 0 until then).

export const CONTRACT_METRICS = [
  "pasid_allocs",
  "pasid_frees",
  "pasid_peak",
  "refcount_ops",
  "gp_faults",
  "pasid_msr_writes",
  "ipis",
  "task_works",
  "context_switches",
  "xsaves_bytes",
  "xrstors_bytes",
  "bind_failures",
  "sigsegv",
  "enqcmd_submitted",
  "enqcmd_retries",
  "descriptors_completed",
  "dma_writes",
  "drains",
  "tlb_flushes_full",
  "tlb_flushes_range",
  "user_asid_flushes",
  "asid_switches",
  "cr3_writes",
  "cycles_total",
  "sim_time_ns",
] as const;

/** Counters of the foundation's own machinery, beyond the contract names. */
export const CORE_METRICS = [
  "steps",
  "syscalls",
  "interrupts",
  "ticks",
  "wakeups",
  "resched_ipis",
  "preemptions",
  "forks",
  "fork_failures",
  "execs",
  "exits",
  "mm_allocs",
  "mm_frees",
  "user_ops",
  "idle_cycles",
  "dma_faults",
  "ebadf",
  "xfd_faults",
  "sigill",
  "kernel_fpu",
  "xstate_helper_bytes",
] as const;

export type MetricName = (typeof CONTRACT_METRICS)[number] | (typeof CORE_METRICS)[number];

export type Metrics = Record<MetricName, number>;

export function newMetrics(): Metrics {
  const m = {} as Metrics;
  for (const k of CONTRACT_METRICS) m[k] = 0;
  for (const k of CORE_METRICS) m[k] = 0;
  return m;
}
