// One writer per results file: `sweep --out FILE` holds FILE.lock while it
// runs, made with O_EXCL (open "wx") and holding the owner's pid. A second
// sweep on the same FILE is refused while that pid lives; a lock left by a
// sweep that died (kill -9) names a pid that no longer exists and is taken
// over, so a killed sweep still resumes. (A pid reused by an unrelated
// process after a crash reads as alive: remove the lock by hand then; the
// message says where it is.)

import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { InputError } from "../scenario/errors.js";
import { fsFailure } from "../scenario/read.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // there, but another user's
  }
}

function ownerOf(lock: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(lock, "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null; // gone meanwhile, or unreadable: taken as stale
  }
}

/** Take FILE.lock for `out`, or say who holds it; returns the release. */
export function lockOutput(out: string): () => void {
  const lock = `${out}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      mkdirSync(dirname(out), { recursive: true });
      fd = openSync(lock, "wx");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST")
        throw new InputError(`${lock}: cannot lock the results file: ${fsFailure(err)}`);
      const pid = ownerOf(lock);
      if (pid !== null && pid !== process.pid && alive(pid))
        throw new InputError(
          `${out}: another sweep (pid ${pid}) is writing it; wait for it, or remove ${lock} if that process is not a sweep`,
        );
      try {
        unlinkSync(lock); // stale: its sweep died
      } catch {
        // another sweep took it over first: the next attempt sees its lock
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return () => {
      try {
        if (ownerOf(lock) === process.pid) unlinkSync(lock);
      } catch {
        // already gone
      }
    };
  }
  throw new InputError(`${out}: could not take ${lock}: another sweep keeps taking it`);
}
