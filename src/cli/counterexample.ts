// A counterexample's schedule file, read and checked (replay, view), and its exports (check, replay).

import { exportCounterexample } from "../report/export.js";
import { type CompiledScenario, compileScenario } from "../scenario/compile.js";
import { InputError } from "../scenario/errors.js";
import { loadScenarioFile } from "../scenario/load.js";
import { readInputFile, writeOutputFile } from "../scenario/read.js";
import { replaySchedule } from "../search/replay.js";
import { parseSchedule, stampOf } from "../search/schedule.js";
import { resolveScenario } from "./args.js";
import { TraceFile, traceCut } from "./trace-file.js";

/** A counterexample's Chrome trace and/or ITF, from one more replay of its schedule. */
export function writeExports(
  cs: CompiledScenario,
  props: readonly string[],
  schedule: readonly number[],
  o: { trace?: string; itf?: string; traceMaxEvents?: number },
  scenarioFile: string,
  schedulePath: string,
): void {
  const tf = o.trace === undefined ? null : new TraceFile(o.trace);
  let x: ReturnType<typeof exportCounterexample>;
  try {
    x = exportCounterexample(
      cs,
      props,
      schedule,
      {
        trace: tf === null ? undefined : { write: tf.write, maxEvents: o.traceMaxEvents },
        itf: o.itf !== undefined,
      },
      { scenarioFile, schedule: schedulePath },
    );
  } finally {
    tf?.close();
  }
  if (tf !== null) traceCut(tf.path, x.traceInfo);
  if (o.itf !== undefined && x.itf !== null) writeOutputFile(o.itf, x.itf);
}

/**
 * A schedule file and what it was made from, checked: the stamp matches the scenario and the model,
 * and the schedule replays to the violation it records (else where it stops, as an InputError).
 */
export function loadCounterexample(file: string, scenario: string | undefined) {
  const sf = parseSchedule(readInputFile(file), file);
  const scenarioPath = scenario ?? sf.scenarioFile;
  const ls = loadScenarioFile(resolveScenario(scenarioPath));
  const cs = compileScenario(ls, { kernel: sf.kernel, policy: sf.policy });
  const props = ls.scenario.check.properties ?? [];
  // The stamp covers the scenario text, policy, variants and the model itself.
  if (stampOf(cs, ls.source, props) !== sf.stamp) {
    throw new InputError(
      `${file}: stale schedule: made from another version of ${scenarioPath} or of the model (stamp ${sf.stamp}); run check again`,
    );
  }
  const r = replaySchedule(cs.boot, props, sf.schedule);
  if (r.error !== null) throw new InputError(`${file}:${sf.lines[r.at]}: ${r.error}`);
  if (r.finding === null) {
    const where =
      sf.schedule.length === 0 ? `${file}: no steps` : `${file}:${sf.lines[r.at - 1]}: step ${r.at}`;
    throw new InputError(
      `${where}: the schedule ends without reaching the violation it records (${sf.property}): cut short or edited? run check again`,
    );
  }
  return { sf, scenarioPath, cs, props, at: r.at, finding: r.finding };
}
