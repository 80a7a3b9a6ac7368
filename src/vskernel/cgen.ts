// A scenario's CPU-side ops as a C program for a real kernel (vs-kernel).
// Each program of the scenario (a process's, a fork's child, an exec's new
// image...) becomes one C function prog_N; the runtime (runtime.ts) supplies
// the helpers and PID 1. Ops with no real counterpart in a QEMU guest are
// refused (InputError, located) or, with skipUnsupported, left out and listed.

import { InputError } from "../scenario/errors.js";
import type { LoadedScenario } from "../scenario/load.js";
import { type DocPath, type NOp, type NProgram, normalizeProgram } from "../scenario/schema.js";
import { RUNTIME_C } from "./runtime.js";

/** Ops no emulated machine here can perform: no device does ENQCMD, no driver remaps a fixmap on demand. */
const UNSUPPORTED: Readonly<Partial<Record<NOp["kind"], string>>> = {
  bind: "no emulated device does SVA (no PASID to bind)",
  unbind: "no emulated device does SVA (no PASID to bind)",
  enqcmd: "no emulated device has an ENQCMD portal",
  wait: "no emulated device completes descriptors",
  set_fixmap: "no driver changes fixmap PTEs on a syscall",
  xstate_write: "no syscall writes another component of the caller's xstate",
  kernel_fpu: "no syscall is known to use the FPU in the kernel on every call",
  req_xcomp_perm: "no CPU model here has AMX",
  gp_fault: "the model's #GP fixup has no counterpart without ENQCMD",
  signal: "signals are not translated yet",
};

/** FPU components user code can touch in the guest (AVX only where the CPU has it: checked at run time). */
const FPU_SUPPORTED = new Set(["x87", "sse", "avx"]);

export interface Skipped {
  /** file:line:col of the op */
  at: string;
  op: string;
  why: string;
}

export interface Workload {
  /** the whole C program */
  source: string;
  skipped: Skipped[];
  /** tasks the scenario starts with (processes x count x threads) */
  initialTasks: number;
}

const MAX_REGION_PAGES = 1 << 16;
const MAX_INITIAL_PROCESSES = 1000;

export function generateWorkload(ls: LoadedScenario, skipUnsupported: boolean): Workload {
  const sc = ls.scenario;
  const cpus = sc.machine.cpus;
  const fns: string[] = [];
  const skipped: Skipped[] = [];
  let regionPages = 1;
  let loopVar = 0;

  const refuse = (path: DocPath, op: string, why: string): void => {
    const at = ls.locate(path);
    if (!skipUnsupported) {
      throw new InputError(
        `${at}: op '${op}' has no counterpart in a QEMU guest (${why}; --skip-unsupported leaves it out)`,
      );
    }
    skipped.push({ at, op, why });
  };

  /** Emits prog_N for `p` (and its children first); returns N. */
  const emitProgram = (p: NProgram): number => {
    const body: string[] = [];
    emitOps(p.ops, body, "    ");
    const id = fns.length;
    fns.push(""); // reserve the number
    const v = `r${loopVar++}`;
    fns[id] = [
      `static void prog_${id}(void) {`,
      `  for (long ${v} = 0; ${v} < ${p.repeat}L; ${v}++) {`,
      ...body,
      "  }",
      "}",
    ].join("\n");
    return id;
  };

  const emitOps = (ops: NOp[], out: string[], ind: string): void => {
    for (const op of ops) {
      const reason = UNSUPPORTED[op.kind];
      if (reason !== undefined) {
        refuse(op.path, op.kind, reason);
        continue;
      }
      const lines: string[] = [];
      switch (op.kind) {
        case "compute":
          lines.push(`spin_ns(${op.ns}L);`);
          break;
        case "syscall":
          lines.push(`syscall(SYS_getppid); spin_ns(${op.ns}L);`);
          break;
        case "yield":
          lines.push("sched_yield();");
          break;
        case "sleep":
          lines.push(`sleep_ns(${op.ns}L);`);
          break;
        case "fpu": {
          for (const c of op.components) {
            if (FPU_SUPPORTED.has(c)) lines.push(`fpu_${c}();`);
            else refuse(op.path, `fpu: ${c}`, "the guest CPU model has no such component");
          }
          break;
        }
        case "mmap":
        case "touch":
        case "munmap":
        case "mprotect": {
          if (op.pages > MAX_REGION_PAGES) {
            throw new InputError(
              `${ls.locate(op.path)}: vs-kernel maps at most ${MAX_REGION_PAGES} pages per op`,
            );
          }
          regionPages = Math.max(regionPages, op.pages);
          if (op.kind === "mprotect") {
            if (op.change === "from-none") {
              refuse(op.path, "mprotect change: from-none", "not translated yet");
              break;
            }
            lines.push(`op_mprotect(${op.pages}UL, ${op.change === "restrict" ? 1 : 0});`);
          } else lines.push(`op_${op.kind}(${op.pages}UL);`);
          break;
        }
        case "fork":
          lines.push(`op_fork(prog_${emitProgram(op.program)});`);
          break;
        case "clone_thread":
          lines.push(`spawn(prog_${emitProgram(op.program)}, CLONE_PTHREAD);`);
          break;
        case "clone_vm":
          lines.push(`spawn(prog_${emitProgram(op.program)}, CLONE_VM | SIGCHLD);`);
          break;
        case "exec":
          lines.push(`op_exec(${emitProgram(op.program)});`);
          break;
        case "exit":
          lines.push(`task_end(${op.code});`); // the model's exit ends the task, not its thread group
          break;
        case "repeat": {
          const inner: string[] = [];
          emitOps(op.program.ops, inner, `${ind}  `);
          const v = `r${loopVar++}`;
          out.push(`${ind}for (long ${v} = 0; ${v} < ${op.n}L; ${v}++) {`, ...inner, `${ind}}`);
          continue;
        }
        default:
          refuse(op.path, op.kind, "not translated");
          continue;
      }
      if (lines.length === 0) continue;
      if (op.count > 1) {
        const v = `r${loopVar++}`;
        out.push(`${ind}for (long ${v} = 0; ${v} < ${op.count}L; ${v}++) {`);
        for (const l of lines) out.push(`${ind}  ${l}`);
        out.push(`${ind}}`);
      } else for (const l of lines) out.push(`${ind}${l}`);
    }
  };

  // The initial tasks, placed as the model's boot places them: one CPU after the other (kernel/boot.ts).
  const starts: string[] = [];
  const threadFns: string[] = [];
  let cpuNext = 0;
  let processes = 0;
  let initialTasks = 0;
  sc.processes.forEach((proc, i) => {
    const prog = emitProgram(normalizeProgram(proc.program, ["processes", i, "program"]));
    for (let c = 0; c < proc.count; c++) {
      if (++processes > MAX_INITIAL_PROCESSES) {
        throw new InputError(
          `${ls.locate(["processes", i, "count"])}: vs-kernel starts at most ${MAX_INITIAL_PROCESSES} processes`,
        );
      }
      const first = cpuNext % cpus;
      const helper = `proc_${i}_${c}`;
      const body = [`static void ${helper}(void) {`];
      for (let t = 1; t < proc.threads; t++) {
        const tf = `thr_${i}_${c}_${t}`;
        threadFns.push(`static void ${tf}(void) { pin(${(cpuNext + t) % cpus}); prog_${prog}(); }`);
        body.push(`  spawn_pinned(${tf}, CLONE_PTHREAD);`);
      }
      body.push(`  prog_${prog}();`, "}");
      threadFns.push(body.join("\n"));
      starts.push(`  pids[(*n)++] = start_process(${helper}, ${first});`);
      cpuNext += proc.threads;
      initialTasks += proc.threads;
    }
  });

  const decls = [
    ...fns.map((_, id) => `static void prog_${id}(void);`),
    `static prog_fn programs[] = {${fns.map((_, id) => `prog_${id}`).join(", ")}};`,
  ].join("\n");
  const header = `/* generated by asidlab vs-kernel from ${ls.scenario.name} */\n#define REGION_PAGES_MAX ${regionPages}\n#define PROGRAMS ${fns.length}\n`;
  const source = [
    header,
    RUNTIME_C.replace("/*@PROGRAMS@*/", decls),
    ...fns,
    ...threadFns,
    "static void start_processes(long *pids, int *n) {",
    ...starts,
    "}",
    "",
  ].join("\n");
  return { source, skipped, initialTasks };
}
