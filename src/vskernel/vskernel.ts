// asidlab vs-kernel: the same scenario on a real kernel in QEMU and in the
// model, their counts side by side (docs/vs-kernel.md).

import { rmSync } from "node:fs";
import { runScenario } from "../run/session.js";
import { compileScenario } from "../scenario/compile.js";
import type { LoadedScenario } from "../scenario/load.js";
import { generateWorkload } from "./cgen.js";
import { compareCounts, kernelCounts, modelCounts, type VsKernelResult } from "./compare.js";
import { type Accel, bootGuest, buildInitrd, kernelImage, workDir } from "./guest.js";

export interface VsKernelOptions {
  kernelImage: string;
  accel: "auto" | Accel;
  skipUnsupported: boolean;
  timeoutMs: number;
}

export const DEFAULT_TIMEOUT_MS = 120_000;

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
    const model = runScenario(compileScenario(matched), { trace: true });
    return {
      scenario: sc.name,
      kernel: { version: guest.version, accel: guest.accel, cmdline: guest.cmdline, pcid },
      skipped: w.skipped.map((s) => ({ at: s.at, op: s.op })),
      guest_failures: guest.failed,
      rows: compareCounts(kernelCounts(guest.trace), modelCounts(model)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
