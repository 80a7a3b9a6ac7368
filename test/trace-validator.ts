// What Chrome DevTools' trace engine and Perfetto need of a JSON trace, as
// a validator the trace tests share (trace-engine.test.ts runs DevTools'
// engine itself).

export interface TraceEvent {
  name?: unknown;
  cat?: unknown;
  ph?: unknown;
  ts?: unknown;
  dur?: unknown;
  pid?: unknown;
  tid?: unknown;
  id?: unknown;
  bp?: unknown;
  s?: unknown;
  args?: Record<string, unknown>;
}

export interface TraceDoc {
  traceEvents: TraceEvent[];
  metadata: Record<string, unknown>;
}

export interface Checked {
  slices: number;
  flows: number;
  instants: TraceEvent[];
  /** Per slice (X event, by start): the names of the slices around it on its track, outermost first. */
  parents: { name: string; tid: number; stack: string[] }[];
  threadNames: Map<string, string>;
}

/** Two timestamps in µs, rounded to ns, are the same time. */
const EPS = 1e-6;

/**
 * What Chrome DevTools' trace engine and Perfetto need of a JSON trace, as
 * errors: slices are complete events (X: cat, name, ts, dur >= 0, pid,
 * tid), not B/E (DevTools pairs B with E on one stack across all tracks, in
 * file order); per track they nest (each inside another or after it, never
 * overlapping one); instants have a scope and never go back in time on a
 * track; flow s/f pair up by (cat, name, id), s before f, f bound to the
 * slice around it (bp: e), and each lands where a slice of its cat starts
 * (DevTools binds a flow event to the event of the same ts, track and cat); every pid and pid/tid used has its
 * process_name/thread_name metadata event.
 */
export function validateTrace(doc: TraceDoc): { errors: string[]; checked: Checked } {
  const errors: string[] = [];
  const err = (i: number, m: string) => {
    if (errors.length < 20) errors.push(`event ${i}: ${m}`);
  };
  if (!Array.isArray(doc.traceEvents))
    return { errors: ["traceEvents is not an array"], checked: null as never };
  if (typeof doc.metadata !== "object" || doc.metadata === null) errors.push("no metadata object");
  const slices = new Map<string, { i: number; name: string; cat: string; ts: number; end: number }[]>();
  const lastTs = new Map<string, number>();
  const used = new Set<string>();
  const pids = new Set<number>();
  const processNames = new Set<number>();
  const threadNames = new Map<string, string>();
  const flowS = new Map<string, number>();
  const flowF = new Map<string, { i: number; ts: number; key: string }>();
  const flowEnds: { i: number; ts: number; key: string; cat: string; fk: string }[] = [];
  const checked: Checked = { slices: 0, flows: 0, instants: [], parents: [], threadNames };
  for (const [i, e] of doc.traceEvents.entries()) {
    const ph = e.ph;
    if (typeof ph !== "string") {
      err(i, "no ph");
      continue;
    }
    if (typeof e.pid !== "number" || typeof e.tid !== "number") {
      err(i, "pid/tid not numbers");
      continue;
    }
    const key = `${e.pid}/${e.tid}`;
    if (ph === "M") {
      if (e.name === "process_name") processNames.add(e.pid);
      if (e.name === "thread_name") threadNames.set(key, String(e.args?.name));
      continue;
    }
    used.add(key);
    pids.add(e.pid);
    if (typeof e.name !== "string") err(i, "no name");
    if (typeof e.ts !== "number" || !Number.isFinite(e.ts)) {
      err(i, "no numeric ts");
      continue;
    }
    if (ph === "X") {
      if (typeof e.cat !== "string" || e.cat === "") err(i, "X without cat");
      if (typeof e.dur !== "number" || !(e.dur >= 0)) {
        err(i, "X with no dur >= 0");
        continue;
      }
      const list = slices.get(key) ?? [];
      slices.set(key, list);
      list.push({ i, name: String(e.name), cat: String(e.cat), ts: e.ts, end: e.ts + e.dur });
      checked.slices++;
      continue;
    }
    const last = lastTs.get(key) ?? Number.NEGATIVE_INFINITY;
    if (e.ts < last) err(i, `ts ${e.ts} before ${last} on ${key}`);
    lastTs.set(key, e.ts);
    if (ph === "B" || ph === "E") {
      err(i, `${ph} event: DevTools pairs B/E across all tracks in file order; write X`);
    } else if (ph === "s" || ph === "f") {
      if (e.id === undefined) err(i, "flow event without id");
      const fk = `${String(e.cat)}/${String(e.name)}/${String(e.id)}`;
      if ((ph === "s" ? flowS : flowF).has(fk)) err(i, `flow ${ph} ${fk} twice`);
      if (ph === "s") flowS.set(fk, e.ts);
      else flowF.set(fk, { i, ts: e.ts, key });
      flowEnds.push({ i, ts: e.ts, key, cat: String(e.cat), fk });
      if (ph === "f" && e.bp !== "e") err(i, 'flow f not bound to its enclosing slice (bp: "e")');
    } else if (ph === "i" || ph === "I") {
      if (!["g", "p", "t"].includes(String(e.s))) err(i, `instant scope ${String(e.s)}`);
      checked.instants.push(e);
    } else err(i, `unexpected ph ${ph}`);
  }
  // Per track, by start (the longer first; of two alike, the one written later, which closed later, is outer).
  for (const [key, list] of slices) {
    list.sort((a, b) => a.ts - b.ts || b.end - a.end || b.i - a.i);
    const stack: { name: string; end: number }[] = [];
    for (const x of list) {
      // A slice that ends where this one starts is its predecessor, unless this one is an instant-long slice inside it.
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        const inside = x.end <= top.end + EPS && (x.ts < top.end - EPS || x.end - x.ts < EPS);
        if (inside) break;
        if (x.ts < top.end - EPS) {
          err(x.i, `slice ${x.name} [${x.ts}, ${x.end}] overlaps ${top.name} (ends ${top.end}) on ${key}`);
          break;
        }
        stack.pop();
      }
      const tid = Number(key.split("/")[1]);
      checked.parents.push({ name: x.name, tid, stack: stack.map((s) => s.name) });
      stack.push({ name: x.name, end: x.end });
    }
  }
  for (const [fk, ts] of flowS) {
    const f = flowF.get(fk);
    if (f === undefined) errors.push(`flow ${fk}: s without f`);
    else if (f.ts < ts) errors.push(`flow ${fk}: f before s`);
    else checked.flows++;
  }
  for (const fk of flowF.keys()) if (!flowS.has(fk)) errors.push(`flow ${fk}: f without s`);
  for (const f of flowEnds) {
    const starts = (slices.get(f.key) ?? []).some((x) => Math.abs(x.ts - f.ts) < EPS && x.cat === f.cat);
    if (!starts) err(f.i, `flow ${f.fk} lands where no slice of its cat starts`);
  }
  for (const pid of pids) if (!processNames.has(pid)) errors.push(`pid ${pid} has no process_name`);
  for (const key of used) if (!threadNames.has(key)) errors.push(`${key} has no thread_name`);
  return { errors, checked };
}

export function parseTrace(text: string): TraceDoc {
  return JSON.parse(text) as TraceDoc;
}
