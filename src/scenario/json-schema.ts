// The JSON Schemas `asidlab schema` prints, for editors: the scenario file's
// and (`--sweep`) the sweep file's. zod's output, given an `$id`, a title,
// named `$defs`, enums for the names the engine checks (kernel variants) and
// a description on every key a person writes, from the tables that define
// them (policies, variants, ops, the metric glossary).

import { z } from "zod";
import { KERNEL_VARIANT_NAMES, KERNEL_VARIANTS, type POLICIES } from "../kernel/policy.js";
import { GLOSSARY } from "../machine/glossary.js";
import { type OpKind, ScenarioSchema } from "./schema.js";
import { SweepSpecSchema } from "./sweep-spec.js";

type Json = Record<string, unknown>;

const TOP: Record<string, string> = {
  name: "the scenario's name (used in reports and output file names)",
  seed: "seed of the simulated scheduler and jitter; compare/sweep use this seed and the next ones",
  machine: "the simulated machine: CPUs, PTI/PCID, ASID slots, XSTATE features, clock and scheduler timing",
  devices: "SVA devices (idxd-like shared work queues), by name; ops refer to them by that name",
  policy: "the kernel's policy switches; each value's first is mainline's default",
  costs: "cycle-cost overrides by cost kind (see src/machine/costs.ts)",
  kernel: "kernel variants: historical or proposed code (asidlab run --help lists them)",
  faults: "injected failures: the bind path step `at` fails on its nth run (or every run)",
  check: "defaults for `asidlab check`: properties, preemption bound, budgets, random walks",
  processes: "the workload: processes started at boot, each running a program",
};

const MACHINE: Record<string, string> = {
  cpus: "number of CPUs",
  pti: "page-table isolation: a user and a kernel page table per mm (CONFIG_MITIGATION_PAGE_TABLE_ISOLATION)",
  pcid: "CR4.PCIDE: TLB entries tagged by PCID, so a switch need not flush",
  invpcid: "the INVPCID instruction (else flushes go through CR3 writes)",
  asid_slots: "dynamic ASIDs per CPU (the kernel's TLB_NR_DYN_ASIDS is 6)",
  global_asids_in_use:
    "global ASIDs (tlb_shootdown: invlpgb) already held at boot by mms outside the scenario",
  initial_jiffies: "jiffies at boot (INITIAL_JIFFIES): consider_global_asid samples pid against it",
  pasid_bits: "width of the PASID space (20 bits: PASIDs 1..2^20-1)",
  xfeatures: "XSTATE components the CPU enables (XCR0)",
  cpuid_xstate: "CPUID(0xD, i) entries that differ from the built-in table",
  xcomp_perm: "dynamic components every process may use from the start (as if ARCH_REQ_XCOMP_PERM)",
  softirq_fpu: "a softirq on every interrupt exit uses the FPU, saving the interrupted user registers",
  nmi: "a perf NMI with every tick, taken at the next step boundary whatever IF says",
  cpu_mhz: "CPU clock: cycles per microsecond",
  tick_ns: "scheduler tick period (1/HZ)",
  timeslice_ns: "time a task runs before a tick preempts it",
  quantum_ns: "how far one CPU may run ahead of the others in `run` (0: exact time order)",
  jitter_pct: "seeded variation of user compute time in `run`, percent either way",
};

const POLICY_DOCS: Record<keyof typeof POLICIES, string> = {
  pasid_lifetime:
    "when an mm's PASID is freed: at mm teardown (mm, mainline), at unbind, by task refcount, or never (static)",
  pasid_msr:
    "how IA32_PASID reaches a thread: lazily by the #GP fixup (mainline), or eagerly by IPI, task_work or at context switch",
  user_asid_flush: "PTI user-ASID flush: deferred to the return to user (mainline) or immediate",
  tlb_shootdown: "remote TLB flushes by IPI (mainline) or by INVLPGB broadcast with global ASIDs",
  user_flush_test: "how the deferred user-flush mask is tested and cleared: bt+btr (mainline) or btr",
  xstate_helper:
    "how the kernel rewrites a task's xstate component: lock-and-load (mainline), update or replace",
  xstate_check: "the debug copy that checks an xstate write's size and XSTATE_BV bit",
  nmi_restore_cr3: "whether an NMI restores CR3 on exit: paranoid (mainline) or always",
  lazy_tlb: "what an idle CPU keeps loaded: the last mm (lazy, mainline) or init_mm",
};

const OPS: Record<OpKind | "private" | "tables" | "change" | "do" | "count", string> = {
  bind: "open the device and bind the mm to it (iommu_sva_bind_device): the first bind allocates the PASID",
  private: "with bind: a private (non-shared) bond",
  unbind: "close the device (the file's release unbinds)",
  enqcmd: "submit one descriptor with ENQCMD (retried while the queue is full)",
  wait: "wait for this task's descriptors on the device to complete",
  compute: "user-mode work for this many ns",
  syscall: "a system call that spends this many ns in the kernel",
  yield: "sched_yield()",
  sleep: "nanosleep for this many ns (an hrtimer wakes the task)",
  fpu: "user code writes these components of its registers",
  xstate_write:
    "a syscall that changes these components of the caller's xstate (through policy.xstate_helper)",
  kernel_fpu: "a syscall that uses the FPU in the kernel (kernel_fpu_begin/end)",
  req_xcomp_perm: "arch_prctl(ARCH_REQ_XCOMP_PERM, ...)",
  gp_fault: "an instruction that takes #GP for another reason than ENQCMD's (the fixup cannot tell)",
  signal: "a signal with a handler: delivered on the way to user, the handler returns at once (rt_sigreturn)",
  mmap: "map this many pages",
  munmap: "unmap this many pages (flush_tlb_mm_range)",
  tables: "with munmap: whether it frees the page table (auto: when no present page of the mm is left in it)",
  mprotect: "change the protection of this many pages",
  change:
    "with mprotect: what the change does to the present PTEs (restrict and upgrade flush on x86; from-none does not)",
  set_fixmap:
    "a syscall whose driver changes N kernel PTEs of this CPU (set_pte_vaddr): flush_tlb_one_kernel each",
  touch: "a user-mode access to pages 0 .. N-1 (through the TLB)",
  fork: "fork(): a child process (its own mm) running this program",
  clone_thread: "clone(CLONE_THREAD|CLONE_VM): a thread of this process running this program",
  clone_vm: "clone(CLONE_VM) without CLONE_THREAD: a process sharing this mm",
  exec: "execve(): a new mm running this program",
  exit: "exit with this code",
  repeat: "run `do` this many times",
  do: "with repeat: the loop body",
  count: "perform the op this many times in a row",
};

function describeKeys(obj: unknown, docs: Record<string, string>): void {
  const props = (obj as Json | undefined)?.properties as Record<string, Json> | undefined;
  if (props === undefined) return;
  for (const [k, v] of Object.entries(props)) if (docs[k] !== undefined) v.description = docs[k];
}

/** Every `#/$defs/OLD` reference in `node` renamed per `names`. */
function renameRefs(node: unknown, names: Record<string, string>): void {
  if (Array.isArray(node)) {
    for (const x of node) renameRefs(x, names);
    return;
  }
  if (typeof node !== "object" || node === null) return;
  const o = node as Json;
  if (typeof o.$ref === "string") {
    const m = /^#\/\$defs\/(.+)$/.exec(o.$ref);
    if (m !== null && names[m[1]] !== undefined) o.$ref = `#/$defs/${names[m[1]]}`;
  }
  for (const v of Object.values(o)) renameRefs(v, names);
}

/** zod's generated `$defs` names (`__schema0`) as what they are: a program, a list of ops. */
function nameDefs(s: Json): void {
  const defs = s.$defs as Record<string, Json> | undefined;
  if (defs === undefined) return;
  const names: Record<string, string> = {};
  for (const [k, v] of Object.entries(defs)) {
    if (Array.isArray(v.anyOf)) names[k] = "program";
    else if (v.type === "array") names[k] = "ops";
    else throw new Error(`schema: an unexpected $defs entry ${k}`);
  }
  if (new Set(Object.values(names)).size !== Object.keys(names).length)
    throw new Error("schema: two $defs entries of one kind");
  renameRefs(s, names);
  s.$defs = Object.fromEntries(Object.entries(defs).map(([k, v]) => [names[k], v]));
  const program = (s.$defs as Record<string, Json>).program;
  program.description = "a list of ops, or a mapping with `do: [ops]` and optionally `repeat: N`";
  const ops = (s.$defs as Record<string, Json>).ops;
  ops.description = "ops run in order; each list item is a mapping with exactly one op key";
  describeKeys(ops.items, OPS);
}

const KERNEL_ITEMS = {
  type: "string",
  enum: KERNEL_VARIANT_NAMES,
  description: `a kernel variant: ${KERNEL_VARIANT_NAMES.map((n) => `${n} (${KERNEL_VARIANTS[n].description})`).join("; ")}`,
};

/** The scenario file's JSON Schema (draft 2020-12). */
export function scenarioJsonSchema(): object {
  const s = z.toJSONSchema(ScenarioSchema, { io: "input" }) as Json;
  const props = s.properties as Record<string, Json>;
  describeKeys(s, TOP);
  describeKeys(props.machine, MACHINE);
  describeKeys(props.policy, POLICY_DOCS);
  props.kernel.items = KERNEL_ITEMS;
  nameDefs(s);
  return {
    $schema: s.$schema,
    $id: "urn:asidlab:schema:scenario:v1",
    title: "asidlab scenario",
    description:
      "A workload on a simulated x86 machine for asidlab run/check/compare (docs: README, `asidlab metrics`).",
    ...Object.fromEntries(Object.entries(s).filter(([k]) => k !== "$schema")),
  };
}

/** The sweep file's JSON Schema (`asidlab schema --sweep`). */
export function sweepJsonSchema(): object {
  const s = z.toJSONSchema(SweepSpecSchema, { io: "input" }) as Json;
  const metricNames = GLOSSARY.map((d) => d.name);
  describeKeys(s, {
    name: "the sweep's name (in every result line)",
    scenarios: "scenario files (relative to the sweep file) or built-in scenario names",
    seeds: "seeds per cell: each scenario's seed and the next ones",
    vary: 'varied keys, as compare\'s --vary: a policy, `kernel` (variants joined by +, or mainline) or a path such as machine.cpus, optionally named `label=key` ("idle threads=processes.0.count"); each with its values',
    policies: "policy values to cross with everything else, per policy",
    metrics: "the metrics each result line keeps (default: all; see `asidlab metrics`)",
    max_steps: "stop each run after this many steps",
  });
  const props = s.properties as Record<string, Json>;
  if (props.metrics !== undefined) {
    props.metrics.items = {
      type: "string",
      enum: metricNames,
      description: "a metric name (asidlab metrics)",
    };
  }
  return {
    $schema: s.$schema,
    $id: "urn:asidlab:schema:sweep:v1",
    title: "asidlab sweep",
    description: "Scenarios x varied values x policies x seeds for `asidlab sweep`.",
    ...Object.fromEntries(Object.entries(s).filter(([k]) => k !== "$schema")),
  };
}
