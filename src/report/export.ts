// A counterexample schedule exported for other tools: replayed once with a
// Chrome trace sink (Perfetto, DevTools, speedscope; one step = 1 µs of
// every CPU's clock) and/or with an ITF state recorded after each step
// (Apalache, Quint). Used by `check --trace/--itf` and `replay --trace/--itf`.

import { ChromeTrace } from "../engine/chrome-trace.js";
import type { TraceInfo } from "../run/session.js";
import type { CompiledScenario } from "../scenario/compile.js";
import { replaySchedule } from "../search/replay.js";
import { type ItfMeta, itfAction, itfDocument, itfState } from "./itf.js";

export interface ExportWanted {
  /** A Chrome trace: streamed to `write` (else returned as text), cut at `maxEvents`. */
  trace?: { write?: (chunk: string | Uint8Array) => void; maxEvents?: number };
  /** An ITF document. */
  itf?: boolean;
}

export interface ExportMeta {
  /** The scenario as the user named it (the ITF's source). */
  scenarioFile: string;
  /** The schedule file, when there is one. */
  schedule?: string;
}

export interface Exported {
  /** The replay: the finding it reached and after how many transitions, or why it stopped. */
  finding: { property: string; message: string } | null;
  at: number;
  error: string | null;
  /** The Chrome trace's text when it was not streamed ("" when it was), or null. */
  trace: string | null;
  traceInfo: TraceInfo | null;
  itf: string | null;
}

export function exportCounterexample(
  cs: CompiledScenario,
  properties: readonly string[],
  schedule: readonly number[],
  want: ExportWanted,
  meta: ExportMeta,
): Exported {
  let trace: ChromeTrace | null = null;
  let clock: Float64Array | null = null;
  const states: ReturnType<typeof itfState>[] = [];
  let pending: { action: string; meta: Omit<ItfMeta, "index"> } | null = null;
  const r = replaySchedule(
    cs.boot,
    properties,
    schedule,
    {
      before(i, tr, k) {
        clock?.fill(i * cs.boot.params.cpuMhz);
        if (want.itf) pending = itfAction(k, tr);
      },
      after(i, _tr, k) {
        if (!want.itf || pending === null) return;
        const v = k.violations[0];
        const violation = v === undefined ? undefined : { property: v.property, message: v.message };
        states.push(itfState(k, { index: i + 1, ...pending.meta, violation }, pending.action));
      },
    },
    (k, e) => {
      if (want.itf) states.push(itfState(k, { index: 0 }, "init"));
      if (want.trace === undefined) return;
      clock = e.clock;
      trace = new ChromeTrace(k, e.clock, want.trace);
      k.trace = trace;
      trace.startRun();
    },
  );
  let text: string | null = null;
  let traceInfo: Exported["traceInfo"] = null;
  const t = trace as ChromeTrace | null;
  if (t !== null) {
    const m: Record<string, string | number> = { scenario: cs.name, kernel: cs.variants.join(" ") };
    if (meta.schedule !== undefined) m.schedule = meta.schedule;
    if (r.finding !== null) {
      m.property = r.finding.property;
      m.message = r.finding.message;
      m.violation_at_step = r.at;
    }
    text = t.finish(m);
    traceInfo = { events: t.count, truncated: t.truncated, truncatedAtUs: t.truncatedAtUs };
  }
  const description =
    r.finding === null ? "no violation reached" : `${r.finding.property}: ${r.finding.message}`;
  return {
    ...r,
    trace: text,
    traceInfo,
    itf: want.itf ? itfDocument(meta.scenarioFile, description, states) : null,
  };
}
