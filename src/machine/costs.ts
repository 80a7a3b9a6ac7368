// The cycle cost table: what one step of each kind costs the CPU that runs
// it. Figures are order-of-magnitude for a recent Intel server core; a
// scenario's `costs:` overrides any of them. Integers only: cycles and time
// must be bit-identical on every engine.

export const DEFAULT_COSTS = {
  step: 10, // a few loads and stores
  user_op: 5, // dispatching one user-program op
  atomic: 20, // a locked RMW on a refcount (refcount_ops)
  syscall_entry: 100,
  syscall_exit: 100,
  irq_entry: 300,
  irq_exit: 200,
  tick: 400, // scheduler_tick()
  schedule: 300, // __schedule(): pick_next_task and rq bookkeeping
  switch_to: 200, // register and stack switch
  cr3_write: 200, // MOV CR3 without a flush
  wakeup: 250, // try_to_wake_up()
  ipi_send: 1000, // APIC ICR write and its bookkeeping
  kmalloc: 100,
  kfree: 80,
  copy_process: 8000,
  dup_mm: 20000, // copying the parent's page tables
  exit_mmap: 20000, // tearing down an address space
  exec: 50000, // loading a new image
  idle_poll: 50,
  enqcmd: 300, // a non-posted 64-byte enqueue store to the portal
  wrmsr: 150, // WRMSR to IA32_PASID
  rdmsr: 100, // RDMSR of IA32_PASID (the update helper reading the live value)
  xsaves: 100, // XSAVES/XRSTORS: the instruction, before the bytes it moves
  xrstors: 100,
  xstate_line: 4, // per 64-byte line that XSAVES, XRSTORS or a copy moves
  fpstate_realloc: 3000, // xfd_enable_feature(): vzalloc of the bigger buffer and the copy
  kernel_fpu: 2000, // the kernel's own FPU work between kernel_fpu_begin() and _end()
  task_work: 150, // task_work_run() of one callback
  pasid_resync: 20, // the PASID compare in switch_to() (a static branch and a load)
  umwait_poll: 200, // a user-space poll of a completion record
  drain: 1000, // issuing DRAIN_PASID and waiting for the command
  iotlb_flush: 2000, // PASID cache + IOTLB + device TLB invalidation, with the wait
  tlb_flush: 300, // what a flushing CR3 write adds to one without (the refills come later)
  invlpg: 200, // one INVLPG ("about 100 ns" per single flush, tlb.c)
  invpcid: 350, // one INVPCID (Dave Hansen, Dec 2017: ~350 cycles per page)
  tlb_fill: 30, // a page walk that fills a TLB entry (user_access miss)
  invlpgb: 400, // INVLPGB + TLBSYNC: a broadcast invalidation and the wait for it
  secondary_tlb_flush: 1500, // mmu_notifier_arch_invalidate_secondary_tlbs: IOTLB + device-TLB (ATS) invalidation of a range, waited for
  user_mask_rmw: 40, // btr on user_pcid_flush_mask: its cache line taken exclusive
} as const;

export type CostKind = keyof typeof DEFAULT_COSTS;

export type CostTable = Record<CostKind, number>;

/** The table for a scenario: defaults with its overrides; unknown kinds are an input error. */
export function costTable(overrides: Readonly<Record<string, number>>): CostTable | { unknown: string } {
  const t: CostTable = { ...DEFAULT_COSTS };
  for (const [k, v] of Object.entries(overrides)) {
    if (!Object.hasOwn(t, k)) return { unknown: k }; // not `in`: toString is no cost
    t[k as CostKind] = v;
  }
  return t;
}

/** ns -> cycles at the machine's clock, as an integer. */
export function nsToCycles(ns: number, cpuMhz: number): number {
  return Math.floor((ns * cpuMhz) / 1000);
}

export function cyclesToNs(cycles: number, cpuMhz: number): number {
  return Math.floor((cycles * 1000) / cpuMhz);
}
