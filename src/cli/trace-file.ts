// Trace files, for run and for counterexample exports (check, replay).

import { closeSync, writeSync } from "node:fs";
import type { TraceInfo } from "../run/session.js";
import { InputError } from "../scenario/errors.js";
import { fsFailure, openOutput } from "../scenario/read.js";

/** A trace file written as it is made: opened before the run (so a bad path fails first), written in chunks. */
export class TraceFile {
  private readonly fd: number;
  constructor(readonly path: string) {
    this.fd = openOutput(path, "write trace");
  }
  readonly write = (chunk: string | Uint8Array): void => {
    try {
      const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      for (let off = 0; off < b.length; ) off += writeSync(this.fd, b, off, b.length - off);
    } catch (err) {
      throw new InputError(`${this.path}: cannot write trace: ${fsFailure(err)}`);
    }
  };
  close(): void {
    closeSync(this.fd);
  }
}

/** The one line that says a trace was cut at --trace-max-events. */
export function traceCut(path: string, info: TraceInfo | null): void {
  if (info?.truncated)
    process.stderr.write(
      `asidlab: ${path}: trace cut at --trace-max-events: ${info.events} events, the first ${info.truncatedAtUs} µs (every open slice closed there); its metadata says "truncated": true\n`,
    );
}
