// The kernel's view of the machine: the Machine (typed access to the flat
// state, findings, metrics, the trace) plus frame push/pop for kernel paths,
// the hook points, fault injection and the policies in force. Everything a
// step touches goes through here, so a step's effect is exactly its writes
// to `mem`.

import type { DeviceParams } from "../hw/device.js";
import type { XstateLayout } from "../hw/xstate.js";
import type { CostTable } from "../machine/costs.js";
import { Machine, type MachineParams, type Program } from "../machine/machine.js";
import type { Memory } from "../machine/memory.js";
import {
  CPU_FRAMES_MAX,
  FR_A0,
  FR_A1,
  FR_PATH,
  FR_PC,
  FRAME_WORDS,
  type Layout,
  TASK_FRAMES_MAX,
} from "../machine/state.js";
import type { Ida } from "./ida.js";
import { allPaths, type KPath, pathById } from "./path.js";
import type { KernelVariant, Policy } from "./policy.js";

/** The parts of the scenario the model's paths consult. */
export interface ModelConfig {
  devices: readonly DeviceParams[];
  pasidBits: number;
  lifetime: Policy<"pasid_lifetime">;
  /** Kernel variants in force (historical or proposed code). */
  variants: ReadonlySet<KernelVariant>;
  /** Injected failures per fault site (index into FAULT_SITES): fail on run `nth`, or every run from it. */
  faults: readonly ({ nth: number; every: boolean } | null)[];
  /** The TLB model's machine switches and policies (machine.pti/pcid/invpcid/asid_slots, policy.*). */
  tlb: TlbConfig;
  /** The XSTATE layout from machine.xfeatures and machine.cpuid_xstate. */
  xstate: XstateLayout;
  /** policy.pasid_msr: how a task's IA32_PASID gets its mm's PASID. */
  pasidMsr: Policy<"pasid_msr">;
  /** policy.xstate_helper: how the kernel changes one component of a task's xstate (seed 004). */
  xstateHelper: Policy<"xstate_helper">;
  /** policy.xstate_check: the helpers' debug copy and checks. */
  xstateCheck: boolean;
  /** machine.nmi: a perf NMI comes with every tick, taken at the next step boundary whatever IF says. */
  nmi: boolean;
  /** machine.softirq_fpu: a softirq on every interrupt exit uses the FPU (kernel_fpu_begin in softirq context). */
  softirqFpu: boolean;
  /** machine.xcomp_perm: dynamic components every process may use from the start (ARCH_REQ_XCOMP_PERM done). */
  xcompPermAtBoot: number;
}

export interface TlbConfig {
  pti: boolean;
  pcid: boolean;
  invpcid: boolean;
  /** TLB_NR_DYN_ASIDS. */
  asidSlots: number;
  userAsidFlush: Policy<"user_asid_flush">;
  userFlushTest: Policy<"user_flush_test">;
  /** policy.nmi_restore_cr3: `paranoid` (6.9's PARANOID_RESTORE_CR3) or `always` (RESTORE_CR3 before it). */
  nmiRestoreCr3: Policy<"nmi_restore_cr3">;
  /** policy.lazy_tlb: `lazy` (mainline: a kernel thread keeps the mm loaded) or `init-mm` (4.15-4.18 with PCID: switch to init_mm at once). */
  lazyTlb: Policy<"lazy_tlb">;
  /** policy.tlb_shootdown = invlpgb: 6.15's global ASIDs with broadcast invalidation (X86_FEATURE_INVLPGB). */
  invlpgb: boolean;
  /** machine.global_asids_in_use: global ASIDs held at boot by mms outside the scenario. */
  globalAsidsInUse: number;
  /** machine.initial_jiffies (kept only under invlpgb: consider_global_asid samples it). */
  initialJiffies: number;
}

/** Named hook points where the model issues plug their paths in. */
export interface Hooks {
  /** After syscall entry, before the syscall body. */
  syscall_enter: KPath[];
  /** Work on the way out to user space (exit_to_user_mode_prepare), after the resched check. */
  exit_to_user: KPath[];
  /** switch_mm_irqs_off(prev, next): a0 = next mm. */
  switch_mm: KPath[];
  /** The FPU part of switch_to(): a0 = prev task, a1 = next task. */
  switch_fpu: KPath[];
  /** copy_process() extras (fpu_clone, ...): a0 = child task. */
  copy_process: KPath[];
  /** begin_new_exec() extras (fpu_flush_thread, ...). */
  exec: KPath[];
  /** do_exit() before exit_mm(). */
  exit: KPath[];
}

export class Kernel extends Machine {
  /** The global PASID allocator's place in memory. */
  readonly ida: Ida;
  /** Every kernel path by id (allPaths(), taken once: the step loop indexes it on every step). */
  readonly paths: readonly KPath[];
  /** Cycles of each step of each path, from the cost table: stepCost[path.id][pc]. */
  readonly stepCost: number[][];
  /** Frames popped so far (a change detector for the step loop; not state). */
  rets = 0;
  readonly hooks: Hooks = {
    syscall_enter: [],
    exit_to_user: [],
    switch_mm: [],
    switch_fpu: [],
    copy_process: [],
    exec: [],
    exit: [],
  };

  constructor(
    mem: Memory,
    L: Layout,
    params: MachineParams,
    readonly programs: readonly Program[],
    costs: CostTable,
    readonly model: ModelConfig,
  ) {
    super(mem, L, params, costs);
    this.ida = { base: L.ida.f.words.at, bits: model.devices.length > 0 ? model.pasidBits : 1 };
    this.paths = allPaths();
    this.stepCost = this.paths.map((p) => p.steps.map((s) => costs[s.cost]));
    const C = this.C;
    const T = this.T;
    this.cpuBase = C.curr.base;
    this.cpuStride = C.curr.stride;
    this.offCurr = C.curr.off;
    this.offIrqDepth = C.irq_depth.off;
    this.offIrqFrames = C.irq_frames.off;
    this.taskBase = T.depth.base;
    this.taskStride = T.depth.stride;
    this.offDepth = T.depth.off;
    this.offFrames = T.frames.off;
  }

  // Numeric copies of the offsets topFrame() needs: plain fields, one load each.
  private readonly cpuBase: number;
  private readonly cpuStride: number;
  private readonly offCurr: number;
  private readonly offIrqDepth: number;
  private readonly offIrqFrames: number;
  private readonly taskBase: number;
  private readonly taskStride: number;
  private readonly offDepth: number;
  private readonly offFrames: number;

  // --- kernel frames ------------------------------------------------------

  /** Address of the top frame of the stack `cpu` executes now, or -1 (user mode). */
  topFrame(cpu: number): number {
    const w = this.w;
    const cb = this.cpuBase + cpu * this.cpuStride;
    const irqDepth = w[cb + this.offIrqDepth];
    if (irqDepth > 0) return cb + this.offIrqFrames + (irqDepth - 1) * FRAME_WORDS;
    const tb = this.taskBase + w[cb + this.offCurr] * this.taskStride;
    const depth = w[tb + this.offDepth];
    return depth > 0 ? tb + this.offFrames + (depth - 1) * FRAME_WORDS : -1;
  }

  /** Push a frame for `path` on the stack `cpu` executes now. */
  call(cpu: number, path: KPath, a0 = 0, a1 = 0): void {
    const task = this.get(this.C.irq_depth, cpu) > 0 ? -1 : this.get(this.C.curr, cpu);
    this.pushTaskOrIrq(cpu, task, path, a0, a1);
  }

  /** Push an interrupt-context frame (entry to an IRQ/NMI handler). */
  callIrq(cpu: number, path: KPath, a0 = 0, a1 = 0): void {
    this.pushTaskOrIrq(cpu, -1, path, a0, a1);
  }

  /** Push a frame on `task`'s kernel stack (also for tasks not running: new tasks). */
  pushTaskFrame(task: number, path: KPath, a0 = 0, a1 = 0): void {
    const depth = this.get(this.T.depth, task);
    if (depth >= TASK_FRAMES_MAX) {
      this.warn("kernel-stack", `task ${task}: kernel stack overflow calling ${path.name}`, -1);
      return;
    }
    this.writeFrame(this.taskFrameAddr(task, depth), path, a0, a1);
    this.set(this.T.depth, task, depth + 1);
  }

  private pushTaskOrIrq(cpu: number, task: number, path: KPath, a0: number, a1: number): void {
    if (task >= 0) {
      this.pushTaskFrame(task, path, a0, a1);
    } else {
      const d = this.get(this.C.irq_depth, cpu);
      if (d >= CPU_FRAMES_MAX) {
        this.warn("kernel-stack", `cpu ${cpu}: interrupt stack overflow calling ${path.name}`, cpu);
        return;
      }
      this.writeFrame(this.irqFrameAddr(cpu, d), path, a0, a1);
      this.set(this.C.irq_depth, cpu, d + 1);
    }
    if (this.trace !== null) this.trace.pathEnter(cpu, this.get(this.C.curr, cpu), path.name);
  }

  private writeFrame(fr: number, path: KPath, a0: number, a1: number): void {
    this.mem.write(fr + FR_PATH, path.id);
    this.mem.write(fr + FR_PC, 0);
    this.mem.write(fr + FR_A0, a0);
    this.mem.write(fr + FR_A1, a1);
  }

  /**
   * Clear each frame popped (check sets it): a dead frame's stale words would
   * make states that differ in nothing live look distinct to the search, and
   * its state space infinite without a preemption bound. `run` never looks
   * at them and skips the four writes.
   */
  clearFrames = false;

  private clearFrame(fr: number): void {
    const mem = this.mem;
    mem.write(fr + FR_PATH, 0);
    mem.write(fr + FR_PC, 0);
    mem.write(fr + FR_A0, 0);
    mem.write(fr + FR_A1, 0);
  }

  /** Pop the top frame of the stack `cpu` executes now. */
  ret(cpu: number): void {
    this.rets++;
    const d = this.get(this.C.irq_depth, cpu);
    if (d > 0) {
      if (this.clearFrames) this.clearFrame(this.irqFrameAddr(cpu, d - 1));
      this.set(this.C.irq_depth, cpu, d - 1);
    } else {
      const t = this.get(this.C.curr, cpu);
      const depth = this.get(this.T.depth, t);
      if (depth <= 0) {
        this.warn("kernel-stack", `cpu ${cpu}: return with no kernel frame`, cpu);
        return;
      }
      if (this.clearFrames) this.clearFrame(this.taskFrameAddr(t, depth - 1));
      this.set(this.T.depth, t, depth - 1);
    }
    if (this.trace !== null) this.trace.pathExit(cpu, this.get(this.C.curr, cpu));
  }

  /** Continue the frame `fr` at step `pc` of its path. */
  jump(fr: number, pc: number): void {
    this.mem.write(fr + FR_PC, pc);
  }

  /** Push each hook path so that they run in list order. */
  callHooks(cpu: number, paths: readonly KPath[], a0 = 0, a1 = 0): void {
    for (let i = paths.length - 1; i >= 0; i--) this.call(cpu, paths[i], a0, a1);
  }

  taskFrameAddr(task: number, depth: number): number {
    return this.T.frames.base + task * this.T.frames.stride + this.T.frames.off + depth * FRAME_WORDS;
  }

  irqFrameAddr(cpu: number, depth: number): number {
    return (
      this.C.irq_frames.base + cpu * this.C.irq_frames.stride + this.C.irq_frames.off + depth * FRAME_WORDS
    );
  }

  // --- findings, fault injection -----------------------------------------

  /** A finding names the path on top of the stack `cpu` runs ("user" in user mode). */
  protected override where(cpu: number): string {
    const fr = this.topFrame(cpu);
    return fr >= 0 ? this.pathNameAt(fr) : "user";
  }

  pathNameAt(fr: number): string {
    return pathById(this.w[fr + FR_PATH]).name;
  }

  /**
   * Fault injection: does this run of fault site `site` fail? The runs are
   * counted in the machine state, so a replay fails at the same point.
   */
  should_fail(site: number): boolean {
    const f = this.model.faults[site];
    if (f === null || f === undefined) return false;
    const a = this.G.fault_hits.at + site;
    const n = this.w[a] + 1;
    this.mem.write(a, n);
    const fail = f.every ? n >= f.nth : n === f.nth;
    if (fail && this.trace !== null) this.trace.instant(-1, "fault injected", { site, run: n });
    return fail;
  }
}
