// Wall-clock helpers for the benchmarks. Wall-clock time is allowed here (and
// only here): the model itself never reads a clock.

/** Nanoseconds since an arbitrary origin, as a number (fine for intervals < 2^53 ns). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Where results of measured loops go, so that the optimiser cannot drop the
 * work; `consumeSink` reads it once at the end.
 */
let sink = 0;

export function sinkValue(v: number): void {
  sink = (sink ^ v) | 0;
}

export function consumeSink(): number {
  return sink;
}

/** A loop of `n` iterations of one operation; returns something derived from the work. */
export type Batch = (n: number) => number;

export interface OpTiming {
  /** Median over batches, in ns per operation. */
  nsPerOp: number;
  /** ns per operation of every batch, in order. */
  samples: number[];
  /** Iterations per batch. */
  iterations: number;
}

export interface OpOptions {
  /** Wall-clock time one batch should take, in ms. */
  batchMs: number;
  batches: number;
  /** Upper bound on the iterations of one batch. */
  maxIterations: number;
}

/**
 * Time `batch` per operation: calibrate the iteration count so that one batch
 * takes about `batchMs` (at most `maxIterations`, at least 1), run one
 * untimed warm-up batch, then take the median of `batches` timed batches.
 */
export function timeOp(batch: Batch, opts: OpOptions): OpTiming {
  // Calibrate: grow n until one batch is long enough to estimate the per-op cost.
  let n = 1;
  let est = 0;
  for (;;) {
    const t0 = nowNs();
    sinkValue(batch(n));
    const dt = nowNs() - t0;
    est = dt / n;
    if (dt >= 10e6 || n >= opts.maxIterations) break;
    n = Math.min(opts.maxIterations, n * 4);
  }
  const iterations = Math.max(1, Math.min(opts.maxIterations, Math.round((opts.batchMs * 1e6) / est)));
  sinkValue(batch(iterations)); // warm-up at the final size
  const samples: number[] = [];
  for (let b = 0; b < opts.batches; b++) {
    const t0 = nowNs();
    sinkValue(batch(iterations));
    samples.push((nowNs() - t0) / iterations);
  }
  return { nsPerOp: median(samples), samples, iterations };
}
