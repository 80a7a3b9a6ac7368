// check's budgets of time and memory: the defaults a large search runs under
// when the user gives none, the stop() the searches poll (search/types.ts,
// POLL_STATES), and the progress line on a terminal.
//
// A poll reads a monotonic clock (performance.now(), no allocation); the
// resident set is read at most every RSS_EVERY_MS and the progress line
// written at most every PROGRESS_EVERY_MS, so a poll every 64 states costs
// nothing measurable on small states and still ends a big-machine search
// (tens of ms a state) within a few percent of its budget.

import { availableParallelism, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import type { Progress } from "../search/types.js";

/** The default time budget of `check`, in seconds: an hour. */
export const DEFAULT_TIME_S = 3600;
/** The default memory budget: half the machine's memory, at most this many MiB. */
export const DEFAULT_MEMORY_CAP_MIB = 16384;

const RSS_EVERY_MS = 10;
const PROGRESS_EVERY_MS = 250;

export interface Budgets {
  timeS: number;
  memoryMiB: number;
  /** Which of the two are the defaults, for the message that ends a search. */
  timeDefault: boolean;
  memoryDefault: boolean;
}

export function defaultMemoryMiB(): number {
  return Math.min(DEFAULT_MEMORY_CAP_MIB, Math.floor(totalmem() / 2 ** 21));
}

/** The budgets of a check: the flags' values, or the defaults. */
export function budgets(time: number | undefined, memory: number | undefined): Budgets {
  return {
    timeS: time ?? DEFAULT_TIME_S,
    memoryMiB: memory ?? defaultMemoryMiB(),
    timeDefault: time === undefined,
    memoryDefault: memory === undefined,
  };
}

/**
 * A stop() for CheckBudget: the reason the budget ends the search, or null.
 * Time counts from the process's start (performance.now()'s origin), so the
 * budget covers loading, booting and calibrating a large machine too.
 */
export function budgetStop(b: Budgets): { stop: (p: Progress) => string | null; elapsed: () => number } {
  let rssAt = -Infinity;
  let rss = 0;
  let shownAt = -Infinity;
  const timeMs = b.timeS * 1000;
  const memoryBytes = b.memoryMiB * 2 ** 20;
  const stop = (p: Progress): string | null => {
    const now = performance.now();
    if (now - rssAt >= RSS_EVERY_MS) {
      rss = process.memoryUsage.rss();
      rssAt = now;
    }
    if (process.stderr.isTTY && now - shownAt >= PROGRESS_EVERY_MS) {
      shownAt = now;
      const s = now / 1000;
      const rate = s > 0 ? Math.round(p.states / s).toLocaleString("en-US") : "-";
      process.stderr.write(
        `\r\x1b[Kstates ${p.states.toLocaleString("en-US")}  ${rate} states/s  depth ${p.depth}  ${Math.round(rss / 2 ** 20)} MiB`,
      );
    }
    if (now > timeMs)
      return `time budget: ${b.timeS} s${b.timeDefault ? " (the default; --time to change)" : ""}`;
    if (rss + (p.reserve ?? 0) > memoryBytes)
      return `memory budget: ${b.memoryMiB} MiB${b.memoryDefault ? " (the default, half the machine's memory; --memory to change)" : ""}`;
    return null;
  };
  return { stop, elapsed: () => performance.now() / 1000 };
}

/** --workers capped at the CPUs available: more threads than CPUs only add tables and contention. */
export function capWorkers(requested: number | undefined): {
  workers: number | undefined;
  note: string | null;
} {
  const cpus = availableParallelism();
  if (requested === undefined || requested <= cpus) return { workers: requested, note: null };
  return {
    workers: cpus,
    note: `asidlab: --workers ${requested} capped at the ${cpus} CPU${cpus === 1 ? "" : "s"} available`,
  };
}

/** `run --time`: true once `seconds` have passed since the process started. */
export function wallClockBudget(seconds: number): () => boolean {
  const ms = seconds * 1000;
  return () => performance.now() > ms;
}
