// Traces that other tools read: the Chrome trace of every built-in scenario
// and of counterexamples passes a validator of what Chrome DevTools' trace
// engine (and Perfetto's JSON importer) require (trace-engine.test.ts runs
// DevTools' engine itself); `run --trace` streams the
// whole run or says where it was cut; the ITF of a counterexample is read
// back by Quint's ITF reader, with the violated property's fields in its last
// state.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ofItf, ofItfNormalized } from "@informalsystems/quint/dist/src/itf.js";
import { runScenario } from "../src/run/session.js";
import { builtin, cli, REPO_ROOT } from "./helpers.js";
import { parseTrace, type TraceDoc, validateTrace } from "./trace-validator.js";

const SCENARIOS = readdirSync(join(REPO_ROOT, "scenarios"))
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => f.replace(/\.yaml$/, ""))
  .sort();

describe("Chrome traces", () => {
  test("the validator catches what DevTools rejects", () => {
    const ok = { name: "a", cat: "kernel", pid: 0, tid: 0 };
    const meta = [
      { name: "process_name", ph: "M", pid: 0, tid: 0, args: { name: "m" } },
      { name: "thread_name", ph: "M", pid: 0, tid: 0, args: { name: "CPU 0" } },
    ];
    const v = (evs: object[]) =>
      validateTrace({ traceEvents: [...meta, ...evs], metadata: {} } as TraceDoc).errors;
    // Nested, in the order a stream closes them (inner first), and a zero-length slice at the end of another.
    assert.deepEqual(
      v([
        { ...ok, name: "inner", ph: "X", ts: 2, dur: 1 },
        { ...ok, name: "at-end", ph: "X", ts: 5, dur: 0 },
        { ...ok, ph: "X", ts: 1, dur: 4 },
        { ...ok, name: "next", ph: "X", ts: 5, dur: 2 },
      ]),
      [],
    );
    assert.match(v([{ ...ok, ph: "X", ts: 1, dur: 1, cat: undefined }]).join(), /without cat/);
    assert.match(v([{ ...ok, ph: "X", ts: 1 }]).join(), /no dur/);
    assert.match(
      v([
        { ...ok, ph: "X", ts: 1, dur: 3 },
        { ...ok, name: "b", ph: "X", ts: 2, dur: 3 },
      ]).join(),
      /overlaps a/,
    );
    assert.match(
      v([
        { ...ok, ph: "B", ts: 1 },
        { ...ok, ph: "E", ts: 2 },
      ]).join(),
      /write X/,
    );
    assert.match(
      v([
        { ...ok, ph: "i", s: "t", ts: 2 },
        { ...ok, ph: "i", s: "t", ts: 1 },
      ]).join(),
      /before/,
    );
    assert.match(v([{ ...ok, ph: "s", id: 1, ts: 1 }]).join(), /s without f/);
    assert.match(
      v([
        { ...ok, ph: "X", ts: 1, dur: 0 },
        { ...ok, ph: "s", id: 1, ts: 1 },
        { ...ok, ph: "f", bp: "e", id: 1, ts: 2 },
      ]).join(),
      /lands where no slice of its cat starts/,
    );
    assert.match(
      v([
        { ...ok, ph: "X", ts: 1, dur: 0, cat: "other" },
        { ...ok, ph: "X", ts: 2, dur: 1 },
        { ...ok, ph: "s", id: 1, ts: 1 },
        { ...ok, ph: "f", bp: "e", id: 1, ts: 2 },
      ]).join(),
      /lands where no slice of its cat starts/,
    );
    assert.match(v([{ ...ok, tid: 5, ph: "i", s: "t", ts: 1 }]).join(), /0\/5 has no thread_name/);
  });

  test("a trace of every built-in scenario passes the validator", () => {
    let flows = 0;
    let devices = 0;
    for (const name of SCENARIOS) {
      const r = runScenario(builtin(name), { trace: true, maxSteps: 3000 });
      assert.ok(r.trace !== undefined, name);
      const doc = parseTrace(r.trace);
      const { errors, checked } = validateTrace(doc);
      assert.deepEqual(errors, [], name);
      assert.ok(checked.slices > 0, `${name}: slices`);
      assert.equal(doc.metadata.truncated, false, name);
      assert.equal(doc.metadata.events, doc.traceEvents.length, `${name}: the metadata counts the events`);
      flows += checked.flows;
      devices += [...checked.threadNames.values()].filter((n) => n.startsWith("device ")).length;
    }
    assert.ok(flows > 0, "ENQCMD submit -> device flows in the scenarios with devices");
    assert.ok(devices > 0, "device tracks");
  });

  test("run --trace streams the whole run; --trace-max-events cuts it, says so on stderr and in the metadata", () => {
    const dir = mkdtempSync(join(tmpdir(), "asidlab-trace-"));
    try {
      const whole = join(dir, "whole.json");
      const cut = join(dir, "cut.json");
      const plain = cli("run", "process-lifecycle", "--json");
      const a = cli("run", "process-lifecycle", "--json", "--trace", whole);
      const b = cli("run", "process-lifecycle", "--json", "--trace", cut, "--trace-max-events", "300");
      assert.equal(a.stdout, plain.stdout, "a trace changes no figure");
      assert.equal(b.stdout, plain.stdout, "a cut trace changes no figure");
      assert.equal(a.stderr, "");
      const w = parseTrace(readFileSync(whole, "utf8"));
      assert.deepEqual(validateTrace(w).errors, []);
      assert.equal(w.metadata.truncated, false);
      assert.ok(w.traceEvents.length > 1000);
      const lines = b.stderr.split("\n").filter((l) => l !== "");
      assert.equal(lines.length, 1, b.stderr);
      assert.match(lines[0], /cut\.json: trace cut at --trace-max-events/);
      const c = parseTrace(readFileSync(cut, "utf8"));
      const { errors } = validateTrace(c);
      assert.deepEqual(errors, [], "a cut trace still nests: its open slices are closed at the cut");
      assert.equal(c.metadata.truncated, true);
      assert.equal(c.metadata.max_events, 300);
      assert.ok(c.traceEvents.length >= 300 && c.traceEvents.length < w.traceEvents.length);
      // The cut trace is the whole trace's beginning (up to the slices still open at the cut, closed there).
      const firstInstants = (d: TraceDoc) => d.traceEvents.filter((e) => e.ph === "i").slice(0, 50);
      assert.ok(firstInstants(c).length > 0);
      assert.deepEqual(firstInstants(c), firstInstants(w));
      // A violation is an instant on the CPU where it happened (exit-with-inflight has none in mainline).
      const v = cli("run", "exit-with-inflight", "--kernel", "free-at-mmput", "--trace", whole);
      assert.equal(v.status, 1);
      const vt = validateTrace(parseTrace(readFileSync(whole, "utf8")));
      assert.deepEqual(vt.errors, []);
      assert.ok(
        vt.checked.instants.some((e) => e.cat === "violation" && e.args?.property === "pasid-reuse"),
        "the violation is marked",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// --- counterexamples: their Chrome trace and their ITF -------------------------

interface ItfDoc {
  "#meta": Record<string, unknown>;
  vars: string[];
  states: Record<string, unknown>[];
}

type Big = { "#bigint": string };
const num = (v: unknown): number => Number((v as Big)["#bigint"]);

/** An ITF value's type: Bool, Str, Int, a sequence or set of one type (null: empty), a record. */
type Shape =
  | "Bool"
  | "Str"
  | "Int"
  | { seq: Shape | null }
  | { set: Shape | null }
  | { rec: Record<string, Shape> };

function itfShape(v: unknown): Shape {
  if (typeof v === "boolean") return "Bool";
  if (typeof v === "string") return "Str";
  if (typeof v === "number") throw new Error("a plain JSON number where ITF wants {#bigint}");
  if (Array.isArray(v)) return { seq: v.map(itfShape).reduce<Shape | null>((a, b) => unify(a, b), null) };
  const o = v as Record<string, unknown>;
  if ("#bigint" in o) {
    if (!/^-?\d+$/.test(String(o["#bigint"]))) throw new Error(`bad #bigint ${String(o["#bigint"])}`);
    return "Int";
  }
  if ("#set" in o)
    return { set: (o["#set"] as unknown[]).map(itfShape).reduce<Shape | null>((a, b) => unify(a, b), null) };
  const rec: Record<string, Shape> = {};
  for (const k of Object.keys(o)) rec[k] = itfShape(o[k]);
  return { rec };
}

/** The one type two values share (an empty sequence or set takes the other's element type); throws when there is none. */
function unify(a: Shape | null, b: Shape | null): Shape | null {
  if (a === null) return b;
  if (b === null) return a;
  const fail = () => {
    throw new Error(`types differ: ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
  };
  if (typeof a === "string" || typeof b === "string") return a === b ? a : fail()!;
  if ("seq" in a && "seq" in b) return { seq: unify(a.seq, b.seq) };
  if ("set" in a && "set" in b) return { set: unify(a.set, b.set) };
  if ("rec" in a && "rec" in b) {
    const ka = Object.keys(a.rec).sort();
    const kb = Object.keys(b.rec).sort();
    if (ka.join() !== kb.join()) fail();
    const rec: Record<string, Shape> = {};
    for (const k of ka) rec[k] = unify(a.rec[k], b.rec[k])!;
    return { rec };
  }
  return fail()!;
}

/**
 * The ITF's typing rules as Apalache reads them: every state has exactly the
 * variables, a plain-number #meta.index counting from 0, every integer a
 * #bigint, and each variable keeps one type across states (records the same
 * fields, sequences and sets one element type).
 */
function checkItf(doc: ItfDoc): void {
  assert.equal(doc["#meta"].format, "ITF");
  const shapes = new Map<string, Shape | null>();
  for (const [i, s] of doc.states.entries()) {
    const meta = s["#meta"] as { index: unknown };
    assert.equal(meta.index, i, "#meta.index: a plain number, the state's position");
    assert.deepEqual(
      Object.keys(s)
        .filter((k) => k !== "#meta")
        .sort(),
      [...doc.vars].sort(),
      `state ${i} has exactly the variables`,
    );
    for (const v of doc.vars) shapes.set(v, unify(shapes.get(v) ?? null, itfShape(s[v])));
  }
}

describe("counterexamples, as Chrome trace and ITF", () => {
  let dir = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "asidlab-cex-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** check SCENARIO --kernel VARIANT with --trace and --itf: the schedule's property and message, the trace, the ITF. */
  function counterexample(scenario: string, variant: string) {
    const out = join(dir, `${scenario}.schedule`);
    const trace = join(dir, `${scenario}.json`);
    const itf = join(dir, `${scenario}.itf.json`);
    const r = cli("check", scenario, "--kernel", variant, "--out", out, "--trace", trace, "--itf", itf);
    assert.equal(r.status, 1, r.stderr);
    const sched = readFileSync(out, "utf8");
    const property = /^# property: (.*)$/m.exec(sched)?.[1] ?? "";
    const message = /^# message: (.*)$/m.exec(sched)?.[1] ?? "";
    const steps = sched.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length;
    const itfText = readFileSync(itf, "utf8");
    return {
      property,
      message,
      steps,
      trace: parseTrace(readFileSync(trace, "utf8")),
      itfText,
      itf: JSON.parse(itfText) as ItfDoc,
    };
  }

  test("the ITF checker catches what Apalache's reader refuses", () => {
    const doc = (states: Record<string, unknown>[]): ItfDoc => ({
      "#meta": { format: "ITF" },
      vars: ["x"],
      states,
    });
    const int = (n: number) => ({ "#bigint": String(n) });
    checkItf(
      doc([
        { "#meta": { index: 0 }, x: [] },
        { "#meta": { index: 1 }, x: [{ a: int(1) }] },
      ]),
    );
    assert.throws(() => checkItf(doc([{ "#meta": { index: 0 }, x: 1 }])), /plain JSON number/);
    assert.throws(() => checkItf(doc([{ "#meta": { index: { "#bigint": "0" } }, x: true }])), /plain number/);
    assert.throws(() => checkItf(doc([{ "#meta": { index: 0 }, x: [int(1), "a"] }])), /types differ/);
    assert.throws(
      () =>
        checkItf(
          doc([
            { "#meta": { index: 0 }, x: { a: int(1) } },
            { "#meta": { index: 1 }, x: { b: int(1) } },
          ]),
        ),
      /types differ/,
    );
    assert.throws(() => checkItf(doc([{ "#meta": { index: 0 }, y: true }])), /exactly the variables/);
  });

  test("check --trace: a valid trace, the violation marked, ENQCMD flows to the device's track, the kernel's call graph", () => {
    const c = counterexample("check-exit-inflight", "free-at-mmput");
    assert.equal(c.property, "pasid-reuse");
    const { errors, checked } = validateTrace(c.trace);
    assert.deepEqual(errors, []);
    assert.equal(c.trace.metadata.property, "pasid-reuse");
    assert.equal(c.trace.metadata.violation_at_step, c.steps);
    const marks = checked.instants.filter((e) => e.cat === "violation");
    assert.equal(marks.length, 1, "one violation, one mark");
    assert.equal(marks[0].args?.message, c.message);
    assert.equal(marks[0].ts, c.steps - 1, "at the violating step (one step = 1 µs)");
    assert.ok(checked.flows >= 2, "each ENQCMD descriptor: a flow from the CPU to the device");
    assert.ok([...checked.threadNames.values()].includes("device dsa0"));
    // Nesting as the kernel calls: the exit work's hooks are siblings inside
    // exit_to_user_mode (the model pushes them in reverse, one on the other),
    // and exit_to_user_mode runs inside do_syscall_64 (the model's tail call).
    const hooks = checked.parents.filter(
      (p) => p.name === "pasid_task_work" || p.name === "SWITCH_TO_USER_CR3",
    );
    assert.ok(hooks.length > 0);
    for (const h of hooks)
      assert.equal(h.stack.at(-1), "exit_to_user_mode", `${h.name} in ${h.stack.join(" > ")}`);
    const exits = checked.parents.filter((p) => p.name === "exit_to_user_mode");
    assert.ok(
      exits.some((p) => p.stack.at(-1) === "do_syscall_64"),
      "syscall_exit_to_user_mode, called by do_syscall_64",
    );
    const mmput = checked.parents.find((p) => p.name === "mmput");
    assert.deepEqual(mmput?.stack.slice(-2), ["do_syscall_64", "do_exit"], "exit(2) -> do_exit -> mmput");
  });

  test("the ITF of the PASID-reuse counterexample: Quint's reader takes it, and the last state shows the reuse", () => {
    const c = counterexample("check-exit-inflight", "free-at-mmput");
    checkItf(c.itf);
    const states = ofItf(JSON.parse(c.itfText));
    assert.equal(states.length, c.steps + 1, "the initial state and one per step");
    assert.equal(ofItfNormalized(JSON.parse(c.itfText)).length, c.steps + 1);
    const last = c.itf.states.at(-1)!;
    const meta = last["#meta"] as { violation?: { property: string; message: string }; transition?: string };
    assert.deepEqual(meta.violation, { property: c.property, message: c.message });
    assert.match(String(last.action), /^cpu\d+: \w+/, "who acted, and the kernel step");
    assert.ok(
      c.itf.states
        .slice(1)
        .every((s) => /^(cpu\d+: |device \w+: |tick cpu\d+|timer: )/.test(String(s.action))),
    );
    // "PASID 1 freed while dsa0 holds an accepted descriptor for it": the ITF alone shows it.
    const m = /^PASID (\d+) freed while (\w+) holds an accepted descriptor/.exec(c.message);
    assert.ok(m !== null, c.message);
    const pasid = Number(m[1]);
    const allocated = (s: Record<string, unknown>) =>
      (s.pasids_allocated as { "#set": Big[] })["#set"].map(num);
    assert.ok(!allocated(last).includes(pasid), "freed in the last state");
    assert.ok(allocated(c.itf.states.at(-2)!).includes(pasid), "allocated just before");
    const devs = last.devices as { name: string; wq: { pasid: Big; pid: Big }[] }[];
    const dev = devs.find((d) => d.name === m[2]);
    assert.ok(dev !== undefined);
    assert.ok(
      dev.wq.some((d) => num(d.pasid) === pasid),
      "the device still holds a descriptor with that PASID",
    );
    // The task that submitted it, by name, and its IA32_PASID (valid | PASID).
    const submitter = num(dev.wq[0].pid);
    const tasks = last.tasks as { pid: Big; name: string; IA32_PASID: Big; pasid_activated: boolean }[];
    const t = tasks.find((x) => num(x.pid) === submitter);
    assert.equal(t?.name, "leaver");
    assert.equal(t?.pasid_activated, true);
    assert.equal(num(t?.IA32_PASID), (0x80000000 | pasid) >>> 0);
  });

  test("the ITF of the stale-TLB counterexample: the TLB entry and the mm's flush generation are in the last state", () => {
    const c = counterexample("check-switching-flush", "83b0177a6c48");
    assert.equal(c.property, "tlb-stale");
    checkItf(c.itf);
    assert.equal(ofItf(JSON.parse(c.itfText)).length, c.steps + 1);
    assert.deepEqual(validateTrace(c.trace).errors, []);
    // "cpu 0: page 0 of mm 1 used through an entry of tlb_gen 0, flushed at 1"
    const m =
      /^cpu (\d+): page (\d+) of mm (\d+) used through an entry of tlb_gen (\d+), flushed at (\d+)$/.exec(
        c.message,
      );
    assert.ok(m !== null, c.message);
    const [cpu, page, mm, gen, flushed] = m.slice(1).map(Number);
    const last = c.itf.states.at(-1)!;
    const cpus = last.cpus as { cpu: Big; cr3_pcid: Big; tlb: { pcid: Big; page: Big; tlb_gen: Big }[] }[];
    const cr = cpus.find((x) => num(x.cpu) === cpu)!;
    assert.ok(
      cr.tlb.some((e) => num(e.page) === page && num(e.tlb_gen) === gen && num(e.pcid) === num(cr.cr3_pcid)),
      "the stale entry, under the PCID in CR3",
    );
    const mms = last.mms as { mm: Big; page_gen: Big[] }[];
    assert.equal(
      num(mms.find((x) => num(x.mm) === mm)?.page_gen[page]),
      flushed,
      "the mm's last flush of the page",
    );
  });
});
