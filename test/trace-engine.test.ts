// Chrome DevTools' own trace engine (the Performance panel's, packaged as
// @paulirish/trace_engine) reads asidlab's traces: every slice reaches its
// track, nested into the call tree, each ENQCMD -> device descriptor is a
// flow, and the engine reports no error. Before the slices were complete
// events it dropped most of them ("Begin/End events mismatch": it pairs B
// with E on one stack across all tracks).

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as TraceEngine from "@paulirish/trace_engine";
import { runScenario } from "../src/run/session.js";
import { builtin, cli } from "./helpers.js";
import { parseTrace, type TraceEvent } from "./trace-validator.js";

// The engine measures with DOMRect, which Node lacks (its README says to polyfill it).
(globalThis as { DOMRect?: unknown }).DOMRect ??= class DOMRect {
  constructor(
    readonly x = 0,
    readonly y = 0,
    readonly width = 0,
    readonly height = 0,
  ) {}
};

interface EngineThread {
  name: string | null;
  entries: { name: string; ph: string }[];
  tree?: { roots: Set<unknown> } | null;
}

interface Parsed {
  /** What the engine logged with console.error or console.warn while it parsed. */
  complaints: string[];
  threads: Map<number, EngineThread>;
  flows: { name: string; tid: number }[][];
}

/** Parse a trace with DevTools' engine. */
async function devtoolsParse(events: TraceEvent[]): Promise<Parsed> {
  const complaints: string[] = [];
  const saved = { error: console.error, warn: console.warn };
  console.error = (...a: unknown[]) => complaints.push(a.map(String).join(" "));
  console.warn = (...a: unknown[]) => complaints.push(a.map(String).join(" "));
  try {
    const model = TraceEngine.TraceModel.Model.createWithAllHandlers();
    await model.parse(events as never);
    const data = model.parsedTrace()?.data as unknown as {
      Renderer: { processes: Map<number, { threads: Map<number, EngineThread> }> };
      Flows: { flows: { name: string; tid: number }[][] };
    };
    assert.ok(data !== undefined, "the engine parsed the trace");
    const proc = data.Renderer.processes.get(0);
    assert.ok(proc !== undefined, "process 0, the machine");
    return { complaints, threads: proc.threads, flows: data.Flows.flows };
  } finally {
    console.error = saved.error;
    console.warn = saved.warn;
  }
}

/** Our complete events per track. */
function slicesPerTrack(events: TraceEvent[]): Map<number, number> {
  const n = new Map<number, number>();
  for (const e of events) if (e.ph === "X") n.set(e.tid as number, (n.get(e.tid as number) ?? 0) + 1);
  return n;
}

async function assertDevtoolsReads(what: string, events: TraceEvent[]): Promise<Parsed> {
  const p = await devtoolsParse(events);
  assert.deepEqual(p.complaints, [], `${what}: the engine complained`);
  const ours = slicesPerTrack(events);
  assert.ok(ours.size > 0, `${what}: slices`);
  for (const [tid, n] of ours) {
    const t = p.threads.get(tid);
    assert.ok(t !== undefined, `${what}: track ${tid} reaches the engine`);
    const names = events.filter((e) => e.ph === "M" && e.name === "thread_name" && e.tid === tid);
    assert.equal(t.name, names[0]?.args?.name, `${what}: track ${tid}'s name`);
    assert.equal(t.entries.filter((e) => e.ph === "X").length, n, `${what}: every slice of track ${tid}`);
    assert.ok((t.tree?.roots.size ?? 0) > 0, `${what}: track ${tid}'s call tree`);
  }
  const descriptors = events.filter((e) => e.ph === "s").length;
  assert.equal(p.flows.length, descriptors, `${what}: a flow per descriptor`);
  for (const f of p.flows) {
    assert.deepEqual(
      f.map((e) => e.name),
      ["ENQCMD", descriptorName(f[1])],
      `${what}: the flow goes from ENQCMD to the device's slice`,
    );
  }
  return p;
}

const descriptorName = (e: { name: string } | undefined) =>
  e !== undefined && /^descriptor PASID \d+( \(queued\))?$/.test(e.name) ? e.name : "a descriptor slice";

describe("DevTools' trace engine reads the Chrome traces", () => {
  test("runs on 2 CPUs, with devices: every slice on its track, a flow per descriptor, no complaint", async () => {
    let flows = 0;
    for (const name of ["process-lifecycle", "exit-with-inflight", "tlb-shootdown-storm"]) {
      const r = runScenario(builtin(name), { trace: true, maxSteps: 20_000 });
      assert.ok(r.trace !== undefined);
      const p = await assertDevtoolsReads(name, parseTrace(r.trace).traceEvents);
      flows += p.flows.length;
      assert.ok(p.threads.size >= 2, `${name}: a track per CPU`);
    }
    assert.ok(flows > 0, "descriptors were submitted");
  });

  test("a counterexample's trace (check --trace)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "asidlab-devtools-"));
    try {
      const trace = join(dir, "cex.json");
      const r = cli(
        "check",
        "check-exit-inflight",
        "--kernel",
        "free-at-mmput",
        "--out",
        join(dir, "cex.schedule"),
        "--trace",
        trace,
      );
      assert.equal(r.status, 1, r.stderr);
      const events = parseTrace(readFileSync(trace, "utf8")).traceEvents;
      const p = await assertDevtoolsReads("counterexample", events);
      // The leaver's exit, where free-at-mmput frees the PASID with descriptors in flight.
      const cpu0 = p.threads.get(0);
      for (const name of ["do_exit", "mmput", "exc_general_protection"])
        assert.ok(
          cpu0?.entries.some((e) => e.name === name),
          `${name} on CPU 0`,
        );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
