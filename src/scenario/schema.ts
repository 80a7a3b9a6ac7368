/**
 * The scenario file format (docs/scenarios.md): a zod schema that validates a parsed YAML/JSON
 * document and applies defaults, plus the normalised form of programs that later stages execute.
 *
 * Every object is strict, so a misspelt key is an error rather than silently ignored.
 */
import { z } from "zod";
import { POLICIES, type Policies, type Policy, type PolicyKey } from "../kernel/policy.js";
import { MAX_ASID_AVAILABLE } from "../machine/state.js";

/** Where a node sits in the scenario document: mapping keys and list indices, from the top. */
export type DocPath = (string | number)[];

export const XFEATURES = [
  "x87",
  "sse",
  "avx",
  "opmask",
  "zmm_hi256",
  "hi16_zmm",
  "pkru",
  "pasid",
  "amx_tilecfg",
  "amx_tiledata",
  "amx",
] as const;
export type XFeature = (typeof XFEATURES)[number];

/** Steps of the bind path where a scenario can inject a failure (`faults:`). */
export const FAULT_SITES = [
  "alloc_file",
  "iommu_alloc_mm_data",
  "iommu_sva_bind_device",
  "iommu_attach_device_pasid",
] as const;
export type FaultSite = (typeof FAULT_SITES)[number];

/** Upper bound on tasks declared up front: the sum over processes of count x threads. */
export const MAX_TASKS = 100_000;

const DEVICE_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const PROCESS_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

// Range first: a number past the range is told the range, not zod's safe-integer bound.
const int = (min: number, max: number) => z.number().min(min).max(max).int();
const quote = (s: string) => `'${s}'`;

/** A strict object whose unknown-key error names the keys it does accept. */
function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === "unrecognized_keys"
        ? `unknown key ${iss.keys.map(quote).join(", ")} (expected one of: ${known})`
        : undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// machine, devices, policy

const MachineSchema = strict({
  cpus: int(1, 256).default(2),
  pti: z.boolean().default(true),
  pcid: z.boolean().default(true),
  invpcid: z.boolean().default(true),
  asid_slots: int(1, MAX_ASID_AVAILABLE).default(6),
  /** Global ASIDs (tlb_shootdown: invlpgb) already held at boot by mms outside the scenario: a machine that has run a while. */
  global_asids_in_use: int(0, MAX_ASID_AVAILABLE - 2).default(0),
  /** jiffies at boot (the kernel's INITIAL_JIFFIES): consider_global_asid samples pid against it. */
  initial_jiffies: int(0, 2 ** 31 - 1).default(0),
  pasid_bits: int(1, 20).default(20),
  xfeatures: z
    .array(z.enum(XFEATURES))
    .max(XFEATURES.length)
    .default((): XFeature[] => ["x87", "sse", "avx", "pkru", "pasid"]),
  /** CPUID(0xD, i) entries that differ from the built-in table (size, standard offset, 64-byte alignment). */
  cpuid_xstate: z
    .record(
      z.string(),
      strict({
        size: int(1, 1 << 20).optional(),
        offset: int(0, 1 << 20).optional(),
        align64: z.boolean().optional(),
      }),
    )
    .default(() => ({})),
  /** Dynamic components every process may use from the start, as if it had called ARCH_REQ_XCOMP_PERM. */
  xcomp_perm: z
    .array(z.enum(["amx", "amx_tiledata"]))
    .max(2)
    .default(() => []),
  /** A softirq on every interrupt exit uses the FPU (crypto, networking): it saves the interrupted user registers. */
  softirq_fpu: z.boolean().default(false),
  /** A perf NMI with every tick, taken at the next step boundary whatever IF says (and explored by `check`). */
  nmi: z.boolean().default(false),
  cpu_mhz: int(100, 10_000).default(2000),
  tick_ns: int(1000, 100_000_000).default(1_000_000),
  timeslice_ns: int(1000, 1_000_000_000).default(3_000_000),
  /** How far one CPU may run ahead of the others in `run` (0: exact time order). */
  quantum_ns: int(0, 1_000_000).default(500),
  /** Seeded variation of user compute time in `run`, in percent either way (0: none). */
  jitter_pct: int(0, 50).default(2),
});
export type MachineConfig = z.output<typeof MachineSchema>;

const DeviceSchema = strict({
  wq: z.enum(["shared", "dedicated"]).default("shared"),
  wq_depth: int(1, 1024).default(16),
  latency_ns: int(1, 100_000_000).default(2000),
  pasid_bits: int(1, 20).optional(),
  /** The driver reserves a kernel PASID at probe (idxd's kernel work queue). */
  kernel_wq: z.boolean().default(false),
  /** The IOMMU the device sits behind (default: its own); devices behind one IOMMU share an mm's SVA domain. */
  iommu: z.string().min(1).max(64).optional(),
});
export type DeviceConfig = z.output<typeof DeviceSchema>;

/** One zod enum per policy, from the kernel's table (kernel/policy.ts); the first value is the default. */
type PolicyShape = { [K in PolicyKey]: z.ZodDefault<z.ZodEnum<{ [V in Policy<K>]: V }>> };
const PolicySchema = strict(
  Object.fromEntries(
    Object.entries(POLICIES).map(([key, values]) => [key, z.enum(values).default(values[0])]),
  ) as unknown as PolicyShape,
);

export type { Policies, PolicyKey };

/** Allowed values per policy key (for validating `--policy key=value`); the first is the default. */
export const POLICY_VALUES: Readonly<Record<PolicyKey, readonly string[]>> = POLICIES;

// ---------------------------------------------------------------------------------------------
// programs and ops

/** The op keys; each op mapping has exactly one of them. */
export const OP_KINDS = [
  "bind",
  "unbind",
  "enqcmd",
  "wait",
  "compute",
  "syscall",
  "yield",
  "sleep",
  "fpu",
  "xstate_write",
  "kernel_fpu",
  "req_xcomp_perm",
  "gp_fault",
  "signal",
  "mmap",
  "munmap",
  "mprotect",
  "set_fixmap",
  "touch",
  "fork",
  "clone_thread",
  "clone_vm",
  "exec",
  "exit",
  "repeat",
] as const;
export type OpKind = (typeof OP_KINDS)[number];

/** Ops that accept `count: N` (the op is performed N times in a row). */
const COUNTABLE: ReadonlySet<OpKind> = new Set<OpKind>([
  "enqcmd",
  "compute",
  "syscall",
  "yield",
  "mmap",
  "munmap",
  "mprotect",
  "set_fixmap",
  "touch",
  "fpu",
  "xstate_write",
  "kernel_fpu",
  "fork",
  "clone_thread",
  "clone_vm",
]);

/** A program: a list of ops, or `{repeat, do}` to run the list `repeat` times. */
export type Program = RawOp[] | { repeat: number; do: RawOp[] };

/** One op as written in the file (validated: exactly one op key, extra keys only where allowed). */
export interface RawOp {
  bind?: string;
  /** with `bind`: a private (non-shared) bond */
  private?: boolean;
  unbind?: string;
  enqcmd?: string;
  wait?: string;
  compute?: number;
  syscall?: number;
  yield?: true | null;
  sleep?: number;
  /** user code writes these components of its registers */
  fpu?: XFeature[];
  /** a syscall that changes these components of the caller's xstate (through policy.xstate_helper) */
  xstate_write?: XFeature[];
  /** a syscall that uses the FPU in the kernel (kernel_fpu_begin/end) */
  kernel_fpu?: true | null;
  /** arch_prctl(ARCH_REQ_XCOMP_PERM, ...) */
  req_xcomp_perm?: "amx" | "amx_tiledata";
  /** an instruction that takes #GP for another reason than ENQCMD's (the fixup cannot tell) */
  gp_fault?: true | null;
  /** a signal with a handler: delivered on the way to user, the handler returns at once (rt_sigreturn) */
  signal?: true | null;
  mmap?: number;
  munmap?: number;
  /** with `munmap`: whether it frees the page table (auto: when no present page of the mm is left in it) */
  tables?: MunmapTables;
  mprotect?: number;
  /** with `mprotect`: what the change does to the present PTEs (restrict and upgrade flush on x86; from-none does not) */
  change?: MprotectChange;
  /** a syscall whose driver changes N kernel PTEs of this CPU (set_pte_vaddr): flush_tlb_one_kernel each */
  set_fixmap?: number;
  /** a user-mode access to pages 0 .. N-1 (through the TLB; the model tracks the first 8) */
  touch?: number;
  fork?: Program;
  clone_thread?: Program;
  clone_vm?: Program;
  exec?: Program;
  exit?: number | null;
  repeat?: number;
  /** with `repeat`: the loop body */
  do?: RawOp[];
  count?: number;
}

/** munmap's `tables:` values, in the kernel's TABLES_* order (kernel/tlb_flush.ts). */
export const MUNMAP_TABLES = ["auto", "kept", "freed"] as const;
export type MunmapTables = (typeof MUNMAP_TABLES)[number];
/** mprotect's `change:` values, in the kernel's CHANGE_* order (kernel/tlb_flush.ts). */
export const MPROTECT_CHANGES = ["restrict", "upgrade", "from-none"] as const;
export type MprotectChange = (typeof MPROTECT_CHANGES)[number];

const NS = int(0, 1e12);
/** Lists of names (properties, kernel variants): fewer than this exist. */
const LIST_MAX = 64;
const PAGES = int(1, 2 ** 26);
/**
 * The x86-64 fixmap spans FIXMAP_PMD_NUM (2) page tables of 512 PTEs
 * (arch/x86/include/asm/fixmap.h): no driver remaps more pages there, and
 * set_pte_vaddr() flushes one page at a time, so the cap also bounds a step.
 */
const FIXMAP_PAGES = int(1, 1024);
// Whether the device is declared under `devices` is checked on the whole scenario, below.
const DEVICE_REF = z.string().min(1);

const ProgramSchema: z.ZodType<Program> = z.lazy(() =>
  z.union([OpListSchema, strict({ repeat: int(1, 1e9).default(1), do: OpListSchema })], {
    error: "expected a list of ops, or a mapping with 'do: [ops]' and optionally 'repeat: N'",
  }),
);

const OpSchema: z.ZodType<RawOp> = z.lazy(() =>
  z
    .strictObject(
      {
        bind: DEVICE_REF.optional(),
        private: z.boolean().optional(),
        unbind: DEVICE_REF.optional(),
        enqcmd: DEVICE_REF.optional(),
        wait: DEVICE_REF.optional(),
        compute: NS.optional(),
        syscall: NS.optional(),
        yield: z.literal(true).nullable().optional(),
        sleep: int(1, 1e12).optional(),
        fpu: z.array(z.enum(XFEATURES)).min(1).max(XFEATURES.length).optional(),
        xstate_write: z.array(z.enum(XFEATURES)).min(1).max(XFEATURES.length).optional(),
        kernel_fpu: z.literal(true).nullable().optional(),
        req_xcomp_perm: z.enum(["amx", "amx_tiledata"]).optional(),
        gp_fault: z.literal(true).nullable().optional(),
        signal: z.literal(true).nullable().optional(),
        mmap: PAGES.optional(),
        munmap: PAGES.optional(),
        tables: z.enum(MUNMAP_TABLES).optional(),
        mprotect: PAGES.optional(),
        change: z.enum(MPROTECT_CHANGES).optional(),
        set_fixmap: FIXMAP_PAGES.optional(),
        touch: PAGES.optional(),
        fork: ProgramSchema.optional(),
        clone_thread: ProgramSchema.optional(),
        clone_vm: ProgramSchema.optional(),
        exec: ProgramSchema.optional(),
        exit: int(0, 255).nullable().optional(),
        repeat: int(1, 1e9).optional(),
        do: OpListSchema.optional(),
        count: int(1, 1e6).optional(),
      },
      {
        error: (iss) => {
          if (iss.code === "unrecognized_keys") return unknownOpKey(iss.keys, iss.input);
          if (iss.code === "invalid_type") return "expected an op: a mapping such as 'compute: 5000'";
          return undefined;
        },
      },
    )
    .superRefine(checkOp),
);

const OpListSchema = z.array(OpSchema).min(1).max(256);

const ALL_OPS = OP_KINDS.join(", ");

function opKindsOf(op: object): OpKind[] {
  const record = op as Record<string, unknown>;
  return OP_KINDS.filter((k) => record[k] !== undefined);
}

/** Keys an op of this kind accepts besides its own. */
function extraKeys(kind: OpKind): string[] {
  if (kind === "bind") return ["private"];
  if (kind === "munmap") return ["tables", "count"];
  if (kind === "mprotect") return ["change", "count"];
  if (kind === "repeat") return ["do"];
  return COUNTABLE.has(kind) ? ["count"] : [];
}

function unknownOpKey(keys: string[], input: unknown): string {
  const [kind] = typeof input === "object" && input !== null ? opKindsOf(input) : [];
  if (kind === undefined) return `unknown op ${quote(keys[0])} (expected one of: ${ALL_OPS})`;
  const allowed = extraKeys(kind);
  const hint = allowed.length ? `allowed with it: ${allowed.join(", ")}` : "it takes no other keys";
  return `unknown key ${quote(keys[0])} in ${quote(kind)} op (${hint})`;
}

function checkOp(op: RawOp, ctx: z.RefinementCtx<RawOp>): void {
  if (ctx.issues.length) return; // an unknown key was already reported
  const kinds = opKindsOf(op);
  if (kinds.length === 0) {
    ctx.addIssue({ code: "custom", message: `missing op (expected one of: ${ALL_OPS})` });
    return;
  }
  if (kinds.length > 1) {
    const found = kinds.map(quote).join(" and ");
    ctx.addIssue({ code: "custom", message: `one op per list item, found ${found} (start a new '- ' item)` });
    return;
  }
  const kind = kinds[0];
  if (op.private !== undefined && kind !== "bind") {
    ctx.addIssue({
      code: "custom",
      path: ["private"],
      message: `'private' only goes with 'bind', not ${quote(kind)}`,
    });
  }
  if (op.tables !== undefined && kind !== "munmap") {
    ctx.addIssue({
      code: "custom",
      path: ["tables"],
      message: `'tables' only goes with 'munmap', not ${quote(kind)}`,
    });
  }
  if (op.change !== undefined && kind !== "mprotect") {
    ctx.addIssue({
      code: "custom",
      path: ["change"],
      message: `'change' only goes with 'mprotect', not ${quote(kind)}`,
    });
  }
  if (op.count !== undefined && !COUNTABLE.has(kind)) {
    ctx.addIssue({ code: "custom", path: ["count"], message: `'count' does not apply to ${quote(kind)}` });
  }
  if (op.do !== undefined && kind !== "repeat") {
    ctx.addIssue({
      code: "custom",
      path: ["do"],
      message: `'do' only goes with 'repeat', not ${quote(kind)}`,
    });
  }
  if (kind === "repeat" && op.do === undefined) {
    ctx.addIssue({ code: "custom", message: "'repeat' needs a 'do' list: the ops to repeat" });
  }
}

// ---------------------------------------------------------------------------------------------
// the scenario

const ProcessSchema = strict({
  name: z
    .string()
    .regex(PROCESS_NAME, "expected a name of letters, digits, '_' or '-', starting with a letter"),
  count: int(1, MAX_TASKS).default(1),
  threads: int(1, 10_000).default(1),
  program: ProgramSchema,
});

const CheckSchema = strict({
  properties: z.array(z.string()).max(LIST_MAX).optional(),
  /** At most this many preemptions per path, or `none`: every interleaving (the state space searched to its end). */
  preemption_bound: z.union([int(0, 1000), z.literal("none")]).optional(),
  max_states: int(1, 1e10).optional(),
  /** Random walks by default (a scenario too big for the exhaustive search); --exhaustive overrides. */
  random: int(1, 1e9).optional(),
});

const ScenarioObject = strict({
  name: z.string().min(1).max(64),
  seed: int(0, 2 ** 32 - 1).default(1),
  machine: MachineSchema.prefault({}),
  devices: z
    .record(
      z.string().regex(DEVICE_NAME, "expected a device name of lower-case letters, digits and '_' (max 32)"),
      DeviceSchema,
    )
    .default(() => ({})),
  policy: PolicySchema.prefault({}),
  /** cost table overrides; the cost kinds are checked by the engine */
  costs: z.record(z.string(), int(0, 1e9)).default(() => ({})),
  /** kernel variants; the names are checked by the engine */
  kernel: z
    .array(z.string())
    .max(LIST_MAX)
    .default(() => []),
  /** Injected failures: the step `at` fails on its nth run (or every run). */
  faults: z
    .array(
      strict({
        at: z.enum(FAULT_SITES),
        nth: int(1, 1_000_000).default(1),
        every: z.boolean().default(false),
      }),
    )
    .max(FAULT_SITES.length)
    .default(() => []),
  check: CheckSchema.prefault({}),
  processes: z.array(ProcessSchema).min(1).max(64),
});

export const ScenarioSchema = ScenarioObject.superRefine(checkScenario);

/** A validated scenario with every default applied. */
export type Scenario = z.output<typeof ScenarioObject>;

/** Checks that need the whole scenario: task count, unique process names, declared devices. */
function checkScenario(s: Scenario, ctx: z.RefinementCtx<Scenario>): void {
  if (ctx.issues.length) return; // the parts are not valid yet (unknown keys do not stop zod)
  const tasks = s.processes.reduce((sum, p) => sum + p.count * p.threads, 0);
  if (tasks > MAX_TASKS) {
    ctx.addIssue({
      code: "custom",
      path: ["processes"],
      message: `too many tasks: ${tasks} (count x threads summed over processes; max ${MAX_TASKS})`,
    });
  }
  const firstByName = new Map<string, number>();
  s.processes.forEach((p, i) => {
    const first = firstByName.get(p.name);
    if (first !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["processes", i, "name"],
        message: `duplicate process name ${quote(p.name)} (also processes[${first}])`,
      });
    }
    firstByName.set(p.name, first ?? i);
  });
  const declared = Object.keys(s.devices);
  const known = declared.length ? `declared: ${declared.join(", ")}` : "no devices are declared";
  s.processes.forEach((p, i) => {
    for (const op of allOps(normalizeProgram(p.program, ["processes", i, "program"]))) {
      if ("device" in op && !Object.hasOwn(s.devices, op.device)) {
        ctx.addIssue({
          code: "custom",
          path: [...op.path, op.kind],
          message: `unknown device ${quote(op.device)} (${known})`,
        });
      }
    }
  });
}

function* allOps(p: NProgram): Generator<NOp> {
  for (const op of p.ops) {
    yield op;
    if ("program" in op) yield* allOps(op.program);
  }
}

/** JSON Schema (draft 2020-12) of the input format, for editors. */

// ---------------------------------------------------------------------------------------------
// normalised programs

/** A program ready to execute: run `ops` in order, the whole list `repeat` times. */
export interface NProgram {
  repeat: number;
  ops: NOp[];
}

interface NOpBase {
  /** how many times in a row the op is performed (1 unless the file says `count`) */
  count: number;
  /** the op's mapping in the document, for `LoadedScenario.locate` */
  path: DocPath;
}

export type NOp = NOpBase &
  (
    | { kind: "bind"; device: string; private: boolean }
    | { kind: "unbind" | "enqcmd" | "wait"; device: string }
    | { kind: "compute" | "syscall" | "sleep"; ns: number }
    | { kind: "yield" }
    | { kind: "fpu" | "xstate_write"; components: XFeature[] }
    | { kind: "kernel_fpu" | "req_xcomp_perm" | "gp_fault" | "signal" }
    | { kind: "mmap" | "set_fixmap" | "touch"; pages: number }
    | { kind: "munmap"; pages: number; tables: MunmapTables }
    | { kind: "mprotect"; pages: number; change: MprotectChange }
    /** `program` is the child's (fork, clone_*) or the new image's (exec) */
    | { kind: "fork" | "clone_thread" | "clone_vm" | "exec"; program: NProgram }
    | { kind: "exit"; code: number }
    /** run `program` (whose own `repeat` is 1) `n` times */
    | { kind: "repeat"; n: number; program: NProgram }
  );

/** Turns a validated program into its normalised form; `path` is where the program sits in the document. */
export function normalizeProgram(p: Program, path: DocPath): NProgram {
  if (Array.isArray(p)) return { repeat: 1, ops: p.map((op, i) => normalizeOp(op, [...path, i])) };
  return { repeat: p.repeat, ops: p.do.map((op, i) => normalizeOp(op, [...path, "do", i])) };
}

function normalizeOp(op: RawOp, path: DocPath): NOp {
  const at = { count: op.count ?? 1, path };
  const child = (p: Program, key: OpKind) => normalizeProgram(p, [...path, key]);
  if (op.bind !== undefined) return { kind: "bind", device: op.bind, private: op.private ?? false, ...at };
  if (op.unbind !== undefined) return { kind: "unbind", device: op.unbind, ...at };
  if (op.enqcmd !== undefined) return { kind: "enqcmd", device: op.enqcmd, ...at };
  if (op.wait !== undefined) return { kind: "wait", device: op.wait, ...at };
  if (op.compute !== undefined) return { kind: "compute", ns: op.compute, ...at };
  if (op.syscall !== undefined) return { kind: "syscall", ns: op.syscall, ...at };
  if (op.yield !== undefined) return { kind: "yield", ...at };
  if (op.sleep !== undefined) return { kind: "sleep", ns: op.sleep, ...at };
  if (op.fpu !== undefined) return { kind: "fpu", components: op.fpu, ...at };
  if (op.xstate_write !== undefined) return { kind: "xstate_write", components: op.xstate_write, ...at };
  if (op.kernel_fpu !== undefined) return { kind: "kernel_fpu", ...at };
  if (op.req_xcomp_perm !== undefined) return { kind: "req_xcomp_perm", ...at };
  if (op.gp_fault !== undefined) return { kind: "gp_fault", ...at };
  if (op.signal !== undefined) return { kind: "signal", ...at };
  if (op.mmap !== undefined) return { kind: "mmap", pages: op.mmap, ...at };
  if (op.munmap !== undefined)
    return { kind: "munmap", pages: op.munmap, tables: op.tables ?? "auto", ...at };
  if (op.mprotect !== undefined) {
    return { kind: "mprotect", pages: op.mprotect, change: op.change ?? "restrict", ...at };
  }
  if (op.set_fixmap !== undefined) return { kind: "set_fixmap", pages: op.set_fixmap, ...at };
  if (op.touch !== undefined) return { kind: "touch", pages: op.touch, ...at };
  if (op.fork !== undefined) return { kind: "fork", program: child(op.fork, "fork"), ...at };
  if (op.clone_thread !== undefined) {
    return { kind: "clone_thread", program: child(op.clone_thread, "clone_thread"), ...at };
  }
  if (op.clone_vm !== undefined) return { kind: "clone_vm", program: child(op.clone_vm, "clone_vm"), ...at };
  if (op.exec !== undefined) return { kind: "exec", program: child(op.exec, "exec"), ...at };
  if (op.exit !== undefined) return { kind: "exit", code: op.exit ?? 0, ...at };
  if (op.repeat !== undefined && op.do !== undefined) {
    return { kind: "repeat", n: op.repeat, program: normalizeProgram({ repeat: 1, do: op.do }, path), ...at };
  }
  throw new Error(`normalizeProgram: no op key in the op at ${JSON.stringify(path)} (was it validated?)`);
}
