// The machine state read back as kernel structs: `task "leaver" (pid 1)`,
// `mm 1`, `cpu_tlbstate[0]`, the PASID IDA, each device's work queue with its
// descriptors' PASIDs. Pointers are named (an mm slot as `mm 1`, a task as
// `"leaver" (pid 1)`), bitfields and MSRs are in hex with their meaning
// (`IA32_PASID = 0x80000001 (valid, PASID 1)`), and the model's own
// bookkeeping (kernel frames, user program counters, free lists) is marked
// internal so that a reader can fold it away. A step's changes are the diff
// of two decoded states, so they carry the same names.

import { MSR_IA32_PASID_VALID } from "../hw/xsave.js";
import { XFEATURE_PASID } from "../hw/xstate.js";
import type { Kernel } from "../kernel/kernel.js";
import { pathById } from "../kernel/path.js";
import { LOADED_MM_SWITCHING } from "../kernel/tlbstate.js";
import {
  DESC_WORDS,
  FR_PATH,
  FRAME_WORDS,
  IRQ_CALL_FUNCTION,
  IRQ_DEVICE,
  IRQ_HRTIMER,
  IRQ_NMI,
  IRQ_PASID,
  IRQ_RESCHED,
  IRQ_TIMER,
  MM_FREE,
  MM_LIVE,
  MM_ZOMBIE,
  PF_EXITING,
  PF_IDLE,
  PF_KTHREAD,
  PT_WORDS,
  TASK_DEAD,
  TASK_FREE,
  TASK_INTERRUPTIBLE,
  TASK_NEW,
  TASK_RUNNING,
  TIF_KILLED,
  TIF_NEED_FPU_LOAD,
  TIF_NEED_RESCHED,
  TIF_PASID_SYNC,
  TIF_SIGPENDING,
  TIF_TIMER_ARMED,
  TLB_ENTRIES,
  TLB_PAGES,
  TLBE_WORDS,
  XFEATURE_MAX,
} from "../machine/state.js";

/** One named field of a decoded state. */
export interface Entry {
  /** The struct it belongs to: a stable key (`task[2]`) whose label may change (`task "leaver" (pid 1)`). */
  struct: string;
  /** The field's name inside its struct (`mm`, `IA32_PASID`, `wq[0]`). */
  field: string;
  value: string;
  /** Model bookkeeping with no kernel counterpart: hidden unless asked for. */
  internal: boolean;
}

/** A machine state as kernel structs: entries by key (`struct.field`), and each struct's label. */
export interface Decoded {
  entries: Map<string, Entry>;
  labels: Map<string, string>;
  /** The structs in use (a free task or mm slot has only its `state` entry). */
  live: Set<string>;
}

/** One field a step changed: its name (`task "leaver" (pid 1).mm`), old and new value ("" where it did not exist). */
export interface FieldChange {
  field: string;
  old: string;
  new: string;
  internal?: true;
}

export const hex = (v: number) => `0x${(v >>> 0).toString(16)}`;

function flagNames(v: number, names: readonly (readonly [number, string])[]): string {
  if (v === 0) return "0";
  const set = names.filter(([bit]) => (v & bit) !== 0).map(([, n]) => n);
  let rest = v;
  for (const [bit] of names) rest &= ~bit;
  if (rest !== 0) set.push(hex(rest));
  return `${hex(v)} (${set.join("|")})`;
}

const TASK_STATES: Record<number, string> = {
  [TASK_FREE]: "free",
  [TASK_RUNNING]: "TASK_RUNNING",
  [TASK_INTERRUPTIBLE]: "TASK_INTERRUPTIBLE",
  [TASK_DEAD]: "TASK_DEAD",
  [TASK_NEW]: "TASK_NEW",
};
const MM_STATES: Record<number, string> = {
  [MM_FREE]: "free",
  [MM_LIVE]: "live (mm_users > 0)",
  [MM_ZOMBIE]: "__mmput done (mm_count > 0)",
};
const PF = [
  [PF_KTHREAD, "PF_KTHREAD"],
  [PF_IDLE, "PF_IDLE"],
  [PF_EXITING, "PF_EXITING"],
] as const;
const TIF = [
  [TIF_NEED_RESCHED, "TIF_NEED_RESCHED"],
  [TIF_TIMER_ARMED, "hrtimer armed"],
  [TIF_KILLED, "killed by de_thread"],
  [TIF_NEED_FPU_LOAD, "TIF_NEED_FPU_LOAD"],
  [TIF_PASID_SYNC, "PASID update pending"],
  [TIF_SIGPENDING, "TIF_SIGPENDING"],
] as const;
const IRQS = [
  [IRQ_TIMER, "LOCAL_TIMER"],
  [IRQ_RESCHED, "RESCHEDULE IPI"],
  [IRQ_HRTIMER, "hrtimer"],
  [IRQ_DEVICE, "device"],
  [IRQ_CALL_FUNCTION, "CALL_FUNCTION IPI (TLB shootdown)"],
  [IRQ_PASID, "PASID update IPI"],
  [IRQ_NMI, "NMI"],
] as const;
/** The interrupts another CPU raises: inter-processor interrupts. */
export const IPI_BITS = IRQ_RESCHED | IRQ_CALL_FUNCTION | IRQ_PASID;

const XFEATURE_NAMES: Record<number, string> = {
  0: "x87",
  1: "SSE",
  2: "AVX",
  5: "opmask",
  6: "ZMM_Hi256",
  7: "Hi16_ZMM",
  9: "PKRU",
  10: "PASID",
  17: "XTILE_CFG",
  18: "XTILE_DATA",
};
const xfeatures = (v: number) =>
  v === 0
    ? "0"
    : `${hex(v)} (${Array.from({ length: XFEATURE_MAX }, (_, i) => i)
        .filter((i) => (v & (1 << i)) !== 0)
        .map((i) => XFEATURE_NAMES[i] ?? `bit ${i}`)
        .join("|")})`;

/** IA32_PASID (and its XSTATE image): bit 31 valid, bits 19:0 the PASID. */
export function pasidMsr(v: number): string {
  if (v === 0) return "0x0 (invalid)";
  const valid = (v & MSR_IA32_PASID_VALID) !== 0;
  return `${hex(v)} (${valid ? "valid" : "invalid"}, PASID ${v & 0xfffff})`;
}

const bitList = (words: ArrayLike<number>, start: number, n: number, what: string): string => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const word = words[start + i];
    if (word === 0) continue;
    for (let b = 0; b < 32; b++) if ((word & (1 << b)) !== 0) out.push(i * 32 + b);
  }
  return out.length === 0 ? "none" : out.map((x) => `${what}${x}`).join(", ");
};

/** The scenario's names for tasks: the process's name, idle tasks as swapper/N. */
export function taskName(k: Kernel, t: number): string {
  if (t <= 0 || t >= k.L.task.count) return "none";
  if (k.get(k.T.state, t) === TASK_FREE) return `task slot ${t} (free)`;
  if ((k.get(k.T.flags, t) & PF_IDLE) !== 0) return `"swapper/${k.get(k.T.cpu, t)}" (pid 0)`;
  const prog = k.programs[k.get(k.T.prog, t)];
  return `"${prog?.name ?? "?"}" (pid ${k.get(k.T.pid, t)})`;
}

/** The task's name alone, for filters: `leaver`, `swapper/0`. */
export function taskShortName(k: Kernel, t: number): string {
  if (t <= 0 || t >= k.L.task.count || k.get(k.T.state, t) === TASK_FREE) return "";
  if ((k.get(k.T.flags, t) & PF_IDLE) !== 0) return `swapper/${k.get(k.T.cpu, t)}`;
  return k.programs[k.get(k.T.prog, t)]?.name ?? "?";
}

const mmName = (mm: number) => (mm === 0 ? "init_mm" : `mm ${mm}`);
const pasidName = (p: number) => (p === 0 ? "none" : `PASID ${p}`);
const yesNo = (v: number) => (v === 0 ? "0" : "1");

/** The path names of a frame stack, outermost first. */
function stackOf(w: Int32Array, base: number, depth: number): string {
  if (depth <= 0) return "(none)";
  const names: string[] = [];
  for (let d = 0; d < depth; d++) names.push(pathById(w[base + d * FRAME_WORDS + FR_PATH]).name);
  return names.join(" > ");
}

/** Decode the whole machine state. */
export function decodeState(k: Kernel): Decoded {
  const entries = new Map<string, Entry>();
  const labels = new Map<string, string>();
  const live = new Set<string>();
  const w = k.w;
  const put = (struct: string, field: string, value: string, internal = false) => {
    entries.set(`${struct}.${field}`, { struct, field, value, internal });
  };
  const cpus = k.params.cpus;

  // --- globals
  const G = k.G;
  labels.set("kernel", "kernel");
  live.add("kernel");
  put("kernel", "nr_user_tasks", String(k.get(G.nr_user_tasks, 0)));
  put("kernel", "nr_mms", String(k.get(G.nr_mms, 0)));
  put("kernel", "nr_files", String(k.get(G.nr_files, 0)));
  put("kernel", "nr_bonds", String(k.get(G.nr_bonds, 0)));
  put("kernel", "nr_open_files", String(k.get(G.nr_open_files, 0)));
  const lock = k.get(G.sva_lock, 0);
  put("kernel", "iommu_sva_lock", lock === 0 ? "unlocked" : `held by ${taskName(k, lock)}`);
  put("kernel", "jiffies", String(k.get(G.jiffies, 0)));
  put("kernel", "global_asid_used", bitList(w, G.global_asid_used.at, G.global_asid_used.len, "ASID "));
  put("kernel", "global_asid_freed", bitList(w, G.global_asid_freed.at, G.global_asid_freed.len, "ASID "));
  put("kernel", "last_global_asid", String(k.get(G.last_global_asid, 0)));
  put("kernel", "global_asid_available", String(k.get(G.global_asid_available, 0)));
  for (const f of [
    "task_free",
    "mm_free",
    "files_free",
    "bond_free",
    "file_free",
    "next_pid",
    "mm_gen",
    "nr_timers",
  ] as const)
    put("kernel", f, String(k.get(G[f], 0)), true);
  for (let i = 0; i < G.fault_hits.len; i++)
    put("kernel", `fault_hits[${i}]`, String(w[G.fault_hits.at + i]), true);

  // --- the PASID allocator (iommu_global_pasid_ida): count at word 0, the ID bitmap from word 1
  labels.set("pasid_ida", "iommu_global_pasid_ida");
  live.add("pasid_ida");
  const idaAt = k.L.ida.f.words.at;
  const idaL0 = k.ida.bits > 5 ? 1 << (k.ida.bits - 5) : 1;
  put("pasid_ida", "allocated", bitList(w, idaAt + 1, idaL0, "PASID "));
  for (let i = 0; i < k.L.ida.f.words.len; i++) {
    if (w[idaAt + i] !== 0) put("pasid_ida", `words[${i}]`, hex(w[idaAt + i]), true);
  }

  // --- per CPU: the CPU itself, its XSTATE registers, cpu_tlbstate, its TLB
  const C = k.C;
  for (let c = 0; c < cpus; c++) {
    const s = `cpu[${c}]`;
    labels.set(s, `cpu ${c}`);
    live.add(s);
    put(s, "curr", taskName(k, k.get(C.curr, c)));
    put(s, "preempt_count", hex(k.get(C.preempt_count, c)));
    put(s, "irqs_off", yesNo(k.get(C.irqs_off, c)));
    put(s, "in_user", yesNo(k.get(C.in_user, c)));
    put(s, "pending", flagNames(k.get(C.pending, c), IRQS));
    put(s, "halted", yesNo(k.get(C.halted, c)));
    put(s, "irq_depth", String(k.get(C.irq_depth, c)));
    put(s, "irq stack", stackOf(w, C.irq_frames.at + c * C.irq_frames.stride, k.get(C.irq_depth, c)));
    put(s, "in_nmi", yesNo(k.get(C.in_nmi, c)));
    put(s, "nr_running", String(k.get(C.nr_running, c)));
    const rq: string[] = [];
    for (let t = k.get(C.rq_head, c), n = 0; t !== 0 && n < k.L.task.count; t = k.get(k.T.rq_next, t), n++)
      rq.push(taskName(k, t));
    put(s, "runqueue", rq.length === 0 ? "empty" : rq.join(", "));
    put(s, "prev_task", taskName(k, k.get(C.prev_task, c)));
    const pm = k.get(C.prev_mm, c);
    put(s, "rq->prev_mm", pm === 0 ? "none" : mmName(pm));
    for (let x = 0; x < XFEATURE_MAX; x++) {
      const v = w[C.xregs.at + c * C.xregs.stride + x];
      if (x === XFEATURE_PASID) put(s, "IA32_PASID", pasidMsr(v));
      else if (v !== 0) put(s, `xregs[${XFEATURE_NAMES[x] ?? x}]`, hex(v));
    }
    put(s, "xmodified", xfeatures(k.get(C.xmodified, c)));
    put(s, "last XRSTORS of", taskName(k, k.get(C.xrstor_task, c)));
    put(s, "fpu_fpregs_owner_ctx", taskName(k, k.get(C.fpregs_owner, c)));
    put(s, "fpregs_lock depth", String(k.get(C.fpregs_locked, c)));
    put(s, "CR3.pgd", mmName(k.get(C.cr3_mm, c)));
    const pcid = k.get(C.cr3_pcid, c);
    put(
      s,
      "CR3.PCID",
      `${hex(pcid)}${(pcid & 0x800) !== 0 ? ` (user PCID: kernel PCID ${pcid & 0x7ff} | bit 11)` : ""}`,
    );
    put(s, "CR3.user_half", yesNo(k.get(C.cr3_user, c)));
    put(s, "CR3.NOFLUSH (last write)", yesNo(k.get(C.cr3_noflush, c)));
    const sb = k.get(C.sb_loaded_mm, c);
    put(
      s,
      "store buffer",
      sb === 0
        ? "empty"
        : `cpu_tlbstate.loaded_mm := ${sb - 2 === LOADED_MM_SWITCHING ? "LOADED_MM_SWITCHING" : mmName(sb - 2)} (not yet visible)`,
    );
    if (k.get(C.in_nmi, c) !== 0) {
      put(s, "NMI saved CR3.pgd", mmName(k.get(C.nmi_cr3_mm, c)));
      put(s, "NMI saved CR3.PCID", hex(k.get(C.nmi_cr3_pcid, c)));
      put(s, "NMI saved CR3.user_half", yesNo(k.get(C.nmi_cr3_user, c)));
      put(s, "NMI from user", yesNo(k.get(C.nmi_from_user, c)));
    }
    put(
      s,
      "csd pending from",
      bitList(w, C.csd_pending.at + c * C.csd_pending.stride, C.csd_pending.len, "cpu "),
    );
    const fmm = k.get(C.fi_mm, c);
    if (fmm !== 0 || k.get(C.fi_waiting, c) !== 0) {
      put(s, "flush_tlb_info.mm", mmName(fmm));
      const pages = k.get(C.fi_pages, c);
      put(s, "flush_tlb_info.range", pages === 0 ? "TLB_FLUSH_ALL" : `pages 0..${pages - 1}`);
      put(s, "flush_tlb_info.new_tlb_gen", String(k.get(C.fi_gen, c)));
      put(s, "flush_tlb_info.freed_tables", yesNo(k.get(C.fi_freed, c)));
      put(s, "flush_tlb_info waiting for", String(k.get(C.fi_waiting, c)));
    }
    put(s, "idle", taskName(k, k.get(C.idle, c)), true);
    put(s, "rq_head", String(k.get(C.rq_head, c)), true);
    put(s, "rq_tail", String(k.get(C.rq_tail, c)), true);
    put(s, "sw_gen", String(k.get(C.sw_gen, c)), true);
    put(s, "tlb_next", String(k.get(C.tlb_next, c)), true);
    for (let i = 0; i < C.irq_frames.len; i++) {
      const v = w[C.irq_frames.at + c * C.irq_frames.stride + i];
      if (v !== 0) put(s, `irq_frames[${i}]`, String(v), true);
    }

    const ts = `cpu_tlbstate[${c}]`;
    labels.set(ts, `cpu_tlbstate[cpu ${c}]`);
    live.add(ts);
    const lm = k.get(C.loaded_mm, c);
    put(ts, "loaded_mm", lm === LOADED_MM_SWITCHING ? "LOADED_MM_SWITCHING" : mmName(lm));
    put(ts, "loaded_mm_asid", String(k.get(C.loaded_mm_asid, c)));
    put(ts, "next_asid", String(k.get(C.next_asid, c)));
    put(ts, "is_lazy", yesNo(k.get(C.is_lazy, c)));
    put(ts, "invalidate_other", yesNo(k.get(C.invalidate_other, c)));
    let mask = "";
    for (let i = 0; i < C.user_pcid_flush_mask.len; i++) {
      const v = w[C.user_pcid_flush_mask.at + c * C.user_pcid_flush_mask.stride + i];
      if (v !== 0 || i === 0) mask += `${i > 0 ? " " : ""}${i > 0 ? `[${i}]` : ""}${hex(v)}`;
    }
    put(ts, "user_pcid_flush_mask", mask);
    for (let a = 0; a < C.ctx_id.len; a++) {
      const id = w[C.ctx_id.at + c * C.ctx_id.stride + a];
      const gen = w[C.ctx_gen.at + c * C.ctx_gen.stride + a];
      if (id === 0 && gen === 0) continue;
      put(ts, `ctxs[${a}].ctx_id`, hex(id));
      put(ts, `ctxs[${a}].tlb_gen`, String(gen));
    }

    const tl = `tlb[${c}]`;
    labels.set(tl, `TLB of cpu ${c}`);
    live.add(tl);
    for (let i = 0; i < TLB_ENTRIES; i++) {
      const a = C.tlb.at + c * C.tlb.stride + i * TLBE_WORDS;
      if (w[a] === 0) continue;
      put(
        tl,
        `entry[${i}]`,
        `PCID ${hex(w[a] - 1)} page ${w[a + 1]}, ctx_id ${hex(w[a + 2])}, tlb_gen ${w[a + 3]}`,
      );
    }
  }

  // --- tasks
  const T = k.T;
  for (let t = 1; t < k.L.task.count; t++) {
    const s = `task[${t}]`;
    const st = k.get(T.state, t);
    labels.set(s, st === TASK_FREE ? `task slot ${t}` : `task ${taskName(k, t)}`);
    put(s, "__state", TASK_STATES[st] ?? String(st));
    if (st === TASK_FREE) continue;
    live.add(s);
    put(s, "flags", flagNames(k.get(T.flags, t), PF));
    put(s, "thread_info.flags", flagNames(k.get(T.tif, t), TIF));
    put(s, "pid", String(k.get(T.pid, t)));
    put(s, "tgid", String(k.get(T.tgid, t)));
    const mm = k.get(T.mm, t);
    put(s, "mm", mm === 0 ? "NULL" : mmName(mm));
    const am = k.get(T.active_mm, t);
    put(s, "active_mm", am === 0 ? "NULL" : mmName(am));
    const files = k.get(T.files, t);
    put(s, "files", files === 0 ? "NULL" : `files_struct ${files}`);
    put(s, "cpu", String(k.get(T.cpu, t)));
    put(s, "on_rq", yesNo(k.get(T.on_rq, t)));
    put(s, "exit_code", String(k.get(T.exit_code, t)));
    put(s, "pasid_activated", yesNo(k.get(T.pasid_activated, t)));
    put(s, "pasid_ref", yesNo(k.get(T.pasid_ref, t)));
    put(s, "kernel stack", stackOf(w, T.frames.at + t * T.frames.stride, k.get(T.depth, t)));
    put(s, "fpstate.xfeatures", xfeatures(k.get(T.xfeatures, t)));
    put(s, "fpstate.xcomp_bv", xfeatures(k.get(T.xcomp_bv, t)));
    for (let x = 0; x < XFEATURE_MAX; x++) {
      const v = w[T.xs.at + t * T.xs.stride + x];
      if (x === XFEATURE_PASID) put(s, "fpstate.IA32_PASID", pasidMsr(v));
      else if (v !== 0) put(s, `fpstate.xs[${XFEATURE_NAMES[x] ?? x}]`, hex(v));
      const f = w[T.sigframe.at + t * T.sigframe.stride + x];
      if (f !== 0) put(s, `sigframe[${XFEATURE_NAMES[x] ?? x}]`, hex(f));
    }
    put(s, "kernel-written components", xfeatures(k.get(T.xs_newer, t)));
    put(s, "fpu->perm", xfeatures(k.get(T.fpu_perm, t)));
    put(s, "fpu->last_cpu", String(k.get(T.fpu_last_cpu, t)));
    for (const f of ["rq_next", "ticks", "prog", "upc", "urem", "lsp", "fpu_gen", "depth"] as const)
      put(s, f, String(k.get(T[f], t)), true);
    for (let i = 0; i < T.loops.len; i++)
      put(s, `loops[${i}]`, String(w[T.loops.at + t * T.loops.stride + i]), true);
    for (let i = 0; i < T.frames.len; i++) {
      const v = w[T.frames.at + t * T.frames.stride + i];
      if (v !== 0) put(s, `frames[${i}]`, String(v), true);
    }
  }

  // --- mms: owned by the tasks that use them
  const M = k.M;
  for (let m = 1; m < k.L.mm.count; m++) {
    const s = `mm[${m}]`;
    const st = k.get(M.state, m);
    const users: string[] = [];
    if (st !== MM_FREE)
      for (let t = 1; t < k.L.task.count; t++)
        if (k.get(T.state, t) !== TASK_FREE && k.get(T.mm, t) === m) users.push(taskShortName(k, t));
    const owners = [...new Set(users)];
    labels.set(s, owners.length === 0 ? `mm ${m}` : `mm ${m} (${owners.join(", ")})`);
    put(s, "state", MM_STATES[st] ?? String(st));
    if (st === MM_FREE) continue;
    live.add(s);
    put(s, "mm_users", String(k.get(M.users, m)));
    put(s, "mm_count", String(k.get(M.count, m)));
    put(s, "pasid", pasidName(k.get(M.pasid, m)));
    put(s, "nr_bonds", String(k.get(M.nr_bonds, m)));
    put(s, "pasid_refs", String(k.get(M.pasid_refs, m)));
    put(s, "context.tlb_gen", String(k.get(M.tlb_gen, m)));
    const ga = k.get(M.global_asid, m);
    put(s, "context.global_asid", ga === 0 ? "none" : String(ga));
    put(s, "context.asid_transition", yesNo(k.get(M.asid_transition, m)));
    put(s, "mm_cpumask", bitList(w, M.cpumask.at + m * M.cpumask.stride, M.cpumask.len, "cpu "));
    for (let p = 0; p < TLB_PAGES; p++) {
      const g = w[M.page_gen.at + m * M.page_gen.stride + p];
      if (g !== 0) put(s, `page_gen[${p}]`, String(g));
    }
    put(s, "ctx_id", hex(k.get(M.gen, m) + 1));
    put(s, "gen", String(k.get(M.gen, m)), true);
    put(s, "next_free", String(k.get(M.next_free, m)), true);
  }

  // --- files_structs, device files, SVA bonds
  const F = k.F;
  for (let f = 1; f < k.L.files.count; f++) {
    if (k.get(F.count, f) === 0) continue;
    const s = `files[${f}]`;
    labels.set(s, `files_struct ${f}`);
    live.add(s);
    put(s, "count", String(k.get(F.count, f)));
    for (let i = 0; i < F.fd.len; i++) {
      const v = w[F.fd.at + f * F.fd.stride + i];
      if (v !== 0) put(s, `fd[${i}]`, v < 0 ? "being opened" : `file ${v}`);
    }
  }
  const FL = k.FL;
  const devName = (d: number) => (d === 0 ? "none" : (k.model.devices[d - 1]?.name ?? `dev ${d - 1}`));
  for (let f = 1; f < k.L.file.count; f++) {
    if (k.get(FL.count, f) === 0) continue;
    const s = `file[${f}]`;
    labels.set(s, `file ${f}`);
    live.add(s);
    put(s, "f_count", String(k.get(FL.count, f)));
    put(s, "device", devName(k.get(FL.dev, f)));
    put(s, "bond", String(k.get(FL.bond, f)));
    put(s, "ctx->pasid", pasidName(k.get(FL.pasid, f)));
    put(s, "opener", mmName(k.get(FL.opener, f)));
  }
  const B = k.B;
  for (let b = 1; b < k.L.bond.count; b++) {
    if (k.get(B.dev, b) === 0) continue;
    const s = `bond[${b}]`;
    labels.set(s, `iommu_sva ${b}`);
    live.add(s);
    put(s, "dev", devName(k.get(B.dev, b)));
    put(s, "mm", mmName(k.get(B.mm, b)));
    put(s, "pasid", pasidName(k.get(B.pasid, b)));
    put(s, "users", String(k.get(B.refs, b)));
    put(s, "private PASID", yesNo(k.get(B.priv, b)));
  }

  // --- devices: the shared work queue's descriptors in flight, PASID table, translation cache
  const D = k.D;
  for (let d = 0; d < k.model.devices.length; d++) {
    const dev = k.model.devices[d];
    const s = `dev[${d}]`;
    labels.set(s, dev.name);
    live.add(s);
    const head = k.get(D.wq_head, d);
    const n = k.get(D.wq_count, d);
    put(s, "wq_count", String(n));
    put(s, "wq_head", String(head), true);
    const wq = D.wq.at + d * D.wq.stride;
    for (let i = 0; i < n; i++) {
      const slot = (head + i) % dev.wqDepth;
      const a = wq + slot * DESC_WORDS;
      put(
        s,
        `wq[${slot}]`,
        `descriptor: PASID ${w[a]}, mm ${w[a + 1]}, submitted by ${taskName(k, w[a + 2])}`,
      );
    }
    const pt = D.pt.at + d * D.pt.stride;
    for (let i = 0; i < k.L.counts.ptSlots; i++) {
      const p = w[pt + i * PT_WORDS];
      if (p !== 0) put(s, `pasid_table[${i}]`, `PASID ${p} -> ${mmName(w[pt + i * PT_WORDS + 1])}`);
    }
    const tlb = D.tlb.at + d * D.tlb.stride;
    for (let i = 0; i < k.L.counts.tlbSlots; i++) {
      const p = w[tlb + i * PT_WORDS];
      if (p !== 0) put(s, `translation_cache[${i}]`, `PASID ${p} -> ${mmName(w[tlb + i * PT_WORDS + 1])}`);
    }
    const dr = D.drain.at + d * D.drain.stride;
    for (let i = 0; i < D.drain.len / 2; i++) {
      const t = w[dr + 2 * i];
      if (t !== 0) put(s, `drain_pasid waiter[${i}]`, `${taskName(k, t)} for PASID ${w[dr + 2 * i + 1]}`);
    }
    const kp = k.get(D.kernel_pasid, d);
    if (kp !== 0) put(s, "kernel wq PASID", pasidName(kp));
  }
  return { entries, labels, live };
}

/** The display name of an entry: its struct's label and the field. */
export const fieldName = (label: string, field: string) => `${label}.${field}`;

/**
 * What changed from `a` to `b`, named. A struct that came into use or went
 * out of it shows only as its state field, not as every field appearing or
 * vanishing.
 */
export function diffStates(a: Decoded, b: Decoded): FieldChange[] {
  const out: FieldChange[] = [];
  const label = (struct: string) =>
    (b.live.has(struct) ? b.labels.get(struct) : a.labels.get(struct)) ?? struct;
  for (const [key, eb] of b.entries) {
    const ea = a.entries.get(key);
    if (ea === undefined) {
      if (!a.live.has(eb.struct) && hasState(eb.struct) && !isStateField(eb.field)) continue;
      out.push(change(label(eb.struct), eb, "", eb.value));
    } else if (ea.value !== eb.value) out.push(change(label(eb.struct), eb, ea.value, eb.value));
  }
  for (const [key, ea] of a.entries) {
    if (b.entries.has(key)) continue;
    if (!b.live.has(ea.struct) && hasState(ea.struct) && !isStateField(ea.field)) continue;
    out.push(change(label(ea.struct), ea, ea.value, ""));
  }
  return out;
}

const isStateField = (f: string) => f === "__state" || f === "state";
/** Tasks and mms keep a state entry when free: their coming and going shows as that field alone. */
const hasState = (struct: string) => struct.startsWith("task[") || struct.startsWith("mm[");

function change(label: string, e: Entry, old: string, nw: string): FieldChange {
  const c: FieldChange = { field: fieldName(label, e.field), old, new: nw };
  if (e.internal) c.internal = true;
  return c;
}
