// Workload -> programs: turn a loaded scenario into what `boot` needs (the
// machine's size and parameters, program bytecode, initial processes, the
// cost table), applying command-line overrides. Everything the file got wrong
// that the schema could not see is reported here, located.

import { type CostTable, costTable } from "../engine/costs.js";
import { CORE_INVARIANTS } from "../engine/invariants.js";
import {
  type Program,
  U_CLONE_THREAD,
  U_CLONE_VM,
  U_COMPUTE,
  U_END,
  U_ENDLOOP,
  U_EXEC,
  U_EXIT,
  U_FORK,
  U_LOOP,
  U_SLEEP,
  U_SYSCALL,
  U_YIELD,
} from "../hw/program.js";
import type { BootSpec } from "../kernel/boot.js";
import { LOOP_DEPTH_MAX } from "../machine/state.js";
import { InputError } from "./errors.js";
import type { LoadedScenario } from "./load.js";
import {
  type DocPath,
  type NOp,
  type NProgram,
  normalizeProgram,
  POLICY_VALUES,
  type Policy,
  type PolicyKey,
} from "./schema.js";

/** Ops whose semantics belong to a model that has not landed yet, and where it lands. */
const NOT_YET: Partial<Record<NOp["kind"], string>> = {
  bind: "the PASID and device model",
  unbind: "the PASID and device model",
  enqcmd: "the PASID and device model",
  wait: "the PASID and device model",
  fpu: "the XSTATE model",
  mmap: "the PCID/TLB model",
  munmap: "the PCID/TLB model",
  mprotect: "the PCID/TLB model",
};

const NS_MAX = 2 ** 31 - 1;
/** Task slots beyond the initial tasks, for what the workload forks. */
const TASK_HEADROOM = 64;
const TASKS_MAX = 200_000;

export interface Overrides {
  seed?: number;
  /** `key=value` strings from --policy. */
  policy?: readonly string[];
}

export interface CompiledScenario {
  name: string;
  seed: number;
  policy: Policy;
  boot: BootSpec;
}

export function compileScenario(ls: LoadedScenario, ov: Overrides = {}): CompiledScenario {
  const sc = ls.scenario;
  const programs: Program[] = [];
  const procs = sc.processes.map((p, i) => {
    const path: DocPath = ["processes", i, "program"];
    const prog = compileProgram(ls, normalizeProgram(p.program, path), p.name, programs);
    return { prog, count: p.count, threads: p.threads };
  });
  if (sc.kernel.length > 0) {
    throw new InputError(
      `${ls.locate(["kernel", 0])}: kernel.0: unknown kernel variant '${sc.kernel[0]}' (no variants in this model yet)`,
    );
  }
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
  const m = sc.machine;
  const initial = sc.processes.reduce((n, p) => n + p.count * p.threads, 0);
  const tasksMax = Math.min(TASKS_MAX, initial * 2 + TASK_HEADROOM);
  const seed = ov.seed ?? sc.seed;
  return {
    name: sc.name,
    seed,
    policy: applyPolicy(sc.policy, ov.policy ?? []),
    boot: {
      params: {
        cpus: m.cpus,
        cpuMhz: m.cpu_mhz,
        tickNs: m.tick_ns,
        sliceTicks: Math.max(1, Math.ceil(m.timeslice_ns / m.tick_ns)),
        quantumNs: m.quantum_ns,
        jitterPct: m.jitter_pct,
      },
      tasksMax,
      mmsMax: tasksMax * 2 + m.cpus,
      programs,
      procs,
      costs: costs as CostTable,
    },
  };
}

/** `--policy key=value` over the file's policy; a bad key or value is a usage error. */
export function applyPolicy(base: Policy, kvs: readonly string[]): Policy {
  const p: Record<string, string> = { ...base };
  for (const kv of kvs) {
    const eq = kv.indexOf("=");
    const key = kv.slice(0, eq);
    const value = kv.slice(eq + 1);
    if (eq < 0 || !(key in POLICY_VALUES)) {
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
  return p as Policy;
}

/** Compile one program (and, recursively, its children); returns its id. */
function compileProgram(ls: LoadedScenario, np: NProgram, name: string, out: Program[]): number {
  const id = out.length;
  out.push({ name, code: new Int32Array(0) }); // reserve the id; children come after
  const code: number[] = [];
  emitBlock(ls, np, name, out, code, 0);
  code.push(U_END, 0);
  out[id] = { name, code: Int32Array.from(code) };
  return id;
}

function emitLoop(code: number[], n: number, depth: number, body: (depth: number) => void): void {
  if (n === 1) {
    body(depth);
    return;
  }
  code.push(U_LOOP, n);
  const start = code.length / 2;
  body(depth + 1);
  code.push(U_ENDLOOP, start);
}

function emitBlock(
  ls: LoadedScenario,
  np: NProgram,
  name: string,
  out: Program[],
  code: number[],
  depth: number,
): void {
  emitLoop(code, np.repeat, depth, (d) => {
    for (const op of np.ops) {
      emitLoop(code, op.count, d, (d2) => emitOp(ls, op, name, out, code, d2));
    }
  });
}

function emitOp(
  ls: LoadedScenario,
  op: NOp,
  name: string,
  out: Program[],
  code: number[],
  depth: number,
): void {
  const where = () => ls.locate(op.path);
  if (depth > LOOP_DEPTH_MAX) {
    throw new InputError(
      `${where()}: loops nested deeper than ${LOOP_DEPTH_MAX} (repeat and count both nest)`,
    );
  }
  const lands = NOT_YET[op.kind];
  if (lands !== undefined) {
    throw new InputError(`${where()}: op '${op.kind}' is not supported yet: it lands with ${lands}`);
  }
  const ns = (v: number) => {
    if (v > NS_MAX)
      throw new InputError(`${where()}: ${op.kind}: ${v} ns is more than the model's ${NS_MAX} ns per op`);
    return v;
  };
  switch (op.kind) {
    case "compute":
      code.push(U_COMPUTE, ns(op.ns));
      return;
    case "syscall":
      code.push(U_SYSCALL, ns(op.ns));
      return;
    case "sleep":
      code.push(U_SLEEP, ns(op.ns));
      return;
    case "yield":
      code.push(U_YIELD, 0);
      return;
    case "exit":
      code.push(U_EXIT, op.code);
      return;
    case "fork":
    case "clone_thread":
    case "clone_vm":
    case "exec": {
      const opcode = { fork: U_FORK, clone_thread: U_CLONE_THREAD, clone_vm: U_CLONE_VM, exec: U_EXEC }[
        op.kind
      ];
      code.push(opcode, compileProgram(ls, op.program, `${name}/${op.kind}`, out));
      return;
    }
    case "repeat":
      emitLoop(code, op.n, depth, (d) => emitBlock(ls, op.program, name, out, code, d));
      return;
    default:
      throw new InputError(`${where()}: op '${op.kind}' is not supported`);
  }
}
