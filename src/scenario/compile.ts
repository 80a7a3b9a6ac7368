// Workload -> programs: turn a loaded scenario into what `boot` needs (the
// machine's size and parameters, program bytecode, initial processes, the
// cost table), applying command-line overrides. Everything the file got wrong
// that the schema could not see is reported here, located.

import { CORE_INVARIANTS } from "../engine/invariants.js";
import type { DeviceParams } from "../hw/device.js";
import {
  buildXstateLayout,
  XFEATURE_MASK_XTILE_DATA,
  type XstateLayout,
  xfeatureNumbers,
} from "../hw/xstate.js";
import type { BootSpec } from "../kernel/boot.js";
import { OPEN_PRIVATE } from "../kernel/devfile.js";
import { isKernelVariant, KERNEL_VARIANT_NAMES, type KernelVariant, variantNeeds } from "../kernel/policy.js";
import { MEMOP_MODE_SHIFT } from "../kernel/syscall.js";
import { type CostTable, costTable } from "../machine/costs.js";
import type { Program } from "../machine/machine.js";
import { LOOP_DEPTH_MAX, MAX_ASID_AVAILABLE } from "../machine/state.js";
import { OPCODE } from "../user/program.js";
import { InputError } from "./errors.js";
import type { LoadedScenario } from "./load.js";
import {
  type DocPath,
  FAULT_SITES,
  MPROTECT_CHANGES,
  MUNMAP_TABLES,
  type NOp,
  type NProgram,
  normalizeProgram,
  POLICY_VALUES,
  type Policies,
  type PolicyKey,
} from "./schema.js";

/** Ops whose `count` happens inside one syscall (many TLB flushes without a return to user). */
const COUNT_IN_SYSCALL: ReadonlySet<NOp["kind"]> = new Set(["munmap", "mprotect"]);

const NS_MAX = 2 ** 31 - 1;
/** Task slots beyond the initial tasks, for what the workload forks. */
const TASK_HEADROOM = 16;
/** Task slots added per fork/clone op in the programs (forks in loops keep several alive at once). */
const SLOTS_PER_SPAWN_SITE = 8;
const TASKS_MAX = 200_000;

export interface Overrides {
  seed?: number;
  /** `key=value` strings from --policy. */
  policy?: readonly string[];
  /** Kernel variants from --kernel, added to the file's. */
  kernel?: readonly string[];
}

export interface CompiledScenario {
  name: string;
  seed: number;
  policy: Policies;
  /** Kernel variants in force, file's and command line's. */
  variants: KernelVariant[];
  boot: BootSpec;
}

/** Device-side table sizes (bounded, like everything in the machine). */
const PT_SLOTS_MAX = 2048;
const TLB_SLOTS = 32;
const BONDS_MAX = 8192;
const FILES_MAX = 16384;

interface Ctx {
  ls: LoadedScenario;
  out: Program[];
  devIndex(name: string): number;
  /** fork/clone ops seen while compiling (for the task slots). */
  spawnSites: number;
  xstate: XstateLayout;
}

function variantOutOfModel(
  v: KernelVariant,
  devices: number,
  policy: Policies,
  m: { pti: boolean; pcid: boolean },
): string | null {
  const needs = variantNeeds(v);
  if (needs.devices && devices === 0)
    return `kernel variant '${v}' changes the PASID/device model, and the scenario declares no devices`;
  if (needs.deferredUserFlush && !(m.pti && m.pcid && policy.user_asid_flush === "deferred"))
    return `kernel variant '${v}' changes the deferred user-PCID flush mask, which needs machine.pti, machine.pcid and policy.user_asid_flush 'deferred'`;
  if (needs.pasidMsr !== undefined && policy.pasid_msr !== needs.pasidMsr)
    return `kernel variant '${v}' changes the '${needs.pasidMsr}' code of policy.pasid_msr, which is '${policy.pasid_msr}' here`;
  return null;
}

function unknownVariant(v: string): string {
  return `unknown kernel variant '${v}' (known: ${KERNEL_VARIANT_NAMES.join(", ")})`;
}

export function compileScenario(ls: LoadedScenario, ov: Overrides = {}): CompiledScenario {
  const sc = ls.scenario;
  const m = sc.machine;
  const devNames = Object.keys(sc.devices);
  const devices: DeviceParams[] = devNames.map((name) => {
    const dc = sc.devices[name];
    return {
      name,
      wqDepth: dc.wq_depth,
      latencyNs: dc.latency_ns,
      maxPasids: 2 ** Math.min(m.pasid_bits, dc.pasid_bits ?? 20),
      dedicated: dc.wq === "dedicated",
      iommu: 0,
      kernelWq: dc.kernel_wq,
    };
  });
  // Devices behind the same IOMMU share an mm's SVA domain: number the IOMMUs by first mention.
  const iommus = devNames.map((name) => sc.devices[name].iommu ?? name);
  devices.forEach((dev, i) => {
    dev.iommu = iommus.indexOf(iommus[i]);
  });
  const built = buildXstateLayout(m.xfeatures, m.cpuid_xstate);
  if ("error" in built)
    throw new InputError(`${ls.locate(built.key)}: ${built.key.join(".")}: ${built.error}`);
  const xstate = built;
  if (m.xcomp_perm.length > 0 && (xstate.features & XFEATURE_MASK_XTILE_DATA) === 0) {
    throw new InputError(
      `${ls.locate(["machine", "xcomp_perm"])}: machine.xcomp_perm: AMX is not in machine.xfeatures (ARCH_REQ_XCOMP_PERM would fail with EINVAL)`,
    );
  }
  const programs: Program[] = [];
  const ctx: Ctx = { ls, out: programs, devIndex: (n) => devNames.indexOf(n), spawnSites: 0, xstate };
  const procs = sc.processes.map((p, i) => {
    const path: DocPath = ["processes", i, "program"];
    const prog = compileProgram(ctx, normalizeProgram(p.program, path), p.name);
    return { prog, count: p.count, threads: p.threads };
  });
  const fileVariants = sc.kernel.map((v, i) => {
    if (!isKernelVariant(v))
      throw new InputError(`${ls.locate(["kernel", i])}: kernel[${i}]: ${unknownVariant(v)}`);
    return v;
  });
  const flagVariants = (ov.kernel ?? []).map((v) => {
    if (!isKernelVariant(v)) throw new InputError(`--kernel ${v}: ${unknownVariant(v)}`);
    return v;
  });
  const policy = applyPolicy(sc.policy, ov.policy ?? []);
  fileVariants.forEach((v, i) => {
    const why = variantOutOfModel(v, devices.length, policy, m);
    if (why !== null) throw new InputError(`${ls.locate(["kernel", i])}: kernel[${i}]: ${why}`);
  });
  for (const v of flagVariants) {
    const why = variantOutOfModel(v, devices.length, policy, m);
    if (why !== null) throw new InputError(`--kernel ${v}: ${why}`);
  }
  const variants = [...new Set([...fileVariants, ...flagVariants])];
  const props = sc.check?.properties ?? [];
  props.forEach((name, i) => {
    if (!CORE_INVARIANTS.some((inv) => inv.name === name)) {
      const known = CORE_INVARIANTS.map((inv) => inv.name).join(", ");
      throw new InputError(
        `${ls.locate(["check", "properties", i])}: check.properties.${i}: unknown property '${name}' (known: ${known})`,
      );
    }
  });
  const costs = costTable(sc.costs ?? {});
  if ("unknown" in costs) {
    throw new InputError(
      `${ls.locate(["costs", costs.unknown])}: costs.${costs.unknown}: unknown cost kind '${costs.unknown}'`,
    );
  }
  const initial = sc.processes.reduce((n, p) => n + p.count * p.threads, 0);
  // Room for what the workload forks: a base, and more for each fork/clone site.
  const tasksMax = Math.min(TASKS_MAX, initial * 2 + TASK_HEADROOM + SLOTS_PER_SPAWN_SITE * ctx.spawnSites);
  const mmsMax = tasksMax * 2 + m.cpus;
  const seed = ov.seed ?? sc.seed;
  const withDevices = devices.length > 0;
  if (policy.tlb_shootdown === "invlpgb" && !m.pcid) {
    throw new InputError(
      `${ls.locate(["policy", "tlb_shootdown"])}: policy.tlb_shootdown: 'invlpgb' (global ASIDs) needs machine.pcid`,
    );
  }
  if (m.global_asids_in_use > 0 && policy.tlb_shootdown !== "invlpgb") {
    throw new InputError(
      `${ls.locate(["machine", "global_asids_in_use"])}: machine.global_asids_in_use: global ASIDs need policy.tlb_shootdown 'invlpgb'`,
    );
  }
  if (m.global_asids_in_use > 0 && m.global_asids_in_use > MAX_ASID_AVAILABLE - m.asid_slots - 1) {
    throw new InputError(
      `${ls.locate(["machine", "global_asids_in_use"])}: machine.global_asids_in_use: ${m.global_asids_in_use} is more than the ${Math.max(0, MAX_ASID_AVAILABLE - m.asid_slots - 1)} global ASIDs above ${m.asid_slots} dynamic slots`,
    );
  }
  return {
    name: sc.name,
    seed,
    policy,
    variants,
    boot: {
      model: {
        devices,
        pasidBits: m.pasid_bits,
        lifetime: policy.pasid_lifetime,
        variants: new Set(variants),
        tlb: {
          pti: m.pti,
          pcid: m.pcid,
          invpcid: m.invpcid,
          asidSlots: m.asid_slots,
          userAsidFlush: policy.user_asid_flush,
          userFlushTest: policy.user_flush_test,
          nmiRestoreCr3: policy.nmi_restore_cr3,
          lazyTlb: policy.lazy_tlb,
          invlpgb: policy.tlb_shootdown === "invlpgb",
          globalAsidsInUse: m.global_asids_in_use,
          initialJiffies: m.initial_jiffies,
        },
        xstate,
        pasidMsr: policy.pasid_msr,
        xstateHelper: policy.xstate_helper,
        xstateCheck: policy.xstate_check === "on",
        softirqFpu: m.softirq_fpu,
        nmi: m.nmi,
        xcompPermAtBoot: m.xcomp_perm.length > 0 ? XFEATURE_MASK_XTILE_DATA : 0,
        faults: FAULT_SITES.map((site) => {
          const f = sc.faults.find((x) => x.at === site);
          return f === undefined ? null : { nth: f.nth, every: f.every };
        }),
      },
      ptSlots: withDevices ? Math.min(mmsMax + 8, PT_SLOTS_MAX) : 0,
      tlbSlots: withDevices ? TLB_SLOTS : 0,
      bonds: withDevices ? Math.min(mmsMax * devices.length + 8, BONDS_MAX) : 0,
      openFiles: withDevices ? Math.min(tasksMax * 2 + 8, FILES_MAX) : 0,
      params: {
        cpus: m.cpus,
        cpuMhz: m.cpu_mhz,
        tickNs: m.tick_ns,
        sliceTicks: Math.max(1, Math.ceil(m.timeslice_ns / m.tick_ns)),
        quantumNs: m.quantum_ns,
        jitterPct: m.jitter_pct,
      },
      tasksMax,
      mmsMax,
      programs,
      procs,
      costs: costs as CostTable,
    },
  };
}

/** `--policy key=value` over the file's policy; a bad key or value is a usage error. */
export function applyPolicy(base: Policies, kvs: readonly string[]): Policies {
  const p: Record<string, string> = { ...base };
  for (const kv of kvs) {
    const eq = kv.indexOf("=");
    const key = kv.slice(0, eq);
    const value = kv.slice(eq + 1);
    // Own keys only: `__proto__`, `constructor` or `toString` is no policy.
    if (eq < 0 || !Object.hasOwn(POLICY_VALUES, key)) {
      throw new InputError(
        `--policy ${kv}: expected key=value with key one of ${Object.keys(POLICY_VALUES).join(", ")}`,
      );
    }
    const allowed = POLICY_VALUES[key as PolicyKey];
    if (!allowed.includes(value)) {
      throw new InputError(
        `--policy ${kv}: unknown value '${value}' for ${key} (expected one of: ${allowed.join(", ")})`,
      );
    }
    p[key] = value;
  }
  return p as Policies;
}

/** Compile one program (and, recursively, its children); returns its id. */
function compileProgram(ctx: Ctx, np: NProgram, name: string): number {
  const id = ctx.out.length;
  ctx.out.push({ name, code: new Int32Array(0) }); // reserve the id; children come after
  const code: number[] = [];
  emitBlock(ctx, np, name, code, 0);
  code.push(OPCODE.end, 0);
  ctx.out[id] = { name, code: Int32Array.from(code) };
  return id;
}

function emitLoop(code: number[], n: number, depth: number, body: (depth: number) => void): void {
  if (n === 1) {
    body(depth);
    return;
  }
  code.push(OPCODE.loop, n);
  const start = code.length / 2;
  body(depth + 1);
  code.push(OPCODE.endloop, start);
}

function emitBlock(ctx: Ctx, np: NProgram, name: string, code: number[], depth: number): void {
  emitLoop(code, np.repeat, depth, (d) => {
    for (const op of np.ops) {
      const n = COUNT_IN_SYSCALL.has(op.kind) ? 1 : op.count;
      emitLoop(code, n, d, (d2) => emitOp(ctx, op, name, code, d2));
    }
  });
}

function emitOp(ctx: Ctx, op: NOp, name: string, code: number[], depth: number): void {
  const where = () => ctx.ls.locate(op.path);
  if (depth > LOOP_DEPTH_MAX) {
    throw new InputError(
      `${where()}: loops nested deeper than ${LOOP_DEPTH_MAX} (repeat and count both nest)`,
    );
  }
  const ns = (v: number) => {
    if (v > NS_MAX)
      throw new InputError(`${where()}: ${op.kind}: ${v} ns is more than the model's ${NS_MAX} ns per op`);
    return v;
  };
  switch (op.kind) {
    case "compute":
      code.push(OPCODE.compute, ns(op.ns));
      return;
    case "syscall":
      code.push(OPCODE.syscall, ns(op.ns));
      return;
    case "sleep":
      code.push(OPCODE.sleep, ns(op.ns));
      return;
    case "yield":
      code.push(OPCODE.yield, 0);
      return;
    case "mmap":
      code.push(OPCODE.mmap, op.pages);
      return;
    case "munmap":
      code.push(
        OPCODE.munmap,
        op.pages,
        OPCODE.arg,
        op.count | (MUNMAP_TABLES.indexOf(op.tables) << MEMOP_MODE_SHIFT),
      );
      return;
    case "mprotect":
      code.push(
        OPCODE.mprotect,
        op.pages,
        OPCODE.arg,
        op.count | (MPROTECT_CHANGES.indexOf(op.change) << MEMOP_MODE_SHIFT),
      );
      return;
    case "set_fixmap":
      code.push(OPCODE.set_fixmap, op.pages);
      return;
    case "touch":
      code.push(OPCODE.touch, op.pages);
      return;
    case "exit":
      code.push(OPCODE.exit, op.code);
      return;
    case "fpu":
    case "xstate_write":
      code.push(OPCODE[op.kind], componentMask(ctx, op.kind, op.components, where));
      return;
    case "kernel_fpu":
      code.push(OPCODE.kernel_fpu, 0);
      return;
    case "req_xcomp_perm":
      code.push(OPCODE.req_xcomp_perm, 0);
      return;
    case "gp_fault":
      code.push(OPCODE.gp_fault, 0);
      return;
    case "signal":
      code.push(OPCODE.signal, 0, OPCODE.sigreturn, 0);
      return;
    case "bind":
      code.push(OPCODE.bind, ctx.devIndex(op.device) | (op.private ? OPEN_PRIVATE : 0));
      return;
    case "unbind":
      code.push(OPCODE.unbind, ctx.devIndex(op.device));
      return;
    case "enqcmd":
      code.push(OPCODE.enqcmd, ctx.devIndex(op.device));
      return;
    case "wait":
      code.push(OPCODE.wait, ctx.devIndex(op.device));
      return;
    case "fork":
    case "clone_thread":
    case "clone_vm":
    case "exec": {
      if (op.kind !== "exec") ctx.spawnSites++;
      code.push(OPCODE[op.kind], compileProgram(ctx, op.program, `${name}/${op.kind}`));
      return;
    }
    case "repeat":
      emitLoop(code, op.n, depth, (d) => emitBlock(ctx, op.program, name, code, d));
      return;
    default: {
      const never: never = op;
      throw new InputError(`${where()}: op '${(never as NOp).kind}' is not supported`);
    }
  }
}

/** The components an `fpu`/`xstate_write` op names, as a mask; each must exist and be the user's to write. */
function componentMask(ctx: Ctx, kind: string, names: readonly string[], where: () => string): number {
  let mask = 0;
  for (const name of names) {
    for (const nr of xfeatureNumbers(name)) {
      if ((ctx.xstate.features & (1 << nr)) === 0) {
        throw new InputError(
          `${where()}: ${kind}: the machine has no XSTATE component '${name}' (machine.xfeatures)`,
        );
      }
      if ((ctx.xstate.supervisor & (1 << nr)) !== 0) {
        throw new InputError(
          `${where()}: ${kind}: '${name}' is a supervisor component: only the kernel's pasid_msr policy writes it`,
        );
      }
      mask |= 1 << nr;
    }
  }
  return mask;
}
