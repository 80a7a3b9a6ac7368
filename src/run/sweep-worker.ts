// One sweep cell, in a worker thread of the pool (piscina): validate the
// varied scenario document again, compile it, run it, and hand back the
// figures. Pure: the result depends only on the task.

import { compileScenario } from "../scenario/compile.js";
import type { LoadedScenario } from "../scenario/load.js";
import { ScenarioSchema } from "../scenario/schema.js";
import { runScenario } from "./session.js";

export interface CellTask {
  cell: number;
  /** The scenario file as the sweep names it (messages only). */
  file: string;
  source: string;
  /** The scenario document with the cell's values applied (validated once already). */
  doc: unknown;
  seed: number;
  maxSteps?: number;
  /** Metrics to keep (all when absent). */
  metrics?: string[];
}

export interface CellResult {
  metrics: Record<string, number>;
  violations: number;
  complete: boolean;
  state_hash: string;
}

export function runCell(task: CellTask): CellResult {
  const scenario = ScenarioSchema.parse(task.doc);
  const ls: LoadedScenario = { scenario, file: task.file, source: task.source, locate: () => task.file };
  const r = runScenario(compileScenario(ls, { seed: task.seed }), { maxSteps: task.maxSteps });
  const all = r.metrics as Record<string, number>;
  const metrics: Record<string, number> = {};
  for (const m of task.metrics ?? Object.keys(all)) metrics[m] = all[m];
  return { metrics, violations: r.violations_total, complete: r.complete, state_hash: r.state_hash };
}

export type CellOutcome = CellResult | { error: string };

/**
 * A batch of cells (one message each way instead of one per cell): a cell
 * that throws fails alone, with its error recorded. A crash of the whole
 * thread fails the batch; the pool then runs its cells one by one.
 */
export function runBatch(tasks: CellTask[], run: (t: CellTask) => CellResult = runCell): CellOutcome[] {
  return tasks.map((t) => {
    try {
      return run(t);
    } catch (err) {
      return { error: (err instanceof Error ? err.message : String(err)).split("\n", 1)[0] };
    }
  });
}

export default function (tasks: CellTask[]): CellOutcome[] {
  return runBatch(tasks);
}
