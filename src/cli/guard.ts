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

/**
 * The last line of defence: an exception or rejection that escaped every command (a bug, since
 * main() catches what the commands throw) is one line and exit 70, never node's stack trace and
 * exit 1; an escaped filesystem error is the environment's, exit 2. ASIDLAB_DEBUG adds the stack.
 */
export function guardProcess(): void {
  const last = (err: unknown) => {
    const fs = fsMessage(err);
    if (fs !== null) {
      writeSync(2, `asidlab: ${fs}\n`);
      process.exit(2);
    }
    const msg = err instanceof Error ? err.message : String(err);
    writeSync(2, `asidlab: internal error: ${msg.split("\n", 1)[0]}\n`);
    if (process.env.ASIDLAB_DEBUG && err instanceof Error) writeSync(2, `${err.stack}\n`);
    process.exit(70);
  };
  process.on("uncaughtException", last);
  process.on("unhandledRejection", last);
}
