// What a partial-order reduction could take on the check-at-scale
// scenarios (issue #13's SPIN rows): over the first states of a bounded
// search, each enabled CPU step is run with its footprint recorded and
// sorted into what lets it (or keeps it from) being explored alone:
//   - masked, confined: interrupts masked and every word it touches the
//     CPU's own (search/ownership.ts): --por's persistent sets take these;
//   - masked, shared: interrupts masked, but a word another CPU, a device
//     or a wake-up may touch (the first such word is named);
//   - interrupts on, task-local: it touches only the frames already on the
//     running task's stack (and reads the words that say what runs; a call
//     or return moves the stack top, where an interrupt's exit path pushes
//     its own frames, so it does not count): a step an
//     interrupt could be moved past, the most a rule that defers ticks and
//     interrupts could take;
//   - interrupts on, shared: anything else (the first word named);
//   - user: a user-mode op.
// Deterministic (no timing). Run: npm run build && node dist/bench/census.js [--states N] [--bound B]

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TR_CPU, trArg, trKind } from "../src/engine/engine.js";
import type { Kernel } from "../src/kernel/kernel.js";
import { FRAME_WORDS } from "../src/machine/state.js";
import { compileScenario } from "../src/scenario/compile.js";
import { builtinScenarioDir, loadScenarioString } from "../src/scenario/load.js";
import { runDfs } from "../src/search/dfs.js";
import { Footprints } from "../src/search/footprints.js";
import { interruptsMasked, Ownership } from "../src/search/ownership.js";
import { PlainDfs } from "../src/search/plain.js";
import type { DfsStack } from "../src/search/stack.js";
import { checkMachine, stepFinding } from "../src/search/transitions.js";

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const STATES = Number(opt("--states", "200000"));
const BOUND = Number(opt("--bound", "1"));
const SCENARIOS = ["check-gp-fixup-2cpu", "check-exit-inflight-8", "check-user-asid-3cpu"];
const KINDS = [
  "masked, confined",
  "masked, shared",
  "interrupts on, task-local",
  "interrupts on, shared",
  "user",
];

/** A field's name with its indices folded (`cpu[#].irqs_off`). */
const fieldOf = (k: Kernel, a: number) => k.L.describe(a).replace(/\d+/g, "#");

class Census extends PlainDfs {
  readonly kinds = new Map<string, number>();
  readonly blockers = new Map<string, Map<string, number>>();
  steps = 0;
  private readonly fp: Footprints;
  private readonly own: Ownership;
  private readonly pool = new Int32Array(1 << 14);

  constructor(
    k: Kernel,
    private readonly e: ReturnType<typeof checkMachine>["e"],
  ) {
    super(k, BOUND, { maxStates: STATES });
    this.fp = new Footprints(k);
    this.own = new Ownership(k);
  }

  override expand(stack: DfsStack, depth: number): number {
    const n = super.expand(stack, depth);
    const buf = stack.trs[depth];
    for (let i = 0; i < n; i++) if (trKind(buf[i]) === TR_CPU) this.classify(stack, depth, trArg(buf[i]));
    return n;
  }

  private classify(s: DfsStack, d: number, c: number): void {
    const k = this.k;
    const C = k.C;
    const T = k.T;
    const at = (f: { at: number; stride: number }, i: number) => f.at + i * f.stride;
    const masked = interruptsMasked(k, c);
    const user = k.get(C.in_user, c) !== 0 && k.get(C.irq_depth, c) === 0;
    const curr = k.get(C.curr, c);
    const depth = k.get(T.depth, curr);
    this.own.capture();
    const fp = this.fp;
    fp.begin();
    stepFinding(this.e, c);
    fp.end();
    k.mem.undo(s.marks[d], s.hlo[d], s.hhi[d]);
    k.violations.length = 0;
    k.violationCount = 0;
    this.steps++;
    let kind: string;
    let blocker: string | null = null;
    if (user) kind = "user";
    else if (masked) {
      const nr = Math.min(fp.nr, this.pool.length / 2);
      const nw = Math.min(fp.nw, this.pool.length / 2);
      this.pool.set(fp.reads.subarray(0, nr), 0);
      this.pool.set(fp.writes.subarray(0, nw), nr);
      const waived = at(C.pending, c);
      if (this.own.confined(c, this.pool, 0, nr, nr, nw, false, waived)) kind = "masked, confined";
      else {
        kind = "masked, shared";
        blocker = this.firstOutside(c, waived);
      }
    } else {
      const lo = k.taskFrameAddr(curr, 0);
      const hi = lo + depth * FRAME_WORDS;
      const dispatch = new Set([
        at(C.curr, c),
        at(C.irq_depth, c),
        at(C.irqs_off, c),
        at(C.pending, c),
        at(C.in_user, c),
        at(C.halted, c),
        at(C.preempt_count, c),
        at(T.depth, curr),
      ]);
      for (let j = 0; j < fp.nw && blocker === null; j++) {
        const a = fp.writes[j];
        if (a < lo || a >= hi) blocker = `writes ${fieldOf(k, a)}`;
      }
      for (let j = 0; j < fp.nr && blocker === null; j++) {
        const a = fp.reads[j];
        if ((a < lo || a >= hi) && !dispatch.has(a)) blocker = `reads ${fieldOf(k, a)}`;
      }
      kind = blocker === null ? "interrupts on, task-local" : "interrupts on, shared";
    }
    this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
    if (blocker !== null) {
      const m = this.blockers.get(kind) ?? new Map<string, number>();
      this.blockers.set(kind, m);
      m.set(blocker, (m.get(blocker) ?? 0) + 1);
    }
  }

  /** The first word of the last footprint outside what CPU c owns (as `confined` judges it), named. */
  private firstOutside(c: number, waived: number): string {
    const fp = this.fp;
    const one = new Int32Array(1);
    for (let j = 0; j < fp.nw; j++) {
      one[0] = fp.writes[j];
      if (!this.own.confined(c, one, 0, 0, 0, 1, false, waived))
        return `writes ${fieldOf(this.k, fp.writes[j])}`;
    }
    for (let j = 0; j < fp.nr; j++) {
      one[0] = fp.reads[j];
      if (!this.own.confined(c, one, 0, 1, 0, 0, false, waived))
        return `reads ${fieldOf(this.k, fp.reads[j])}`;
    }
    return "?";
  }
}

const pct = (a: number, b: number) => `${((100 * a) / Math.max(1, b)).toFixed(1)} %`;
console.log(
  `CPU steps enabled in the first ${STATES.toLocaleString("en-US")} states of a search at bound ${BOUND}:\n`,
);
console.log(
  `| scenario | CPU steps | ${KINDS.join(" | ")} | what blocks most (interrupts on) | what blocks most (masked) |`,
);
console.log(`|---|---|${KINDS.map(() => "---|").join("")}---|---|`);
for (const name of SCENARIOS) {
  const src = readFileSync(join(builtinScenarioDir(), `${name}.yaml`), "utf8");
  const cs = compileScenario(loadScenarioString(src, `${name}.yaml`), {});
  const { k, e } = checkMachine(cs.boot, []);
  const census = new Census(k, e);
  runDfs(k, e, census, BOUND, () => 0);
  const top = (kind: string) =>
    [...(census.blockers.get(kind) ?? new Map<string, number>()).entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 3)
      .map(([w, c]) => `${w} (${pct(c, census.steps)})`)
      .join(", ");
  const cells = KINDS.map((kind) => pct(census.kinds.get(kind) ?? 0, census.steps));
  console.log(
    `| ${name} | ${census.steps.toLocaleString("en-US")} | ${cells.join(" | ")} | ${top("interrupts on, shared")} | ${top("masked, shared")} |`,
  );
}
