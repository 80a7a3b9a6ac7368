// A 1,000-cell sweep (src/run/sweep.ts) on 1 and on 2 worker threads:
// wall time, cells per second and the speedup. The cells are small on
// purpose (one process binding, submitting and unbinding a few times on one
// CPU: about a millisecond of simulation each), so the figure shows what the
// pool itself costs and how it scales, not the model's speed.
//
// Each round runs the whole sweep once on 1 worker and once on 2, in
// alternating order; the figures are medians over the rounds. Pool start-up
// (threads loading the model) is inside the wall time, as in a real sweep.
// The two outputs must be the same bytes; the bench says so.
//
// It measures and prints; it never fails on a figure.

import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { planSweep, runSweep, type SweepPlan } from "../src/run/sweep.js";
import { loadSweepFile } from "../src/scenario/sweep-spec.js";
import { median, nowNs } from "./timing.js";

export const SWEEP_CELLS = 1000;

const SCENARIO = `name: small-cell
seed: 1
machine: { cpus: 1 }
devices: { dsa0: { wq_depth: 4, latency_ns: 1000 } }
processes:
  - name: p
    program:
      repeat: 3
      do: [ { bind: dsa0 }, { enqcmd: dsa0 }, { wait: dsa0 }, { unbind: dsa0 }, { compute: 2000 } ]
`;

// 4 lifetimes x 250 seeds = 1,000 cells.
const SPEC = `name: bench-1000
scenarios: [small-cell.yaml]
seeds: 250
policies: { pasid_lifetime: [mm, unbind, task-refcount, static] }
metrics: [pasid_allocs, pasid_peak, cycles_total]
`;

export interface SweepRun {
  workers: number;
  /** Median wall time of the whole sweep, ms. */
  ms: number;
  samples_ms: number[];
  /** Median CPU time of the whole process (main thread and workers), ms. */
  cpu_ms: number;
  cells_per_sec: number;
}

export interface SweepBenchResult {
  cells: number;
  rounds: number;
  cores: number;
  runs: SweepRun[];
  /** Median 1-worker time over median 2-worker time. */
  speedup: number;
  /** Whether 1 and 2 workers wrote the same bytes (they must). */
  same_bytes: boolean;
  /** The 1-minute load average before and after: other processes compete for the cores. */
  load_before: number;
  load_after: number;
}

async function once(
  plan: SweepPlan,
  workers: number,
): Promise<{ ms: number; cpuMs: number; digest: string }> {
  const h = createHash("sha256");
  const t0 = nowNs();
  const c0 = process.cpuUsage();
  await runSweep(plan, { workers, write: (s) => h.update(s) });
  const c = process.cpuUsage(c0);
  return { ms: (nowNs() - t0) / 1e6, cpuMs: (c.user + c.system) / 1000, digest: h.digest("hex") };
}

export async function measureSweep(progress: (msg: string) => void, rounds = 3): Promise<SweepBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "asidlab-bench-sweep-"));
  try {
    writeFileSync(join(dir, "small-cell.yaml"), SCENARIO);
    writeFileSync(join(dir, "sweep.yaml"), SPEC);
    const plan = planSweep(loadSweepFile(join(dir, "sweep.yaml")));
    const loadBefore = loadavg()[0];
    const samples: Record<number, number[]> = { 1: [], 2: [] };
    const cpu: Record<number, number[]> = { 1: [], 2: [] };
    const digests = new Set<string>();
    progress(`sweep: ${plan.cells.length} cells on 1 and 2 workers, ${rounds} rounds (+1 warm-up)`);
    await once(plan, 2); // warm-up: the OS page cache, the main thread's JIT
    for (let r = 0; r < rounds; r++) {
      for (const w of r % 2 === 0 ? [1, 2] : [2, 1]) {
        const { ms, cpuMs, digest } = await once(plan, w);
        samples[w].push(ms);
        cpu[w].push(cpuMs);
        digests.add(digest);
      }
    }
    const runs = [1, 2].map((w) => {
      const ms = median(samples[w]);
      return {
        workers: w,
        ms,
        samples_ms: samples[w],
        cpu_ms: median(cpu[w]),
        cells_per_sec: (plan.cells.length * 1000) / ms,
      };
    });
    return {
      cells: plan.cells.length,
      rounds,
      cores: availableParallelism(),
      runs,
      speedup: runs[0].ms / runs[1].ms,
      same_bytes: digests.size === 1,
      load_before: loadBefore,
      load_after: loadavg()[0],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fixed = (x: number, d: number) =>
  x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

export function formatSweep(r: SweepBenchResult): string {
  const rows = r.runs.map((x) => [
    String(x.workers),
    fixed(x.ms / 1000, 2),
    fixed(x.cpu_ms / 1000, 2),
    fixed(x.cells_per_sec, 0),
    x.samples_ms.map((s) => fixed(s / 1000, 2)).join(" "),
  ]);
  const head = ["workers", "wall s", "cpu s", "cells/s", "rounds (s)"];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 4 ? c : c.padStart(width[i])))
      .join("  ")
      .trimEnd();
  return `${[
    `sweep: ${r.cells.toLocaleString("en-US")} small cells on a piscina pool (pool start-up included), ${r.cores} cores; medians of ${r.rounds} rounds`,
    line(head),
    width.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
    `speedup on 2 workers: ${fixed(r.speedup, 2)}x; same bytes on 1 and 2 workers: ${r.same_bytes ? "yes" : "NO"}; ` +
      `load average ${fixed(r.load_before, 1)} before, ${fixed(r.load_after, 1)} after (other processes on these cores)`,
  ].join("\n")}\n`;
}

export function sweepJson(r: SweepBenchResult): unknown {
  return {
    ...r,
    runs: r.runs.map((x) => ({
      workers: x.workers,
      ms: Number(x.ms.toFixed(1)),
      cpu_ms: Number(x.cpu_ms.toFixed(1)),
      samples_ms: x.samples_ms.map((s) => Number(s.toFixed(1))),
      cells_per_sec: Math.round(x.cells_per_sec),
    })),
    speedup: Number(r.speedup.toFixed(3)),
  };
}
