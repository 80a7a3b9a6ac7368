// `npm run bench:fpu`: what modelling XSTATE costs `run`. A context-switch-
// heavy workload (AMX, AVX-512, kernel-FPU and ENQCMD users on 8 CPUs) runs
// with the FPU paths plugged in and with the FPU hooks empty, samples
// interleaved; the ratio of wall time is the model's overhead (target: at
// most 2x). Invariants are off on both sides (with the hooks empty the
// fpu-owner property has nothing to hold), and on in a third row.

import { Engine } from "../src/engine/engine.js";
import { CORE_INVARIANTS } from "../src/engine/invariants.js";
import { boot } from "../src/kernel/boot.js";
import { DEFAULT_MAX_STEPS, makeScheduler } from "../src/run/session.js";
import { type CompiledScenario, compileScenario } from "../src/scenario/compile.js";
import { loadScenarioString } from "../src/scenario/load.js";
import { median, nowNs } from "./timing.js";

const TARGET_RATIO = 2;

const WORKLOAD = `
name: fpu-switch-heavy
machine: { cpus: 8, xfeatures: [x87, sse, avx, opmask, zmm_hi256, hi16_zmm, pkru, pasid, amx], xcomp_perm: [amx] }
devices: { dsa0: { wq_depth: 64 } }
processes:
  - name: amx
    count: 8
    program: { repeat: 400, do: [ { fpu: [amx] }, { compute: 2000 }, { yield: true } ] }
  - name: avx512
    count: 16
    program: { repeat: 400, do: [ { fpu: [avx, zmm_hi256] }, { compute: 2000 }, { yield: true } ] }
  - name: crypto
    count: 4
    program: { repeat: 400, do: [ { kernel_fpu: true }, { compute: 2000 }, { yield: true } ] }
  - name: dsa
    threads: 4
    program: [ { bind: dsa0 }, { repeat: 400, do: [ { enqcmd: dsa0 }, { wait: dsa0 }, { yield: true } ] } ]
`;

interface Row {
  label: string;
  fpuHooks: boolean;
  invariants: boolean;
}

const ROWS: Row[] = [
  { label: "XSTATE modelled", fpuHooks: true, invariants: false },
  { label: "FPU hooks empty", fpuHooks: false, invariants: false },
  { label: "XSTATE modelled, invariants on", fpuHooks: true, invariants: true },
];

function once(cs: CompiledScenario, r: Row): { ms: number; steps: number; switches: number } {
  const k = boot({ ...cs.boot, fpuHooks: r.fpuHooks });
  const e = new Engine(k, r.invariants ? CORE_INVARIANTS : [], makeScheduler("sim", cs.seed));
  const t0 = nowNs();
  e.run({ maxSteps: DEFAULT_MAX_STEPS, maxCycles: Number.MAX_SAFE_INTEGER });
  const ms = (nowNs() - t0) / 1e6;
  return { ms, steps: k.metrics.steps, switches: k.metrics.context_switches };
}

export interface FpuBenchRow {
  label: string;
  ms: number;
  steps: number;
  context_switches: number;
  steps_per_sec: number;
}

export function measureFpu(runs = 7, warmups = 2): { rows: FpuBenchRow[]; ratio: number; target: number } {
  const cs = compileScenario(loadScenarioString(WORKLOAD, "bench/fpu.ts"));
  for (let i = 0; i < warmups; i++) for (const r of ROWS) once(cs, r);
  const samples = ROWS.map(() => [] as { ms: number; steps: number; switches: number }[]);
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < ROWS.length; j++) samples[j].push(once(cs, ROWS[j]));
  }
  const rows = ROWS.map((r, j) => {
    const ms = median(samples[j].map((s) => s.ms));
    const steps = samples[j][0].steps;
    return {
      label: r.label,
      ms,
      steps,
      context_switches: samples[j][0].switches,
      steps_per_sec: steps / (ms / 1e3),
    };
  });
  return { rows, ratio: rows[0].ms / rows[1].ms, target: TARGET_RATIO };
}

export function formatFpu(r: ReturnType<typeof measureFpu>): string {
  const lines = [
    "XSTATE model overhead (fpu-switch-heavy: 8 CPUs, 60 tasks, sim scheduler)",
    `  ${"variant".padEnd(34)}${"wall ms".padStart(10)}${"steps".padStart(12)}${"switches".padStart(10)}${"M steps/s".padStart(11)}`,
  ];
  for (const row of r.rows) {
    lines.push(
      `  ${row.label.padEnd(34)}${row.ms.toFixed(1).padStart(10)}${String(row.steps).padStart(12)}${String(row.context_switches).padStart(10)}${(row.steps_per_sec / 1e6).toFixed(2).padStart(11)}`,
    );
  }
  lines.push(
    `  overhead: ${r.ratio.toFixed(2)}x the wall time of the same workload with the FPU hooks empty (target <= ${r.target}x: ${r.ratio <= r.target ? "met" : "NOT met"})`,
  );
  return lines.join("\n");
}

if (process.argv[1]?.endsWith("fpu.js")) {
  const r = measureFpu();
  process.stdout.write(
    process.argv.includes("--json") ? `${JSON.stringify(r, null, 2)}\n` : `${formatFpu(r)}\n`,
  );
}
