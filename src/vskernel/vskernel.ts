// asidlab vs-kernel: the same scenario on a real kernel in QEMU and in the
// model, their counts side by side (docs/vs-kernel.md).

import { rmSync } from "node:fs";
import { compileScenario } from "../scenario/compile.js";
import type { LoadedScenario } from "../scenario/load.js";
import { type NOp, normalizeProgram } from "../scenario/schema.js";
import { generateWorkload } from "./cgen.js";
import {
  compareCounts,
  type Features,
  kernelCounts,
  modelCounts,
  traceLost,
  type VsKernelResult,
} from "./compare.js";
import { type Accel, bootGuest, buildInitrd, kernelImage, workDir } from "./guest.js";

export interface VsKernelOptions {
  kernelImage: string;
  accel: "auto" | Accel;
  skipUnsupported: boolean;
  timeoutMs: number;
}

export const DEFAULT_TIMEOUT_MS = 120_000;

/** The op kinds anywhere in the scenario's programs. */
export function features(ls: LoadedScenario): Features {
  const kinds = new Set<string>();
  const walk = (ops: NOp[]): void => {
    for (const op of ops) {
      kinds.add(op.kind);
      if ("program" in op) walk(op.program.ops);
    }
  };
  ls.scenario.processes.forEach((p, i) => {
    walk(normalizeProgram(p.program, ["processes", i, "program"]).ops);
  });
  return {
    cpus: ls.scenario.machine.cpus,
    copies: kinds.has("fork") || kinds.has("clone_vm") || kinds.has("exec"),
    exec: kinds.has("exec"),
    initialThreads: ls.scenario.processes.some((p) => p.threads > 1),
  };
}

export async function vsKernel(ls: LoadedScenario, o: VsKernelOptions): Promise<VsKernelResult> {
  const sc = ls.scenario;
  const w = generateWorkload(ls, o.skipUnsupported); // refuses unsupported ops before anything is fetched
  const kernel = kernelImage(o.kernelImage);
  const dir = workDir();
  try {
    const initrd = buildInitrd(w.source, dir);
    const guest = await bootGuest({
      kernel,
      initrd,
      cpus: sc.machine.cpus,
      pti: sc.machine.pti,
      pcid: sc.machine.pcid,
      accel: o.accel,
      timeoutMs: o.timeoutMs,
    });
    // The model's machine as the guest's: PCID and INVPCID only where the guest's CPU has them (TCG has neither).
    const pcid = sc.machine.pcid && guest.flags.has("pcid");
    const invpcid = sc.machine.invpcid && guest.flags.has("invpcid");
    const matched: LoadedScenario = { ...ls, scenario: { ...sc, machine: { ...sc.machine, pcid, invpcid } } };
    return {
      scenario: sc.name,
      kernel: { version: guest.version, accel: guest.accel, cmdline: guest.cmdline, pcid },
      skipped: w.skipped.map((s) => ({ at: s.at, op: s.op })),
      guest_failures: guest.failed,
      trace_lost: traceLost(guest.trace),
      rows: compareCounts(kernelCounts(guest.trace), modelCounts(compileScenario(matched)), features(ls)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
