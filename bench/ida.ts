// The PASID allocator (src/kernel/ida.ts) over the full 20-bit space, used as
// the kernel uses it: ida_alloc_range(ida, 1, 2^20 - 1) until all 1,048,575
// PASIDs are out, ida_free of all of them in a shuffled order (seeded
// xoroshiro128+, Fisher-Yates), then ida_alloc_range for all of them again.
// Every repetition starts from a fresh, empty memory; each phase is timed on
// its own and the figures are medians over the repetitions.
//
// Beside it, a naive lowest-free allocator: a Set of the used IDs and a linear
// scan from min for the lowest ID not in it. Allocating N IDs in order costs it
// N^2/2 lookups, so it runs on 2^13 - 1 IDs (the bitmap is run there too, for
// the same-size comparison) and its full-size time is extrapolated. Its memory
// is that of a Set holding all 1,048,575 IDs, measured with the heap after a
// gc when `--expose-gc` is given, else estimated from V8's hash-set layout.
//
// It measures and prints; it never fails on a figure.

import { uniformInt } from "pure-rand/distribution/uniformInt";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { type Ida, ida_alloc_range, ida_count, ida_free, ida_words } from "../src/kernel/ida.js";
import { HEADER_WORDS, Memory } from "../src/machine/memory.js";
import { median, nowNs, sinkValue } from "./timing.js";

/** >= 20 M allocator operations per second over the full 20-bit space. */
export const TARGET_IDA_OPS_PER_SEC = 20_000_000;
/** <= 256 KiB of allocator memory for 2^20 IDs. */
export const TARGET_IDA_BYTES = 256 * 1024;

export const IDA_BITS = 20;
/** The naive allocator's ID space: 2^13 - 1 IDs (a full-size run would take hours). */
export const NAIVE_BITS = 13;
const SHUFFLE_SEED = 0x9a51d;

export interface Phase {
  label: string;
  ops: number;
  /** Median over the repetitions. */
  ms: number;
  ops_per_sec: number;
}

export interface AllocatorRun {
  allocator: string;
  /** IDs handed out per allocation phase: 1 .. 2^bits - 1. */
  ids: number;
  warmups: number;
  reps: number;
  /** alloc all, free all shuffled, alloc all again. */
  phases: Phase[];
  /** All three phases' operations over the median total time. */
  overall_ops_per_sec: number;
  /** Total ms of each timed repetition. */
  samples_ms: number[];
  /** What went wrong with the allocation order or the counts, if anything (printed, not asserted). */
  anomaly: string | null;
}

export interface IdaResult {
  full: AllocatorRun;
  bitmap_small: AllocatorRun;
  naive_small: AllocatorRun;
  /** ida_words(20) * 4. */
  bitmap_bytes: number;
  /** Heap of a Set of all 2^20 - 1 IDs. */
  naive_set_bytes: number;
  naive_set_bytes_how: "measured" | "estimated";
  /** The naive allocator's time for the full 2^20 - 1 IDs, extrapolated (N^2 alloc phases). */
  naive_full_extrapolated_s: number;
}

/** 1 .. n in a seeded random order. */
function shuffled(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i + 1;
  const rng = xoroshiro128plus(SHUFFLE_SEED);
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(rng, 0, i);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

// ---- the bitmap IDA ---------------------------------------------------------------------------

/** Allocate 1..n in order; returns how many came out of order. */
function idaAllocAll(mem: Memory, ida: Ida, n: number): number {
  let bad = 0;
  for (let i = 1; i <= n; i++) if (ida_alloc_range(mem, ida, 1, n) !== i) bad++;
  return bad;
}

function idaFreeAll(mem: Memory, ida: Ida, order: Int32Array): number {
  let bad = 0;
  for (let i = 0; i < order.length; i++) if (!ida_free(mem, ida, order[i])) bad++;
  return bad;
}

/** One repetition: [alloc ns, free ns, alloc ns], and an anomaly if any. */
function idaRep(bits: number, order: Int32Array): { ns: number[]; anomaly: string | null } {
  const mem = new Memory(HEADER_WORDS + ida_words(bits));
  const ida: Ida = { base: HEADER_WORDS, bits };
  const n = order.length;
  const t0 = nowNs();
  const a = idaAllocAll(mem, ida, n);
  const t1 = nowNs();
  const full = ida_alloc_range(mem, ida, 1, n) === -1 && ida_count(mem, ida) === n;
  const t2 = nowNs();
  const f = idaFreeAll(mem, ida, order);
  const t3 = nowNs();
  const empty = ida_count(mem, ida) === 0;
  const t4 = nowNs();
  const b = idaAllocAll(mem, ida, n);
  const t5 = nowNs();
  sinkValue(mem.hashLo());
  const ok = a + f + b === 0 && full && empty;
  return {
    ns: [t1 - t0, t3 - t2, t5 - t4],
    anomaly: ok ? null : `out of order ${a}+${b}, failed frees ${f}`,
  };
}

// ---- the naive allocator: a Set of used IDs, linear scan from min ------------------------------

function naiveAlloc(used: Set<number>, min: number, max: number): number {
  for (let id = min; id <= max; id++) {
    if (!used.has(id)) {
      used.add(id);
      return id;
    }
  }
  return -1;
}

function naiveAllocAll(used: Set<number>, n: number): number {
  let bad = 0;
  for (let i = 1; i <= n; i++) if (naiveAlloc(used, 1, n) !== i) bad++;
  return bad;
}

function naiveFreeAll(used: Set<number>, order: Int32Array): number {
  let bad = 0;
  for (let i = 0; i < order.length; i++) if (!used.delete(order[i])) bad++;
  return bad;
}

function naiveRep(order: Int32Array): { ns: number[]; anomaly: string | null } {
  const used = new Set<number>();
  const n = order.length;
  const t0 = nowNs();
  const a = naiveAllocAll(used, n);
  const t1 = nowNs();
  const f = naiveFreeAll(used, order);
  const t2 = nowNs();
  const b = naiveAllocAll(used, n);
  const t3 = nowNs();
  sinkValue(used.size);
  const ok = a + f + b === 0 && used.size === n;
  return {
    ns: [t1 - t0, t2 - t1, t3 - t2],
    anomaly: ok ? null : `out of order ${a}+${b}, failed frees ${f}`,
  };
}

// ---- driver -----------------------------------------------------------------------------------

const PHASES = ["alloc all, in order", "free all, shuffled", "alloc all again"];

function measureRun(
  allocator: string,
  order: Int32Array,
  rep: (order: Int32Array) => { ns: number[]; anomaly: string | null },
  warmups: number,
  reps: number,
): AllocatorRun {
  for (let i = 0; i < warmups; i++) rep(order);
  const per: number[][] = [[], [], []];
  const totals: number[] = [];
  let anomaly: string | null = null;
  for (let r = 0; r < reps; r++) {
    const res = rep(order);
    for (let p = 0; p < 3; p++) per[p].push(res.ns[p]);
    totals.push(res.ns[0] + res.ns[1] + res.ns[2]);
    anomaly ??= res.anomaly;
  }
  const n = order.length;
  const phases = PHASES.map((label, p) => {
    const ms = median(per[p]) / 1e6;
    return { label, ops: n, ms, ops_per_sec: n / (ms / 1e3) };
  });
  const total = median(totals);
  return {
    allocator,
    ids: n,
    warmups,
    reps,
    phases,
    overall_ops_per_sec: (3 * n) / (total / 1e9),
    samples_ms: totals.map((t) => t / 1e6),
    anomaly,
  };
}

/** Bytes a Set of all 1..n holds: the heap difference after a gc, or V8's OrderedHashSet layout. */
function setBytes(n: number): { bytes: number; how: "measured" | "estimated" } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") {
    // Capacity: a power of two >= n; buckets = capacity / 2; entries of key + chain; 8-byte slots.
    const capacity = 2 ** Math.ceil(Math.log2(n));
    return { bytes: 8 * (3 + capacity / 2 + 2 * capacity), how: "estimated" };
  }
  gc();
  const before = process.memoryUsage().heapUsed;
  const set = new Set<number>();
  for (let id = 1; id <= n; id++) set.add(id);
  gc();
  const bytes = process.memoryUsage().heapUsed - before;
  sinkValue(set.size);
  return { bytes, how: "measured" };
}

export function measureIda(progress: (msg: string) => void): IdaResult {
  const fullOrder = shuffled(2 ** IDA_BITS - 1);
  const smallOrder = shuffled(2 ** NAIVE_BITS - 1);
  progress(`PASID allocator: bitmap IDA over 2^${IDA_BITS} - 1 IDs (2 warm-up + 7 runs)`);
  const full = measureRun("bitmap IDA", fullOrder, (o) => idaRep(IDA_BITS, o), 2, 7);
  progress(`PASID allocator: bitmap IDA and naive Set over 2^${NAIVE_BITS} - 1 IDs (1 warm-up + 3 runs)`);
  const bitmapSmall = measureRun("bitmap IDA", smallOrder, (o) => idaRep(NAIVE_BITS, o), 1, 3);
  const naiveSmall = measureRun("naive Set + scan", smallOrder, naiveRep, 1, 3);
  const set = setBytes(fullOrder.length);
  // The two alloc phases grow as N^2, the free phase as N.
  const scale = fullOrder.length / smallOrder.length;
  const [a, f, b] = naiveSmall.phases.map((p) => p.ms / 1e3);
  return {
    full,
    bitmap_small: bitmapSmall,
    naive_small: naiveSmall,
    bitmap_bytes: ida_words(IDA_BITS) * Int32Array.BYTES_PER_ELEMENT,
    naive_set_bytes: set.bytes,
    naive_set_bytes_how: set.how,
    naive_full_extrapolated_s: (a + b) * scale * scale + f * scale,
  };
}

// ---- output -----------------------------------------------------------------------------------

const fixed = (x: number, d: number) =>
  x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const mega = (x: number) => `${fixed(x / 1e6, 2)} M/s`;
const kib = (x: number) => `${fixed(x / 1024, 1)} KiB`;

function pad(rows: string[][], align: string): string {
  const width = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (align[i] === "l" ? c.padEnd(width[i]) : c.padStart(width[i]))).join("  ");
  return rows.map((r) => line(r).trimEnd()).join("\n");
}

function runRows(r: AllocatorRun): string[][] {
  const rows = r.phases.map((p) => [
    r.allocator,
    `2^${Math.log2(r.ids + 1)} - 1`,
    p.label,
    `${r.warmups}+${r.reps}`,
    fixed(p.ms, 2),
    mega(p.ops_per_sec),
  ]);
  const total = median(r.samples_ms);
  rows.push([
    r.allocator,
    `2^${Math.log2(r.ids + 1)} - 1`,
    "overall",
    "",
    fixed(total, 2),
    mega(r.overall_ops_per_sec),
  ]);
  return rows;
}

/** The allocator's section of the bench output. */
export function formatIda(r: IdaResult): string {
  const met = (ok: boolean) => (ok ? "met" : "NOT met");
  const head = ["allocator", "ids", "phase", "runs", "ms", "ops/s"];
  const out = [
    "PASID allocator: ida_alloc_range(1, max) until full, ida_free in a shuffled order, alloc again; medians",
    pad([head, ...runRows(r.full), ...runRows(r.bitmap_small), ...runRows(r.naive_small)], "lllrrr"),
  ];
  for (const run of [r.full, r.bitmap_small, r.naive_small]) {
    if (run.anomaly !== null) out.push(`note: ${run.allocator} on ${run.ids} ids: ${run.anomaly}`);
  }
  const overall = r.full.overall_ops_per_sec;
  out.push(
    `target >= ${mega(TARGET_IDA_OPS_PER_SEC)} over 2^20 IDs: ${mega(overall)} overall, ${met(overall >= TARGET_IDA_OPS_PER_SEC)}`,
    `memory for 2^20 IDs: bitmap ${kib(r.bitmap_bytes)} (ida_words(20) * 4), target <= ${kib(TARGET_IDA_BYTES)}, ` +
      `${met(r.bitmap_bytes <= TARGET_IDA_BYTES)}; naive Set of all of them ${kib(r.naive_set_bytes)} (${r.naive_set_bytes_how})`,
    `naive on 2^${NAIVE_BITS} - 1 IDs is ${fixed(r.bitmap_small.overall_ops_per_sec / r.naive_small.overall_ops_per_sec, 0)}x ` +
      `slower than the bitmap; on 2^20 - 1 IDs it would take about ${fixed(r.naive_full_extrapolated_s / 3600, 1)} h ` +
      "(extrapolated: its alloc phases grow as N^2)",
  );
  return `${out.join("\n")}\n`;
}

/** The figures as JSON-ready values. */
export function idaJson(r: IdaResult): unknown {
  const run = (a: AllocatorRun) => ({
    ...a,
    phases: a.phases.map((p) => ({
      ...p,
      ms: Number(p.ms.toFixed(3)),
      ops_per_sec: Math.round(p.ops_per_sec),
    })),
    overall_ops_per_sec: Math.round(a.overall_ops_per_sec),
    samples_ms: a.samples_ms.map((s) => Number(s.toFixed(3))),
  });
  return {
    targets: { ops_per_sec: TARGET_IDA_OPS_PER_SEC, bytes: TARGET_IDA_BYTES },
    full: run(r.full),
    bitmap_small: run(r.bitmap_small),
    naive_small: run(r.naive_small),
    bitmap_bytes: r.bitmap_bytes,
    naive_set_bytes: r.naive_set_bytes,
    naive_set_bytes_how: r.naive_set_bytes_how,
    naive_full_extrapolated_s: Math.round(r.naive_full_extrapolated_s),
  };
}
