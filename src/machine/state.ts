// The machine as data: the struct layouts of one machine, sized from the
// scenario. Pointers are 1-based slot numbers with 0 as NULL, so zeroed
// memory is "nothing there". Task slots 1..ncpus are the per-CPU idle tasks.

import { type Field, LayoutBuilder, type Region } from "./layout.js";
import { HEADER_WORDS, Memory } from "./memory.js";

/** One kernel frame: the path being executed, its program counter, two locals. */
export const FRAME_WORDS = 4;
export const FR_PATH = 0;
export const FR_PC = 1;
export const FR_A0 = 2;
export const FR_A1 = 3;
/** Kernel call depth per task (syscall -> clone -> schedule -> ...). */
export const TASK_FRAMES_MAX = 12;
/** Nesting of interrupt contexts per CPU (IRQ, then NMI on top). */
export const CPU_FRAMES_MAX = 4;
/** Nested loops in a user program (repeat, count, nested repeat ...). */
export const LOOP_DEPTH_MAX = 6;

// task_struct.state, as the kernel's __state
export const TASK_FREE = 0; // slot not in use (not a kernel state)
export const TASK_RUNNING = 1;
export const TASK_INTERRUPTIBLE = 2;
export const TASK_DEAD = 3; // do_task_dead(): never scheduled again
export const TASK_NEW = 4; // copy_process() done, not yet woken

// task_struct.flags
export const PF_KTHREAD = 1 << 0;
export const PF_IDLE = 1 << 1;
export const PF_EXITING = 1 << 2;

// task thread-info flags (task.tif), all of them here; bits 2 and 3 are free
export const TIF_NEED_RESCHED = 1 << 0;
export const TIF_TIMER_ARMED = 1 << 1; // an hrtimer will wake this sleeper
/** Killed by de_thread() (exec in another thread); dies on its way to user. */
export const TIF_KILLED = 1 << 4;
/** The FPU registers must be restored from the task's image before user code runs. */
export const TIF_NEED_FPU_LOAD = 1 << 5;
/** A PASID update is pending (task_work, or an IPI's update deferred out of an fpregs_lock() section). */
export const TIF_PASID_SYNC = 1 << 6;
/** A signal with a handler is pending (the model's signals return from the handler at once). */
export const TIF_SIGPENDING = 1 << 7;

// cpu.pending: interrupts raised and not yet taken
export const IRQ_TIMER = 1 << 0; // the scheduler tick
export const IRQ_RESCHED = 1 << 1; // reschedule IPI
export const IRQ_HRTIMER = 1 << 2; // a high-resolution timer expired
export const IRQ_DEVICE = 1 << 3; // a device's completion interrupt
export const IRQ_CALL_FUNCTION = 1 << 4; // CALL_FUNCTION_VECTOR: a TLB shootdown IPI
export const IRQ_NMI = 1 << 6; // an NMI (machine.nmi: perf's, with every tick): taken whatever IF says
export const IRQ_PASID = 1 << 5; // the `ipi`/`task-work`/`ctxsw-resync` PASID update IPI (a CALL_FUNCTION of its own)

export const MM_FREE = 0;
export const MM_LIVE = 1; // mm_users > 0
export const MM_ZOMBIE = 2; // __mmput done, mm_count > 0 (lazy TLB or other mmgrab holders)

export interface MachineSize {
  cpus: number;
  /** Task slots, idle tasks included. */
  tasks: number;
  mms: number;
  /** Words of the PASID allocator (ida_words(pasid_bits)). */
  idaWords: number;
  devices: number;
  /** Deepest shared work queue among the devices. */
  wqDepthMax: number;
  /** PASID-table entries per device (binds of distinct mms at once). */
  ptSlots: number;
  /** Translation-cache entries per device (PASID cache, IOTLB and device TLB, as one). */
  tlbSlots: number;
  /** SVA bonds (iommu_sva handles) and open device files. */
  bonds: number;
  openFiles: number;
  /** TLB_NR_DYN_ASIDS: dynamic ASID slots per CPU (machine.asid_slots). */
  asidSlots: number;
  /** Words of user_pcid_flush_mask: one bit per kernel PCID the configuration can load. */
  userMaskWords: number;
}

/** Words of a cpumask over `cpus` CPUs (bit c of word c >> 5). */
export const cpumaskWords = (cpus: number) => Math.ceil(cpus / 32);
/** Entries of each CPU's modelled hardware TLB (user translations only). */
export const TLB_ENTRIES = 16;
/** Words per TLB entry: PCID + 1 (0: empty), page, ctx_id of the filling mm, its tlb_gen then. */
export const TLBE_WORDS = 4;
/** Pages of each mm whose translations the TLB model tracks (pages 0 .. TLB_PAGES-1). */
export const TLB_PAGES = 8;

/** MAX_ASID_AVAILABLE with PTI compiled in: (1 << (12 - 1)) - 2 ASIDs, the top for global ones. */
export const MAX_ASID_AVAILABLE = 2046;
export const GLOBAL_ASID_WORDS = Math.ceil(MAX_ASID_AVAILABLE / 32);

/** XSTATE component numbers are below this (XFEATURE_XTILE_DATA is 18). */
export const XFEATURE_MAX = 19;

/** Fault-injection sites (the bind path's steps). */
export const FAULT_SITES_MAX = 4;
/** Tasks that can wait in DRAIN_PASID on one device at once. */
export const DRAIN_WAITERS_MAX = 16;
/** Open device files per files_struct. */
export const FD_MAX = 8;
/** Words per work-queue descriptor: PASID, submitter mm, submitter task. */
export const DESC_WORDS = 3;
/** Words per PASID-table or translation-cache entry: PASID (0: empty), mm. */
export const PT_WORDS = 2;

export function defineLayout(size: MachineSize) {
  const b = new LayoutBuilder(HEADER_WORDS);
  const glob = b.region("glob", 1, {
    task_free: 1, // head of the free task-slot list
    mm_free: 1,
    files_free: 1,
    nr_user_tasks: 1, // live non-idle tasks
    nr_mms: 1, // mm_structs allocated and not yet __mmdrop'ed
    nr_files: 1,
    next_pid: 1,
    mm_gen: 1, // allocation counter: distinguishes reuses of one mm slot
    sva_lock: 1, // iommu_sva_lock: the holding task, or 0
    bond_free: 1,
    file_free: 1,
    nr_bonds: 1,
    nr_open_files: 1,
    jiffies: 1, // ticks of CPU 0 (consider_global_asid samples against it)
    global_asid_used: GLOBAL_ASID_WORDS, // bitmaps over ASIDs 0 .. MAX_ASID_AVAILABLE-1
    global_asid_freed: GLOBAL_ASID_WORDS,
    last_global_asid: 1,
    global_asid_available: 1,
    nr_timers: 1, // hrtimers armed (tasks with TIF_TIMER_ARMED): check's enabled set skips the task scan at 0
    fault_hits: FAULT_SITES_MAX, // runs of each fault-injection site so far
  });
  const ida = b.region("ida", 1, { words: Math.max(1, size.idaWords) });
  const cpu = b.region("cpu", size.cpus, {
    curr: 1,
    idle: 1,
    preempt_count: 1,
    irqs_off: 1, // 1 when interrupts are disabled (EFLAGS.IF clear)
    in_user: 1,
    pending: 1, // IRQ_* raised, not yet taken
    halted: 1,
    irq_depth: 1,
    irq_frames: CPU_FRAMES_MAX * FRAME_WORDS,
    rq_head: 1,
    rq_tail: 1,
    nr_running: 1, // runnable tasks on this rq, curr included unless idle
    prev_task: 1, // switch_to()'s "last": the task we switched away from
    prev_mm: 1, // rq->prev_mm: lazy mm to mmdrop in finish_task_switch()
    // The live XSTATE registers, one word per component number (0: init
    // state). Component 10 is the IA32_PASID MSR: PASID | bit 31 valid.
    xregs: XFEATURE_MAX,
    xmodified: 1, // components written since the last XRSTORS (the modified optimisation)
    xrstor_task: 1, // whose buffer the last XRSTORS loaded (0: none, or the kernel used the FPU since)
    fpregs_owner: 1, // fpu_fpregs_owner_ctx: the task whose registers are live here
    fpregs_locked: 1, // fpregs_lock() depth (local_bh_disable): FPU state must not change under it
    loaded_mm: 1, // cpu_tlbstate.loaded_mm: 0 is init_mm, LOADED_MM_SWITCHING (-1) while switching
    loaded_mm_asid: 1, // the dynamic ASID slot in CR3
    next_asid: 1, // choose_new_asid()'s round-robin cursor
    is_lazy: 1, // cpu_tlbstate_shared.is_lazy
    invalidate_other: 1, // clear the other ASID slots at the next switch
    user_pcid_flush_mask: size.userMaskWords, // bit kern_pcid(a): user PCID of ASID a needs a flush at exit
    ctx_id: size.asidSlots, // ctxs[a].ctx_id
    ctx_gen: size.asidSlots, // ctxs[a].tlb_gen
    sw_gen: 1, // switch_mm_irqs_off()'s next_tlb_gen (a local; IRQs are off, so one at a time)
    cr3_mm: 1, // CR3's page table: the mm whose PGD it is (0: init_mm / swapper_pg_dir)
    cr3_pcid: 1, // CR3[11:0]: the PCID (bit 11: the PTI user PCID)
    cr3_user: 1, // CR3[12]: the PTI user half of the PGD
    cr3_noflush: 1, // bit 63 of the last CR3 write (it reads as 0; kept for tests)
    sb_loaded_mm: 1, // x86-TSO: a loaded_mm store still in the store buffer (value + 2; 0: none)
    in_nmi: 1, // inside the NMI handler (NMIs are blocked until its IRET)
    nmi_cr3_mm: 1, // SAVE_AND_SWITCH_TO_KERNEL_CR3's saved CR3: page table, PCID, user half
    nmi_cr3_pcid: 1,
    nmi_cr3_user: 1,
    nmi_from_user: 1, // the NMI interrupted user mode
    csd_pending: cpumaskWords(size.cpus), // initiators whose flush request waits for this CPU
    fi_mm: 1, // this CPU's flush_tlb_info (it initiates one flush at a time): mm
    fi_pages: 1, // pages from 0, or 0 for TLB_FLUSH_ALL
    fi_gen: 1, // new_tlb_gen
    fi_freed: 1, // freed_tables
    fi_waiting: 1, // targets that have not run flush_tlb_func yet (csd_lock_wait)
    tlb_next: 1, // the TLB's replacement cursor
    tlb: TLB_ENTRIES * TLBE_WORDS,
  });
  const task = b.region("task", size.tasks + 1, {
    state: 1,
    flags: 1,
    tif: 1,
    pid: 1,
    tgid: 1, // the thread-group leader's pid (pids are never reused; slots are)
    mm: 1,
    active_mm: 1,
    files: 1,
    cpu: 1,
    on_rq: 1,
    rq_next: 1, // run-queue link; the free-list link when the slot is free
    ticks: 1, // ticks used of the current time slice
    prog: 1, // program id (static program text lives outside the state)
    upc: 1, // user program counter
    urem: 1, // remaining ns of the current compute op
    lsp: 1, // loop stack pointer
    loops: LOOP_DEPTH_MAX,
    exit_code: 1,
    pasid_ref: 1, // the task holds a `task-refcount` reference (it submitted)
    pasid_activated: 1, // the #GP fixup wrote this task's IA32_PASID
    // fpu->fpstate: the in-memory XSAVES image. xfeatures is the header's
    // XSTATE_BV (components not in init state), xcomp_bv the components the
    // buffer is sized for; xs holds one word per component number (the
    // PASID component: PASID | bit 31).
    xfeatures: 1,
    xcomp_bv: 1,
    xs: XFEATURE_MAX,
    xs_newer: 1, // components the kernel wrote into the image that the live registers lack
    sigframe: XFEATURE_MAX, // the user components saved in the signal frame (copy_fpstate_to_sigframe)
    fpu_perm: 1, // fpu->perm: dynamic components the process may use (ARCH_REQ_XCOMP_PERM)
    fpu_gen: 1, // a counter for the values user code writes into its registers
    fpu_last_cpu: 1, // fpu->last_cpu: where its registers were last live (-1: none)
    depth: 1, // kernel frames in use
    frames: TASK_FRAMES_MAX * FRAME_WORDS,
  });
  const mm = b.region("mm", size.mms + 1, {
    state: 1,
    users: 1, // mm_users: address-space users (tasks, mmget holders)
    count: 1, // mm_count: references to the struct itself (mmgrab)
    gen: 1,
    next_free: 1,
    pasid: 1, // mm->iommu_mm->pasid; 0: none
    nr_bonds: 1, // bonds of this mm (the `unbind` lifetime frees at 0)
    pasid_refs: 1, // the `task-refcount` lifetime's references
    tlb_gen: 1, // mm->context.tlb_gen
    global_asid: 1, // mm->context.global_asid (0: none; INVLPGB keeps it coherent on every CPU)
    asid_transition: 1, // CPUs running the mm may still use a dynamic ASID
    cpumask: cpumaskWords(size.cpus), // mm_cpumask(mm)
    page_gen: TLB_PAGES, // tlb_gen of the last flush request covering each tracked page
    ptes: 1, // present PTEs: bit p for page p < 31 (touch sets, munmap clears)
    ptes_end: 1, // present PTEs past page 30: the extent [31, ptes_end), 0: none
  });
  const files = b.region("files", size.tasks + 1, {
    count: 1,
    next_free: 1,
    fd: FD_MAX, // open device files: struct file slot, or 0
  });
  const file = b.region("file", size.openFiles + 1, {
    count: 1, // f_count
    dev: 1, // device + 1
    bond: 1,
    pasid: 1, // the PASID this file's context uses (ctx->pasid)
    opener: 1, // the mm that opened it
    next_free: 1,
  });
  const bond = b.region("bond", size.bonds + 1, {
    dev: 1, // device + 1; 0: free slot
    mm: 1,
    pasid: 1,
    refs: 1, // handle refcount (opens of the same device by the same mm)
    priv: 1, // a private PASID, not the mm's
    next_free: 1,
  });
  const dev = b.region("dev", size.devices, {
    wq_head: 1,
    wq_count: 1, // accepted descriptors not yet completed
    wq: size.wqDepthMax * DESC_WORDS,
    pt: size.ptSlots * PT_WORDS, // PASID table: present entries
    tlb: size.tlbSlots * PT_WORDS, // cached translations
    drain: DRAIN_WAITERS_MAX * 2, // tasks waiting in DRAIN_PASID: (task, PASID) pairs
    kernel_pasid: 1, // the kernel work queue's PASID (0: none)
  });
  return {
    size: b.size,
    describe: b.describer(),
    glob,
    ida,
    cpu,
    task,
    mm,
    files,
    file,
    bond,
    dev,
    counts: size,
  };
}

export type Layout = ReturnType<typeof defineLayout>;
export type TaskRegion = Layout["task"];
export type { Field, Region };

/** A fresh memory for a layout. */
export function newMemory(layout: Layout): Memory {
  return new Memory(layout.size);
}
