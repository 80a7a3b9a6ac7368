// `sweep`: scenarios x varied values x policies x seeds, one cell per run, on
// a pool of worker threads (piscina). Results are NDJSON, one line per cell,
// in cell order; the bytes depend only on the sweep (never on the number of
// workers, the shard, the order cells finished in, or a resume).
//
// Sharding: shard k of n holds the cells whose index i has i mod n = k-1,
// so shards get similar mixes of scenarios. `merge` checks that the shards
// come from one sweep and cover every cell once, and writes the lines in
// cell order: the bytes of the unsharded run.
//
// Resume: with --out FILE, each finished cell is appended to FILE at once;
// a rerun reads FILE, keeps the cells it holds (a torn last line from a kill
// is dropped) and runs only the others; at the end FILE is rewritten in cell
// order (through a temporary file and a rename).

import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import { CONTRACT_METRICS, CORE_METRICS } from "../machine/metrics.js";
import { compileScenario } from "../scenario/compile.js";
import { InputError } from "../scenario/errors.js";
import { builtinScenarioDir, type LoadedScenario, loadScenarioFile } from "../scenario/load.js";
import { existingRegularFile, fsFailure, readInputFile } from "../scenario/read.js";
import type { LoadedSweep } from "../scenario/sweep-spec.js";
import { checkVaries, crossProduct, type Vary, variedScenario, varyName } from "./compare.js";
import { lockOutput } from "./outlock.js";
import type { CellOutcome, CellResult, CellTask } from "./sweep-worker.js";

/** Cells per message to a worker, at most. */
const BATCH_MAX = 32;

export interface Cell {
  index: number;
  /** The scenario's name (from the file). */
  scenario: string;
  params: Record<string, string>;
  seed: number;
  task: CellTask;
}

export interface SweepPlan {
  /** A hash of everything that defines the cells' results: the spec's cells and the scenario texts. */
  id: string;
  name: string;
  cells: Cell[];
}

export interface Shard {
  k: number;
  n: number;
}

/** `k/n` with 1 <= k <= n. */
export function parseShard(arg: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(arg);
  if (m === null) throw new InputError(`--shard ${arg}: expected k/n, such as 2/8`);
  const k = Number(m[1]);
  const n = Number(m[2]);
  if (n < 1) throw new InputError(`--shard ${arg}: n must be at least 1`);
  if (k < 1 || k > n) throw new InputError(`--shard ${arg}: k must be between 1 and ${n}`);
  return { k, n };
}

function resolveIn(spec: LoadedSweep, entry: string, i: number): string {
  const rel = join(dirname(spec.file), entry);
  if (existsSync(rel)) return rel;
  if (existsSync(entry)) return entry;
  if (/^[A-Za-z0-9_-]+$/.test(entry)) {
    for (const ext of [".yaml", ".yml", ".json"]) {
      const p = join(builtinScenarioDir(), entry + ext);
      if (existsSync(p)) return p;
    }
  }
  throw new InputError(
    `${spec.locate(["scenarios", i])}: scenarios[${i}]: ${entry}: no such file (relative to the sweep file), and no built-in scenario of that name`,
  );
}

const KNOWN_METRICS: readonly string[] = [...CONTRACT_METRICS, ...CORE_METRICS];

/** Every cell of the sweep, validated: a bad key, value or combination is a located input error. */
export function planSweep(spec: LoadedSweep, extra: readonly Vary[] = []): SweepPlan {
  const s = spec.data;
  const where = (path: (string | number)[]) => spec.locate(path);
  // `vary: { "idle threads=processes.0.count": [...] }`: a label a person chose, then the key.
  const raws = Object.keys(s.vary);
  const fileVaries: Vary[] = Object.entries(s.vary).map(([raw, vals]) => {
    const eq = raw.indexOf("=");
    const values = vals.map(String);
    return eq > 0
      ? { key: raw.slice(eq + 1).trim(), values, label: raw.slice(0, eq).trim() }
      : { key: raw, values };
  });
  for (const [n, v] of fileVaries.entries()) {
    try {
      if (v.label !== undefined && (v.label === "" || v.label.length > 40 || v.key === ""))
        throw new InputError(`${raws[n]}: expected "label=key" with a label of 1 to 40 characters`);
      checkVaries([v]);
    } catch (err) {
      if (err instanceof InputError)
        throw new InputError(`${spec.locateKey(["vary"], raws[n])}: vary: ${err.message}`);
      throw err;
    }
  }
  const policyVaries: Vary[] = Object.entries(s.policies)
    .filter(([, vals]) => vals !== undefined)
    .map(([key, vals]) => ({ key, values: [...(vals as string[])] }));
  const varies = [...fileVaries, ...extra, ...policyVaries];
  checkVaries(varies); // --vary given twice, or a key both in the file and on the command line
  for (const [i, m] of (s.metrics ?? []).entries()) {
    if (!KNOWN_METRICS.includes(m))
      throw new InputError(`${where(["metrics", i])}: metrics[${i}]: unknown metric '${m}'`);
  }
  const scenarios: { entry: string; ls: LoadedScenario }[] = s.scenarios.map((entry, i) => ({
    entry,
    ls: loadScenarioFile(resolveIn(spec, entry, i)),
  }));
  // Each value alone first, so that a bad one is reported where the sweep file gives it.
  for (const { ls } of scenarios) {
    for (const [n, v] of fileVaries.entries()) {
      v.values.forEach((val, i) => {
        try {
          variedScenario(ls, { [v.key]: val });
        } catch (err) {
          if (err instanceof InputError)
            throw new InputError(
              `${where(["vary", raws[n], i])}: vary.${raws[n]}[${i}]: ${ls.scenario.name}: ${err.message.replace(/^--vary /, "")}`,
            );
          throw err;
        }
      });
    }
  }
  const combos = varies.length === 0 ? [{}] : crossProduct(varies);
  const cells: Cell[] = [];
  for (const { entry, ls } of scenarios) {
    for (const params of combos) {
      let varied: LoadedScenario;
      try {
        varied = variedScenario(ls, params);
        compileScenario(varied); // the compiler's own checks (kernel variants, sizes), once per combination
      } catch (err) {
        if (err instanceof InputError)
          throw new InputError(`${spec.file}: ${ls.scenario.name}: ${err.message.replace(/^--vary /, "")}`);
        throw err;
      }
      for (let j = 0; j < s.seeds; j++) {
        const seed = (varied.scenario.seed + j) >>> 0;
        const index = cells.length;
        cells.push({
          index,
          scenario: ls.scenario.name,
          // Keys as a person named them (a label), else as the path: the same bytes as before without labels.
          params: Object.fromEntries(
            varies.map((v) => [varyName(v), (params as Record<string, string>)[v.key]]),
          ),
          seed,
          task: {
            cell: index,
            file: entry,
            source: ls.source,
            doc: varied.scenario,
            seed,
            maxSteps: s.max_steps,
            metrics: s.metrics,
          },
        });
      }
    }
  }
  const h = createHash("sha256");
  h.update(JSON.stringify({ name: s.name, max_steps: s.max_steps ?? null, metrics: s.metrics ?? null }));
  for (const { entry, ls } of scenarios) h.update(`\0${entry}\0${ls.source}`);
  for (const c of cells) h.update(`\0${JSON.stringify([c.scenario, c.params, c.seed])}`);
  return { id: h.digest("hex").slice(0, 16), name: s.name, cells };
}

/** The NDJSON line of a cell (no newline): its identity, then its result or its error. */
export function cellLine(plan: SweepPlan, cell: Cell, r: CellResult | { error: string }): string {
  const head = {
    format: "asidlab/sweep-cell/v1",
    sweep: plan.id,
    name: plan.name,
    cell: cell.index,
    cells: plan.cells.length,
    scenario: cell.scenario,
    params: cell.params,
    seed: cell.seed,
  };
  if ("error" in r) return JSON.stringify({ ...head, status: "error", error: r.error });
  return JSON.stringify({
    ...head,
    status: "ok",
    complete: r.complete,
    violations: r.violations,
    state_hash: r.state_hash,
    metrics: r.metrics,
  });
}

/** What a result line says about itself. */
export interface LineHead {
  sweep: string;
  cell: number;
  cells: number;
}

function parseHead(line: string): LineHead | null {
  try {
    const j = JSON.parse(line) as Partial<LineHead>;
    if (typeof j.sweep !== "string" || !Number.isInteger(j.cell) || !Number.isInteger(j.cells)) return null;
    if ((j.cell as number) < 0 || (j.cell as number) >= (j.cells as number)) return null;
    return j as LineHead;
  } catch {
    return null;
  }
}

/** The finished cells in an earlier output of this sweep and shard (for resuming). */
function readDone(plan: SweepPlan, shard: Shard, out: string): Map<number, string> {
  const done = new Map<number, string>();
  // Never a device or FIFO (`--out /dev/full` is not an earlier result, nor a file to rename over).
  if (!existingRegularFile(out, "--out (a results file)")) return done;
  const text = readInputFile(out);
  const lines = text.split("\n");
  // The last piece is "" after a final newline, or a line torn by a kill: dropped either way.
  lines.pop();
  lines.forEach((line, i) => {
    const h = parseHead(line);
    if (h === null) throw new InputError(`${out}:${i + 1}: not a sweep result line`);
    if (h.sweep !== plan.id || h.cells !== plan.cells.length)
      throw new InputError(
        `${out}:${i + 1}: results of another sweep (${h.sweep}; this one is ${plan.id}): remove the file or choose another --out`,
      );
    if (h.cell % shard.n !== shard.k - 1)
      throw new InputError(`${out}:${i + 1}: cell ${h.cell} is not in shard ${shard.k}/${shard.n}`);
    if (!done.has(h.cell)) done.set(h.cell, line);
  });
  return done;
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (err) {
    throw new InputError(`${path}: cannot write: ${fsFailure(err)}`);
  }
}

const ordered = (m: Map<number, string>) =>
  [...m.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([, l]) => `${l}\n`)
    .join("");

export interface SweepOptions {
  workers?: number;
  shard?: Shard;
  /** Results file (resumable); without it, lines go to `write` in cell order. */
  out?: string;
  write?: (chunk: string) => void;
  progress?: (done: number, total: number) => void;
  /** The worker module (tests put a failing one in). */
  workerUrl?: string;
}

export interface SweepSummary {
  cells: number;
  inShard: number;
  skipped: number;
  ran: number;
  failed: number;
}

/** The worker module beside this one (.ts under tsx, .js once built). */
export function defaultWorkerUrl(): string {
  const here = fileURLToPath(import.meta.url);
  return new URL(`./sweep-worker${extname(here)}`, import.meta.url).href;
}

export async function runSweep(plan: SweepPlan, opts: SweepOptions = {}): Promise<SweepSummary> {
  const release = opts.out === undefined ? () => {} : lockOutput(opts.out);
  try {
    return await runLocked(plan, opts);
  } finally {
    release();
  }
}

async function runLocked(plan: SweepPlan, opts: SweepOptions): Promise<SweepSummary> {
  const shard = opts.shard ?? { k: 1, n: 1 };
  const mine = plan.cells.filter((c) => c.index % shard.n === shard.k - 1);
  const done = opts.out === undefined ? new Map<number, string>() : readDone(plan, shard, opts.out);
  const skipped = done.size;
  const todo = mine.filter((c) => !done.has(c.index));
  const out = opts.out;
  // Start from the cells kept, in order (this also drops a torn last line).
  if (out !== undefined) writeAtomically(out, ordered(done));
  const write = opts.write ?? ((s: string) => process.stdout.write(s));
  let failed = 0;
  let finished = 0;
  // Without a file, lines go out in cell order: hold the early finishers.
  const pending = new Map<number, string>();
  let next = 0;
  const record = (cell: Cell, line: string) => {
    finished++;
    if (out !== undefined) {
      appendFileSync(out, `${line}\n`);
      done.set(cell.index, line);
    } else {
      pending.set(cell.index, line);
      while (next < todo.length && pending.has(todo[next].index)) {
        write(`${pending.get(todo[next].index)}\n`);
        pending.delete(todo[next].index);
        next++;
      }
    }
    opts.progress?.(skipped + finished, mine.length);
  };
  opts.progress?.(skipped, mine.length);
  if (todo.length > 0) {
    const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), todo.length));
    const pool = new Piscina<CellTask[], CellOutcome[]>({
      filename: opts.workerUrl ?? defaultWorkerUrl(),
      minThreads: workers,
      maxThreads: workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: 1000,
    });
    const outcome = (cell: Cell, r: CellOutcome) => {
      if ("error" in r) failed++;
      record(cell, cellLine(plan, cell, r));
    };
    // Cells go in batches (a message per cell would cost about as much as a small cell), small
    // enough that every worker gets many and the last ones finish together.
    const size = Math.max(1, Math.min(BATCH_MAX, Math.floor(todo.length / (workers * 8))));
    const batches: Cell[][] = [];
    for (let i = 0; i < todo.length; i += size) batches.push(todo.slice(i, i + size));
    const runOne = (cell: Cell) =>
      pool.run([cell.task]).then(
        ([r]) => outcome(cell, r),
        (err: unknown) =>
          outcome(cell, { error: (err instanceof Error ? err.message : String(err)).split("\n", 1)[0] }),
      );
    try {
      await Promise.all(
        batches.map((batch) =>
          pool.run(batch.map((c) => c.task)).then(
            (rs) => {
              rs.forEach((r, i) => {
                outcome(batch[i], r);
              });
            },
            // The thread died: which cell killed it? Each alone, so the others still run.
            () => Promise.all(batch.map(runOne)),
          ),
        ),
      );
    } finally {
      await pool.destroy();
    }
  }
  if (out !== undefined) writeAtomically(out, ordered(done));
  return { cells: plan.cells.length, inShard: mine.length, skipped, ran: todo.length, failed };
}

/** Shard outputs -> the unsharded output's bytes; shards of another sweep or a missing cell are input errors. */
export function mergeResults(inputs: readonly { file: string; text: string }[]): string {
  if (inputs.length === 0) throw new InputError("merge: no files given");
  const lines = new Map<number, { line: string; file: string }>();
  let first: { file: string; line: number; head: LineHead } | null = null;
  for (const { file, text } of inputs) {
    if (text !== "" && !text.endsWith("\n"))
      throw new InputError(
        `${file}:${text.split("\n").length}: a torn last line: this shard did not finish (run it again to resume)`,
      );
    const ls = text === "" ? [] : text.slice(0, -1).split("\n");
    ls.forEach((line, i) => {
      const at = `${file}:${i + 1}`;
      const h = parseHead(line);
      if (h === null) throw new InputError(`${at}: not a sweep result line`);
      if (first === null) first = { file, line: i + 1, head: h };
      else if (h.sweep !== first.head.sweep || h.cells !== first.head.cells)
        throw new InputError(
          `${at}: from another sweep (${h.sweep}, ${h.cells} cells) than ${first.file}:${first.line} (${first.head.sweep}, ${first.head.cells} cells)`,
        );
      const seen = lines.get(h.cell);
      if (seen !== undefined) throw new InputError(`${at}: cell ${h.cell} is also in ${seen.file}`);
      lines.set(h.cell, { line, file });
    });
  }
  if (first === null)
    throw new InputError(`merge: no result lines in ${inputs.map((i) => i.file).join(", ")}`);
  const total = (first as { head: LineHead }).head.cells;
  const missing: number[] = [];
  for (let i = 0; i < total; i++) if (!lines.has(i)) missing.push(i);
  if (missing.length > 0) {
    const shown = missing.slice(0, 8).join(", ") + (missing.length > 8 ? ", ..." : "");
    throw new InputError(
      `merge: ${missing.length} of ${total} cells missing (cells ${shown}): a shard is missing or did not finish`,
    );
  }
  return ordered(new Map([...lines.entries()].map(([i, v]) => [i, v.line])));
}
