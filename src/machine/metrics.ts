// Counters the model increments as it runs. The names are the `--json`
// contract (README: `run --json`) where one applies; the model issues fill in the ones
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
  "nmis",
  "invlpgb",
  "global_asids",
  "secondary_tlb_flushes",
] as const;

export type MetricName = (typeof CONTRACT_METRICS)[number] | (typeof CORE_METRICS)[number];

export type Metrics = Record<MetricName, number>;

export function newMetrics(): Metrics {
  const m = {} as Metrics;
  for (const k of CONTRACT_METRICS) m[k] = 0;
  for (const k of CORE_METRICS) m[k] = 0;
  return m;
}

/** The metrics `metrics.per_cpu[i]` carries for each CPU (the TLB model's names). */
export const PER_CPU_METRICS = [
  "tlb_flushes_full",
  "tlb_flushes_range",
  "user_asid_flushes",
  "asid_switches",
  "cr3_writes",
  "ipis",
] as const;
export type PerCpuMetricName = (typeof PER_CPU_METRICS)[number];
export const PC_TLB_FLUSHES_FULL = 0;
export const PC_TLB_FLUSHES_RANGE = 1;
export const PC_USER_ASID_FLUSHES = 2;
export const PC_ASID_SWITCHES = 3;
export const PC_CR3_WRITES = 4;
export const PC_IPIS = 5;

/** Per-CPU counters as objects, one per CPU, from the kernel's flat array. */
export function perCpuMetrics(flat: Float64Array, cpus: number): Record<PerCpuMetricName, number>[] {
  const out: Record<PerCpuMetricName, number>[] = [];
  for (let c = 0; c < cpus; c++) {
    const o = {} as Record<PerCpuMetricName, number>;
    PER_CPU_METRICS.forEach((name, j) => {
      o[name] = flat[c * PER_CPU_METRICS.length + j];
    });
    out.push(o);
  }
  return out;
}
