// ITF JSON (the Informal Trace Format of Apalache and Quint,
// https://apalache-mc.org/docs/adr/015adr-trace.html) for a counterexample:
// the initial state and one state per transition. Each state is a record of
// the variables the properties read, named as the kernel names them, so that
// a violation can be seen in the ITF alone:
//
//   action            who acted and what: "cpu1: try_fixup_enqcmd_gp",
//                     "device dsa0: complete descriptor", "tick cpu0"
//   cpus              per CPU: the task it runs, mode, IA32_PASID (live),
//                     cpu_tlbstate (loaded_mm, loaded_mm_asid, is_lazy, ctxs),
//                     CR3 and the valid TLB entries
//   tasks             per live task (idle tasks left out): pid, name, state,
//                     mm, pasid_activated, IA32_PASID (what the task sees)
//   mms               per allocated mm: users, count, pasid, ctx_id, tlb_gen,
//                     page_gen (the last flush of each tracked page)
//   pasids_allocated  the PASID IDA's allocated IDs (a set)
//   devices           per device: its work queue's descriptors with their
//                     PASIDs, its PASID table, its translation cache
//
// Integers are {"#bigint": "..."} (the ITF's own integers; plain JSON numbers
// only where the format wants them: a state's #meta.index); sets are #set.
// A state's #meta also says the transition as a schedule line, the kernel
// path and the task; the last state's #meta carries the violation.

import { cpu_peek } from "../engine/cpu.js";
import { describeTransition, TR_CPU, TR_DEVICE, TR_TICK, trArg, trKind } from "../engine/engine.js";
import { rdmsr_pasid, xs_pasid } from "../hw/xsave.js";
import { fpregs_state_valid } from "../kernel/fpregs.js";
import type { Kernel } from "../kernel/kernel.js";
import {
  DESC_WORDS,
  MM_FREE,
  MM_LIVE,
  PF_IDLE,
  PT_WORDS,
  TASK_DEAD,
  TASK_FREE,
  TASK_INTERRUPTIBLE,
  TASK_NEW,
  TASK_RUNNING,
  TIF_NEED_FPU_LOAD,
  TLB_ENTRIES,
  TLB_PAGES,
  TLBE_WORDS,
} from "../machine/state.js";

export type Itf = { "#bigint": string } | { "#set": Itf[] } | string | boolean | Itf[] | { [k: string]: Itf };

/** An ITF integer. */
export const big = (n: number): Itf => ({ "#bigint": String(n) });

export const ITF_VARS = ["action", "cpus", "tasks", "mms", "pasids_allocated", "devices"] as const;

export interface ItfMeta {
  index: number;
  /** The transition as a schedule line: "cpu 1", "device 0", "tick 0", "timer 5". */
  transition?: string;
  /** The kernel path the step belongs to. */
  path?: string;
  /** The task that acted: "leaver (pid 2)". */
  task?: string;
  violation?: { property: string; message: string };
}

const TASK_STATES: Record<number, string> = {
  [TASK_RUNNING]: "running",
  [TASK_INTERRUPTIBLE]: "sleeping",
  [TASK_DEAD]: "dead",
  [TASK_NEW]: "new",
};

/** A task by name: its program's name and pid ("swapper/0" for an idle task). */
export function taskLabel(k: Kernel, t: number): string {
  if ((k.get(k.T.flags, t) & PF_IDLE) !== 0) return `swapper/${k.get(k.T.cpu, t)}`;
  return `${k.programs[k.get(k.T.prog, t)].name} (pid ${k.get(k.T.pid, t)})`;
}

const u32 = (v: number) => v >>> 0;

/** What a transition is about to do, said before it runs: the ITF's `action` and the #meta that goes with it. */
export function itfAction(k: Kernel, tr: number): { action: string; meta: Omit<ItfMeta, "index"> } {
  const kind = trKind(tr);
  const arg = trArg(tr);
  const transition = describeTransition(tr);
  if (kind === TR_CPU) {
    const peek = cpu_peek(k, arg);
    const task = taskLabel(k, k.curr(arg));
    if (peek.startsWith("user: ")) {
      return { action: `cpu${arg}: user ${peek.slice(6)}`, meta: { transition, path: "user", task } };
    }
    const sep = peek.indexOf(": ");
    if (sep < 0) return { action: `cpu${arg}: ${peek}`, meta: { transition, path: peek, task } };
    return {
      action: `cpu${arg}: ${peek.slice(sep + 2)}`,
      meta: { transition, path: peek.slice(0, sep), task },
    };
  }
  if (kind === TR_DEVICE) {
    const name = k.model.devices[arg]?.name ?? String(arg);
    return { action: `device ${name}: complete descriptor`, meta: { transition, path: "device" } };
  }
  if (kind === TR_TICK) return { action: `tick cpu${arg}`, meta: { transition, path: "apic" } };
  return { action: `timer: ${taskLabel(k, arg)} wakes`, meta: { transition, path: "hrtimer" } };
}

function cpuRecord(k: Kernel, c: number): Itf {
  const C = k.C;
  const t = k.curr(c);
  const ctxs: Itf[] = [];
  const slots = k.C.ctx_id.len;
  for (let a = 0; a < slots; a++) {
    ctxs.push({
      asid: big(a),
      ctx_id: big(k.w[C.ctx_id.at + c * C.ctx_id.stride + a]),
      tlb_gen: big(k.w[C.ctx_gen.at + c * C.ctx_gen.stride + a]),
    });
  }
  const tlb: Itf[] = [];
  const base = C.tlb.at + c * C.tlb.stride;
  for (let i = 0; i < TLB_ENTRIES; i++) {
    const a = base + i * TLBE_WORDS;
    if (k.w[a] === 0) continue;
    tlb.push({
      pcid: big(k.w[a] - 1),
      page: big(k.w[a + 1]),
      ctx_id: big(k.w[a + 2]),
      tlb_gen: big(k.w[a + 3]),
    });
  }
  return {
    cpu: big(c),
    curr: taskLabel(k, t),
    curr_pid: big(k.get(k.T.pid, t)),
    in_user: k.get(C.in_user, c) !== 0,
    irqs_off: k.get(C.irqs_off, c) !== 0,
    preempt_count: big(k.get(C.preempt_count, c)),
    irq_depth: big(k.get(C.irq_depth, c)),
    IA32_PASID: big(u32(rdmsr_pasid(k, c))),
    fpregs_owner_pid: big(k.get(k.T.pid, k.get(C.fpregs_owner, c))),
    loaded_mm: big(k.get(C.loaded_mm, c)),
    loaded_mm_asid: big(k.get(C.loaded_mm_asid, c)),
    is_lazy: k.get(C.is_lazy, c) !== 0,
    cr3_mm: big(k.get(C.cr3_mm, c)),
    cr3_pcid: big(k.get(C.cr3_pcid, c)),
    ctxs,
    tlb,
  };
}

function taskRecord(k: Kernel, t: number): Itf {
  const T = k.T;
  let onCpu = -1;
  for (let c = 0; c < k.params.cpus; c++) if (k.curr(c) === t) onCpu = c;
  const image = xs_pasid(k, t);
  // What the task sees: its live register where it runs on its own registers, else its XSAVE image.
  const live = onCpu >= 0 && (k.get(T.tif, t) & TIF_NEED_FPU_LOAD) === 0 && fpregs_state_valid(k, onCpu, t);
  return {
    pid: big(k.get(T.pid, t)),
    tgid: big(k.get(T.tgid, t)),
    name: k.programs[k.get(T.prog, t)].name,
    state: TASK_STATES[k.get(T.state, t)] ?? "unknown",
    on_cpu: big(onCpu),
    mm: big(k.get(T.mm, t)),
    active_mm: big(k.get(T.active_mm, t)),
    pasid_activated: k.get(T.pasid_activated, t) !== 0,
    IA32_PASID: big(u32(live ? rdmsr_pasid(k, onCpu) : image)),
    IA32_PASID_xsave: big(u32(image)),
    need_fpu_load: (k.get(T.tif, t) & TIF_NEED_FPU_LOAD) !== 0,
  };
}

function mmRecord(k: Kernel, mm: number): Itf {
  const M = k.M;
  const pageGen: Itf[] = [];
  for (let p = 0; p < TLB_PAGES; p++) pageGen.push(big(k.w[M.page_gen.at + mm * M.page_gen.stride + p]));
  return {
    mm: big(mm),
    state: k.get(M.state, mm) === MM_LIVE ? "live" : "zombie",
    users: big(k.get(M.users, mm)),
    count: big(k.get(M.count, mm)),
    pasid: big(k.get(M.pasid, mm)),
    ctx_id: big(k.get(M.gen, mm) + 1),
    tlb_gen: big(k.get(M.tlb_gen, mm)),
    page_gen: pageGen,
  };
}

/** The IDA's allocated IDs, lowest first (its level-0 bitmap). */
function idaIds(k: Kernel): number[] {
  const ids: number[] = [];
  const words = Math.max(1, (1 << k.ida.bits) >>> 5);
  const at = k.ida.base + 1;
  for (let i = 0; i < words; i++) {
    const w = k.w[at + i];
    if (w === 0) continue;
    for (let b = 0; b < 32; b++) if ((w & (1 << b)) !== 0) ids.push(i * 32 + b);
  }
  return ids;
}

function deviceRecord(k: Kernel, d: number): Itf {
  const D = k.D;
  const dev = k.model.devices[d];
  const wq: Itf[] = [];
  const head = k.get(D.wq_head, d);
  const n = k.get(D.wq_count, d);
  for (let i = 0; i < n; i++) {
    const a = D.wq.at + d * D.wq.stride + ((head + i) % dev.wqDepth) * DESC_WORDS;
    const task = k.w[a + 2];
    wq.push({ pasid: big(k.w[a]), mm: big(k.w[a + 1]), pid: big(task === 0 ? 0 : k.get(k.T.pid, task)) });
  }
  const entries = (f: typeof D.pt): Itf[] => {
    const out: Itf[] = [];
    for (let i = 0; i < f.len / PT_WORDS; i++) {
      const a = f.at + d * f.stride + i * PT_WORDS;
      if (k.w[a] !== 0) out.push({ pasid: big(k.w[a]), mm: big(k.w[a + 1]) });
    }
    return out;
  };
  return {
    name: dev.name,
    wq,
    pasid_table: entries(D.pt),
    translation_cache: entries(D.tlb),
    kernel_pasid: big(k.get(D.kernel_pasid, d)),
  };
}

/** The state after a transition (or the initial one), as an ITF record. */
export function itfState(k: Kernel, meta: ItfMeta, action: string): Record<string, Itf> {
  const cpus: Itf[] = [];
  for (let c = 0; c < k.params.cpus; c++) cpus.push(cpuRecord(k, c));
  const tasks: Itf[] = [];
  for (let t = 1; t < k.L.task.count; t++) {
    if (k.get(k.T.state, t) === TASK_FREE || (k.get(k.T.flags, t) & PF_IDLE) !== 0) continue;
    tasks.push(taskRecord(k, t));
  }
  const mms: Itf[] = [];
  for (let mm = 1; mm < k.L.mm.count; mm++) if (k.get(k.M.state, mm) !== MM_FREE) mms.push(mmRecord(k, mm));
  const devices: Itf[] = k.model.devices.map((_, d) => deviceRecord(k, d));
  const m: Record<string, Itf | number> = { index: meta.index };
  if (meta.transition !== undefined) m.transition = meta.transition;
  if (meta.path !== undefined) m.path = meta.path;
  if (meta.task !== undefined) m.task = meta.task;
  if (meta.violation !== undefined) m.violation = { ...meta.violation };
  return {
    "#meta": m as unknown as Itf,
    action,
    cpus,
    tasks,
    mms,
    pasids_allocated: { "#set": idaIds(k).map(big) },
    devices,
  };
}

export function itfDocument(source: string, description: string, states: Record<string, Itf>[]): string {
  const doc = {
    "#meta": {
      format: "ITF",
      "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
      source,
      description,
    },
    vars: [...ITF_VARS],
    states,
  };
  return `${JSON.stringify(doc, null, 1)}\n`;
}
