// start_kernel(), for a model: lay out the machine, chain the free slots,
// give each CPU its idle task, and create the scenario's initial processes
// as if init had forked them (each starts in ret_from_fork).

import type { CostTable } from "../machine/costs.js";
import type { MachineParams, Program } from "../machine/machine.js";
import { defineLayout, type Field, newMemory, PF_IDLE, PF_KTHREAD, TASK_RUNNING } from "../machine/state.js";
import { files_alloc, P_RET_FROM_FORK } from "./fork.js";
import { fpu_init_task, P_FPU_CLONE, P_FPU_FLUSH_THREAD, P_FPU_RESTORE, P_SWITCH_FPU } from "./fpu.js";
import { ida_words } from "./ida.js";
import { iommu_alloc_global_pasid } from "./iommu.js";
import { Kernel, type ModelConfig } from "./kernel.js";
import { mm_alloc } from "./mm.js";
import { P_PASID_TASK_WORK } from "./pasid_msr.js";
import { P_SWITCH_TO_USER_CR3 } from "./pti.js";
import { enqueue_task, P_IDLE } from "./sched.js";
import { P_SWITCH_MM, tlb_boot_cpu, tlb_boot_global } from "./tlb.js";
import { user_pcid_flush_mask_words } from "./tlbstate.js";

export interface InitialProcess {
  prog: number;
  count: number;
  threads: number;
}

export interface BootSpec {
  params: MachineParams;
  model: ModelConfig;
  /** Task slots for user tasks (idle tasks come on top). */
  tasksMax: number;
  mmsMax: number;
  /** Device-side table sizes (PASID-table and cache entries per device, bonds, open files). */
  ptSlots: number;
  tlbSlots: number;
  bonds: number;
  openFiles: number;
  programs: readonly Program[];
  procs: readonly InitialProcess[];
  costs: CostTable;
  /** Plug the FPU/XSTATE paths in (false: the hooks stay empty, for measuring the model's overhead). */
  fpuHooks?: boolean;
}

/** A machine without devices hands out no PASIDs: its allocator is the smallest, not 2^20 bits of state. */
export function pasidSpaceBits(model: ModelConfig): number {
  return model.devices.length > 0 ? model.pasidBits : 1;
}

export function boot(spec: BootSpec): Kernel {
  const ncpus = spec.params.cpus;
  const devices = spec.model.devices;
  const L = defineLayout({
    cpus: ncpus,
    tasks: spec.tasksMax + ncpus,
    mms: spec.mmsMax,
    idaWords: ida_words(pasidSpaceBits(spec.model)),
    devices: devices.length,
    wqDepthMax: devices.reduce((m, d) => Math.max(m, d.wqDepth), 1),
    ptSlots: spec.ptSlots,
    tlbSlots: spec.tlbSlots,
    bonds: spec.bonds,
    openFiles: spec.openFiles,
    asidSlots: spec.model.tlb.asidSlots,
    userMaskWords: user_pcid_flush_mask_words(spec.model.tlb, spec.model.variants),
  });
  const k = new Kernel(newMemory(L), L, spec.params, spec.programs, spec.costs, spec.model);
  k.hooks.switch_mm.push(P_SWITCH_MM);
  if (spec.fpuHooks !== false) {
    k.hooks.switch_fpu.push(P_SWITCH_FPU);
    k.hooks.copy_process.push(P_FPU_CLONE);
    k.hooks.exec.push(P_FPU_FLUSH_THREAD);
    k.hooks.exit_to_user.push(P_PASID_TASK_WORK, P_FPU_RESTORE);
  }
  // SWITCH_TO_USER_CR3 must stay the last exit_to_user hook: it is the last thing before SYSRET.
  if (spec.model.tlb.pti) k.hooks.exit_to_user.push(P_SWITCH_TO_USER_CR3);
  chainFreeSlots(k, ncpus);
  for (let cpu = 0; cpu < ncpus; cpu++) {
    bootIdle(k, cpu);
    tlb_boot_cpu(k, cpu);
  }
  tlb_boot_global(k);
  devices.forEach((dev, d) => {
    // idxd's probe: a kernel work queue gets its PASID from the same space.
    if (dev.kernelWq) k.set(k.D.kernel_pasid, d, iommu_alloc_global_pasid(k, dev.maxPasids, -1));
  });
  let next = 0;
  for (const p of spec.procs) {
    for (let i = 0; i < p.count; i++) {
      next = spawnProcess(k, p.prog, p.threads, next);
    }
  }
  k.metrics.forks = 0; // boot-time tasks are not forks of the workload
  k.metrics.refcount_ops = 0;
  k.extra = 0;
  k.mem.rehash();
  return k;
}

function chainFreeSlots(k: Kernel, ncpus: number): void {
  // Pushed from the top so that the lowest slot is handed out first. Slot 0
  // is NULL; task slots 1..ncpus are the idle tasks.
  const chain = (head: Field, next: Field, count: number, first: number) => {
    for (let s = count - 1; s >= first; s--) k.slot_push(head, next, s);
  };
  chain(k.G.task_free, k.T.rq_next, k.L.task.count, ncpus + 1);
  chain(k.G.mm_free, k.M.next_free, k.L.mm.count, 1);
  chain(k.G.files_free, k.F.next_free, k.L.files.count, 1);
  chain(k.G.bond_free, k.B.next_free, k.L.bond.count, 1);
  chain(k.G.file_free, k.FL.next_free, k.L.file.count, 1);
}

function bootIdle(k: Kernel, cpu: number): void {
  const idle = cpu + 1;
  k.set(k.T.state, idle, TASK_RUNNING);
  k.set(k.T.flags, idle, PF_KTHREAD | PF_IDLE);
  k.set(k.T.cpu, idle, cpu);
  k.set(k.T.tgid, idle, 0); // pid 0, like the swapper
  k.pushTaskFrame(idle, P_IDLE);
  k.set(k.C.curr, cpu, idle);
  k.set(k.C.idle, cpu, idle);
}

/** One process of `threads` threads sharing an mm and files; returns the next CPU to place on. */
function spawnProcess(k: Kernel, prog: number, threads: number, cpuNext: number): number {
  const mm = mm_alloc(k);
  const files = files_alloc(k, -1);
  let leader = 0;
  for (let i = 0; i < threads; i++) {
    const t = k.slot_pop(k.G.task_free, k.T.rq_next);
    if (t === 0) throw new RangeError("boot: more initial tasks than task slots");
    if (leader === 0) leader = t;
    else {
      k.add(k.M.users, mm, 1);
      k.add(k.F.count, files, 1);
    }
    k.set(k.T.state, t, TASK_RUNNING);
    k.set(k.T.pid, t, k.add(k.G.next_pid, 0, 1));
    k.set(k.T.tgid, t, k.get(k.T.pid, leader)); // the leader's pid, as the kernel's tgid
    k.set(k.T.mm, t, mm);
    k.set(k.T.active_mm, t, mm);
    k.set(k.T.files, t, files);
    k.set(k.T.prog, t, prog);
    fpu_init_task(k, t);
    k.pushTaskFrame(t, P_RET_FROM_FORK);
    k.add(k.G.nr_user_tasks, 0, 1);
    const cpu = cpuNext % k.params.cpus;
    enqueue_task(k, cpu, t);
    cpuNext = cpu + 1;
  }
  return cpuNext;
}
