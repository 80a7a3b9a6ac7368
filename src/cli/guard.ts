// The command line's last line of defence against the environment: filesystem and stream errors
// that no command caught are one line and exit 2, as bad input is (main.ts's top-level handler).

import { writeSync } from "node:fs";
import { fsFailure } from "../scenario/read.js";

/**
 * An error of the filesystem or of a stream (ENOSPC, EPIPE, ENOTDIR, EACCES, ...) that no command
 * caught: the environment, not a bug, so one line and exit 2 rather than an internal error.
 */
export function fsMessage(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const e = err as NodeJS.ErrnoException;
  if (typeof e.code !== "string" || !/^E[A-Z0-9]+$/.test(e.code) || e.syscall === undefined) return null;
  const where = e.path === undefined ? "" : `${e.path}: `;
  return `${where}cannot ${e.syscall}: ${fsFailure(e)}`;
}

/**
 * Writes to stdout fail as stream events, not exceptions (a full disk, `> /dev/full`, a closed pipe):
 * one line and exit 2, never node's stack trace and exit 1 (which means "a violation was seen").
 */
export function guardStdout(): void {
  process.stdout.on("error", (err) => {
    writeSync(2, `asidlab: standard output: cannot write: ${fsFailure(err)}\n`);
    process.exit(2);
  });
}
