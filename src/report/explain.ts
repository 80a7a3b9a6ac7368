// A counterexample read as a bug report: replay the schedule, decode the
// state before and after every step into kernel structs (fields.ts), name
// who acted (CPU, task by its scenario name, device) and in what context
// (user, kernel, interrupt, NMI), which IPIs and interrupts it raised, what it
// changed, and close with why the property broke: the rule in words, the
// finding, and the fields the property reads at the violating step, each
// with the step that last wrote it. `replay`, `check` and `view` all read
// counterexamples through this.

import { cpu_peek } from "../engine/cpu.js";
import { describeTransition, TR_CPU, TR_DEVICE, TR_TICK, trArg, trKind } from "../engine/engine.js";
import { CORE_INVARIANTS } from "../engine/invariants.js";
import type { Kernel } from "../kernel/kernel.js";
import { PF_IDLE } from "../machine/state.js";
import type { CompiledScenario } from "../scenario/compile.js";
import { replaySchedule } from "../search/replay.js";
import {
  type Decoded,
  decodeState,
  diffStates,
  type FieldChange,
  fieldName,
  taskName,
  taskShortName,
} from "./fields.js";

export type StepContext = "user" | "kernel" | "irq" | "nmi" | "idle" | "device" | "timer";

/** A raw delta between two decoded states, enough for a page to rebuild each state from the first. */
export interface StateDelta {
  /** [key, struct, field, value, internal 0/1] */
  set: [string, string, string, string, number][];
  del: string[];
  /** Struct labels that changed: [struct, label]. */
  labels: [string, string][];
}

export interface ExplainedStep {
  /** 1-based, as in the listings. */
  n: number;
  transition: string;
  kind: "cpu" | "tick" | "timer" | "device";
  /** The timeline lane: `cpu 0`, the device's name, or `timers`. */
  lane: string;
  cpu: number | null;
  device: number | null;
  /** The task that ran (short name: `leaver`), its pid; "" and -1 for devices. */
  task: string;
  pid: number;
  /** Who acted, in words: `cpu 0 "leaver" (pid 1)`, `dsa0`. */
  actor: string;
  /** The kernel function (path) and step; `label` without repeats (`SWITCH_TO_USER_CR3`, not twice). */
  path: string;
  step: string;
  label: string;
  context: StepContext;
  /** The CPU switched to another task in this step: its name. */
  switchTo: string | null;
  /** Interrupts this step raised on CPUs: IPIs, a device's completion interrupt. */
  raises: { cpu: number; what: string }[];
  changes: FieldChange[];
  delta: StateDelta;
}

export interface FieldRead {
  field: string;
  value: string;
  /** The last step (1-based) at or before the violation that wrote it; 0: the initial state. */
  since: number;
  /** Its value before that step ("" if it did not exist). */
  before: string;
}

export interface Explained {
  scenario: string;
  property: string;
  /** The property's rule in words. */
  rule: string;
  /** The finding, with tasks named. */
  message: string;
  /** 1-based step where the property broke. */
  violation: number;
  cpus: number;
  devices: string[];
  tasks: string[];
  init: StateDelta;
  steps: ExplainedStep[];
  reads: FieldRead[];
}

/** Which fields each property reads (by struct key and field name). */
function readsOf(property: string): ((struct: string, field: string) => boolean) | null {
  const pasid = (s: string, f: string) =>
    (s === "pasid_ida" && f === "allocated") ||
    (s.startsWith("mm[") && f === "pasid") ||
    (s.startsWith("dev[") && /^(wq\[|pasid_table|translation_cache|kernel wq|drain)/.test(f)) ||
    (s.startsWith("bond[") && f === "pasid") ||
    (s.startsWith("file[") && f === "ctx->pasid");
  const msr = (s: string, f: string) =>
    (s.startsWith("cpu[") && /^(IA32_PASID|curr|in_user)$/.test(f)) ||
    (s.startsWith("task[") && /^(fpstate\.IA32_PASID|pasid_activated|mm|thread_info\.flags)$/.test(f)) ||
    (s.startsWith("mm[") && f === "pasid");
  const fpu = (s: string, f: string) =>
    (s.startsWith("cpu[") &&
      /^(fpu_fpregs_owner_ctx|curr|in_user|xmodified|fpregs_lock depth|last XRSTORS of)$/.test(f)) ||
    (s.startsWith("task[") && /^(thread_info\.flags|fpu->last_cpu|fpstate\.|kernel-written)/.test(f));
  const tlb = (s: string, f: string) =>
    s.startsWith("tlb[") ||
    (s.startsWith("cpu_tlbstate[") && /^(loaded_mm|loaded_mm_asid|ctxs)/.test(f)) ||
    (s.startsWith("mm[") && /^(context\.tlb_gen|page_gen|ctx_id)/.test(f)) ||
    (s.startsWith("cpu[") && /^(CR3\.|curr$|store buffer)/.test(f));
  const cr3 = (s: string, f: string) =>
    s.startsWith("cpu_tlbstate[") ||
    (s.startsWith("cpu[") && /^(CR3\.|NMI|curr$|in_user$|store buffer)/.test(f)) ||
    (s.startsWith("mm[") && f === "ctx_id");
  const mm = (s: string, f: string) =>
    (s.startsWith("mm[") && /^(state|mm_users|mm_count)$/.test(f)) ||
    (s.startsWith("task[") && /^(mm|active_mm|__state)$/.test(f)) ||
    (s.startsWith("cpu[") && /^(curr|rq->prev_mm)$/.test(f)) ||
    (s.startsWith("cpu_tlbstate[") && f === "loaded_mm");
  const sched = (s: string, f: string) =>
    (s.startsWith("cpu[") &&
      /^(preempt_count|irqs_off|irq_depth|in_user|runqueue|curr|irq stack)$/.test(f)) ||
    (s.startsWith("task[") && /^(kernel stack|on_rq|__state)$/.test(f));
  const table: Record<string, (s: string, f: string) => boolean> = {
    "pasid-reuse": pasid,
    "pasid-freed-once": pasid,
    "pasid-refcount": pasid,
    "pasid-leak": pasid,
    "dma-address-space": pasid,
    "enqcmd-pasid": (s, f) => pasid(s, f) || msr(s, f),
    "pasid-msr": msr,
    "pasid-lost": msr,
    "fpu-owner": fpu,
    "fpu-lost-update": fpu,
    "fpu-state": fpu,
    "xstate-copy": fpu,
    "tlb-stale": tlb,
    cr3,
    "nmi-cr3": cr3,
    "asid-slot": cr3,
    "user-mask": cr3,
    "mm-use-after-free": mm,
    "mm-refcount": mm,
    "mm-freed-once": mm,
    "no-leak": mm,
    "mm-leak": mm,
    "task-leak": mm,
    exit: mm,
    "sched-atomic": sched,
    "kernel-stack": sched,
    runqueue: sched,
    "sched-idle": sched,
    "sva-lock": (s, f) => s === "kernel" && f === "iommu_sva_lock",
  };
  return table[property] ?? null;
}

function deltaOf(a: Decoded | null, b: Decoded): StateDelta {
  const set: StateDelta["set"] = [];
  const del: string[] = [];
  const labels: [string, string][] = [];
  for (const [key, e] of b.entries) {
    const old = a?.entries.get(key);
    if (old === undefined || old.value !== e.value)
      set.push([key, e.struct, e.field, e.value, e.internal ? 1 : 0]);
  }
  if (a !== null) for (const key of a.entries.keys()) if (!b.entries.has(key)) del.push(key);
  for (const [s, l] of b.labels) if (a?.labels.get(s) !== l) labels.push([s, l]);
  return { set, del, labels };
}

/** `task 3` in a finding's message, as the scenario names it. */
function nameTasks(k: Kernel, message: string): string {
  return message.replace(/\btask (\d+)\b/g, (m, t: string) => {
    const n = Number(t);
    return n > 0 && n < k.L.task.count ? `task ${taskName(k, n)}` : m;
  });
}

/** Replay `schedule` and explain every step. Throws (an Error) when it does not replay to a finding. */
export function explainSchedule(
  cs: CompiledScenario,
  properties: readonly string[],
  schedule: readonly number[],
): Explained {
  const steps: ExplainedStep[] = [];
  let prev: Decoded | null = null;
  let init: StateDelta | null = null;
  let last: Kernel | null = null;
  let beforeLast: Decoded | null = null;
  let pre: {
    task: string;
    pid: number;
    actor: string;
    path: string;
    step: string;
    context: StepContext;
    curr: number;
  } | null = null;
  const r = replaySchedule(cs.boot, properties, schedule, {
    before(_i, tr, k) {
      if (prev === null) {
        prev = decodeState(k);
        init = deltaOf(null, prev);
      }
      const kind = trKind(tr);
      const arg = trArg(tr);
      if (kind === TR_CPU || kind === TR_TICK) {
        const t = k.curr(arg);
        const peek = kind === TR_TICK ? "apic: tick" : cpu_peek(k, arg);
        const sep = peek.indexOf(": ");
        const path = sep < 0 ? peek : peek.slice(0, sep);
        const step = sep < 0 ? peek : peek.slice(sep + 2);
        const idle = (k.get(k.T.flags, t) & PF_IDLE) !== 0;
        const context: StepContext =
          k.get(k.C.in_nmi, arg) !== 0 || peek === "NMI entry"
            ? "nmi"
            : k.get(k.C.irq_depth, arg) > 0 || peek === "interrupt entry"
              ? "irq"
              : path === "user"
                ? "user"
                : idle
                  ? "idle"
                  : "kernel";
        pre = {
          task: taskShortName(k, t),
          pid: k.get(k.T.pid, t),
          actor: `cpu ${arg} ${taskName(k, t)}`,
          path,
          step,
          context,
          curr: t,
        };
      } else if (kind === TR_DEVICE) {
        const name = k.model.devices[arg].name;
        pre = {
          task: "",
          pid: -1,
          actor: name,
          path: name,
          step: "completes a descriptor",
          context: "device",
          curr: 0,
        };
      } else {
        pre = {
          task: taskShortName(k, arg),
          pid: k.get(k.T.pid, arg),
          actor: `hrtimer of ${taskName(k, arg)}`,
          path: "hrtimer",
          step: "expires",
          context: "timer",
          curr: arg,
        };
      }
    },
    after(i, tr, k) {
      const now = decodeState(k);
      const kind = trKind(tr);
      const arg = trArg(tr);
      const p = pre!;
      const was = prev!;
      const cpu = kind === TR_CPU || kind === TR_TICK ? arg : null;
      const raises: { cpu: number; what: string }[] = [];
      for (let c = 0; c < k.params.cpus; c++) {
        const key = `cpu[${c}].pending`;
        const a = was.entries.get(key)?.value ?? "0";
        const b = now.entries.get(key)?.value ?? "0";
        if (a === b || b === "0") continue;
        const bits = (v: string) =>
          new Set((/\((.*)\)/.exec(v)?.[1] ?? "").split("|").filter((x) => x !== ""));
        const before = bits(a);
        for (const what of bits(b))
          if (!before.has(what) && !(kind === TR_TICK && what === "LOCAL_TIMER" && c === arg))
            raises.push({ cpu: c, what });
        if (kind === TR_TICK && c === arg) raises.push({ cpu: c, what: "LOCAL_TIMER (tick)" });
      }
      const switchTo =
        cpu !== null && k.curr(cpu) !== p.curr && kind === TR_CPU ? taskName(k, k.curr(cpu)) : null;
      const label = kind === TR_TICK ? "tick" : p.path === p.step ? p.path : `${p.path}: ${p.step}`;
      steps.push({
        n: i + 1,
        transition: describeTransition(tr),
        kind: kind === TR_CPU ? "cpu" : kind === TR_TICK ? "tick" : kind === TR_DEVICE ? "device" : "timer",
        lane: cpu !== null ? `cpu ${cpu}` : kind === TR_DEVICE ? k.model.devices[arg].name : "timers",
        cpu,
        device: kind === TR_DEVICE ? arg : null,
        task: p.task,
        pid: p.pid,
        actor: kind === TR_TICK ? `the tick on cpu ${arg}` : p.actor,
        path: kind === TR_TICK ? "apic" : p.path,
        step: kind === TR_TICK ? "tick" : p.step,
        label,
        context: kind === TR_TICK ? "irq" : p.context,
        switchTo,
        raises,
        changes: diffStates(was, now),
        delta: deltaOf(was, now),
      });
      beforeLast = was;
      prev = now;
      last = k;
    },
  });
  if (r.error !== null) throw new Error(r.error);
  if (r.finding === null || last === null || init === null)
    throw new Error("the schedule does not reach a violation");
  const k = last as Kernel;
  const final = prev as unknown as Decoded;
  const property = r.finding.property;
  const inv = CORE_INVARIANTS.find((i) => i.name === property);
  const message = nameTasks(k, r.finding.message);
  // The fields the property reads, at the violating step; narrowed to the PASID the finding names.
  const pick = readsOf(property);
  const named = /PASID (\d+)/.exec(r.finding.message)?.[1];
  const keys: string[] = [];
  if (pick !== null) {
    for (const [key, e] of final.entries) {
      if (e.internal || !final.live.has(e.struct) || !pick(e.struct, e.field)) continue;
      if (named !== undefined && e.struct !== "pasid_ida" && !new RegExp(`PASID ${named}\\b`).test(e.value))
        continue;
      keys.push(key);
    }
    // What the violating step took away (a freed PASID, a cleared field) is read too.
    for (const c of steps[steps.length - 1].delta.set) {
      const [key, struct, field] = c;
      if (!keys.includes(key) && pick(struct, field) && c[4] === 0) keys.push(key);
    }
    const gone = beforeLast as Decoded | null;
    for (const key of steps[steps.length - 1].delta.del) {
      const e = gone?.entries.get(key);
      if (e !== undefined && !e.internal && pick(e.struct, e.field)) keys.push(key);
    }
  }
  if (keys.length === 0) for (const c of steps[steps.length - 1].delta.set) if (c[4] === 0) keys.push(c[0]);
  // Narrowed to the actors that matter: the acting CPU, the tasks, mm and page the finding names
  // (else the task running on the acting CPU).
  const act = steps[steps.length - 1];
  const namedTasks = [...message.matchAll(/task ("[^"]*" \(pid \d+\))/g)].map((m) => m[1]);
  if (namedTasks.length === 0 && act.cpu !== null)
    namedTasks.push(final.entries.get(`cpu[${act.cpu}].curr`)?.value ?? "");
  const namedMms = [...message.matchAll(/\bmm (\d+)/g)].map((m) => `mm[${m[1]}]`);
  const page = /\bpage (\d+)/.exec(message)?.[1];
  const structOf = (key: string) =>
    final.entries.get(key)?.struct ?? (beforeLast as Decoded | null)?.entries.get(key)?.struct ?? "";
  const matters = (key: string) => {
    const st = structOf(key);
    const c = /^(?:cpu|cpu_tlbstate|tlb)\[(\d+)\]$/.exec(st);
    if (c !== null && act.cpu !== null && Number(c[1]) !== act.cpu) return false;
    if (st.startsWith("task[")) {
      const label = final.labels.get(st) ?? "";
      if (!namedTasks.some((t) => label.includes(t))) return false;
    }
    if (st.startsWith("mm[") && namedMms.length > 0 && !namedMms.includes(st)) return false;
    if (
      st.startsWith("tlb[") &&
      page !== undefined &&
      !(final.entries.get(key)?.value ?? "").includes(`page ${page},`)
    )
      return false;
    return true;
  };
  const narrowed = keys.filter(matters);
  // Each read field's history: the last step that wrote it, and its value before.
  const want = new Set((narrowed.length > 0 ? narrowed : keys).slice(0, 16));
  const cur = new Map<string, string>();
  const hist = new Map<string, { since: number; before: string }>();
  const start = init as StateDelta;
  for (const [key, , , value] of start.set) if (want.has(key)) cur.set(key, value);
  for (const s of steps) {
    for (const [key, , , value] of s.delta.set) {
      if (!want.has(key)) continue;
      hist.set(key, { since: s.n, before: cur.get(key) ?? "" });
      cur.set(key, value);
    }
    for (const key of s.delta.del) {
      if (!want.has(key)) continue;
      hist.set(key, { since: s.n, before: cur.get(key) ?? "" });
      cur.delete(key);
    }
  }
  const reads: FieldRead[] = [...want].map((key) => {
    const h = hist.get(key) ?? { since: 0, before: "" };
    const e = final.entries.get(key);
    if (e === undefined) {
      const g = (beforeLast as Decoded | null)?.entries.get(key);
      const label =
        g === undefined ? key : fieldName((beforeLast as Decoded).labels.get(g.struct) ?? g.struct, g.field);
      return { field: label, value: "(gone)", ...h };
    }
    return { field: fieldName(final.labels.get(e.struct) ?? e.struct, e.field), value: e.value, ...h };
  });
  const tasks = new Set<string>();
  for (const s of steps) if (s.task !== "") tasks.add(s.task);
  return {
    scenario: cs.name,
    property,
    rule: inv?.description ?? property,
    message,
    violation: r.at,
    cpus: k.params.cpus,
    devices: k.model.devices.map((d) => d.name),
    tasks: [...tasks],
    init: start,
    steps,
    reads,
  };
}

export interface ListingFilter {
  from?: number;
  to?: number;
  cpu?: number;
  /** A task's name or pid. */
  task?: string;
  /** Show the model's internal fields too. */
  raw?: boolean;
}

const show = (v: string) => (v === "" ? "(none)" : v);

function changeText(c: FieldChange): string {
  if (c.old === "") return `${c.field} = ${c.new} (new)`;
  if (c.new === "") return `${c.field}: ${c.old} -> (gone)`;
  return `${c.field}: ${show(c.old)} -> ${show(c.new)}`;
}

/** One step as text: a header line and its visible changes, indented. */
export function stepText(s: ExplainedStep, raw: boolean, violation: number): string[] {
  const hidden = raw ? 0 : s.changes.filter((c) => c.internal).length;
  // The kernel stack is the step's label already; the listing folds it (the explorer shows it).
  const folded = (c: FieldChange) =>
    !raw && (c.internal === true || /\.(kernel stack|irq stack)$/.test(c.field));
  const ctx =
    s.context === "kernel" || s.context === "device" || s.context === "timer" ? "" : ` [${s.context}]`;
  const more = hidden > 0 ? `  (+${hidden} internal)` : "";
  const mark = s.n === violation ? "  <== violation" : "";
  const out = [`  ${String(s.n).padStart(4)}  ${s.actor}${ctx}: ${s.label}${more}${mark}`];
  if (s.switchTo !== null) out.push(`          context switch to ${s.switchTo}`);
  for (const r of s.raises) out.push(`          raises ${r.what} on cpu ${r.cpu}`);
  for (const c of s.changes) if (!folded(c)) out.push(`          ${changeText(c)}`);
  return out;
}

/** Does a step pass the listing's filters? */
export function stepMatches(s: ExplainedStep, f: ListingFilter): boolean {
  if (f.from !== undefined && s.n < f.from) return false;
  if (f.to !== undefined && s.n > f.to) return false;
  if (f.cpu !== undefined && s.cpu !== f.cpu) return false;
  if (f.task !== undefined && s.task !== f.task && String(s.pid) !== f.task) return false;
  return true;
}

/** Why the property broke: the rule, the finding, and the fields it reads at the violating step. */
export function whyText(ex: Explained): string[] {
  const v = ex.steps[ex.violation - 1];
  const out = [
    `why ${ex.property} broke at step ${ex.violation} (${v.actor}: ${v.label}):`,
    `  the rule:   ${ex.rule}`,
    `  broken:     ${ex.message}`,
  ];
  if (ex.reads.length > 0) out.push(`  the fields it reads at step ${ex.violation}:`);
  for (const r of ex.reads) {
    const who =
      r.since === 0
        ? "since the start"
        : `step ${r.since}: ${ex.steps[r.since - 1].actor}: ${ex.steps[r.since - 1].label}`;
    const was = r.since > 0 && r.before !== "" ? `, was ${r.before}` : "";
    out.push(`    ${r.field} = ${r.value}`, `        (${who}${was})`);
  }
  return out;
}

/** The whole listing: the steps that pass the filter, then why the property broke. */
export function listingText(ex: Explained, f: ListingFilter = {}): string {
  const out: string[] = [];
  const shown = ex.steps.filter((s) => stepMatches(s, f));
  for (const s of shown) out.push(...stepText(s, f.raw === true, ex.violation));
  if (shown.length < ex.steps.length) out.push(`  (${shown.length} of ${ex.steps.length} steps shown)`);
  out.push("", ...whyText(ex));
  return `${out.join("\n")}\n`;
}
