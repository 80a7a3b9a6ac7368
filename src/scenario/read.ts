/**
 * Reading the user's input files (scenarios, schedules, sweep files, shards, report inputs): only
 * regular files, and at most INPUT_MAX_BYTES of them. The file is opened without blocking (a FIFO
 * with no writer would otherwise hang the open) and checked with fstat on the open descriptor
 * before a byte is read, so a symlink to /dev/zero, a FIFO or a directory is refused at once.
 * Every failure is an InputError: `FILE: cannot read file: why`.
 */
import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  type Stats,
  statSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { InputError } from "./errors.js";

/** The largest input file read: 16 MiB (the README says so). */
export const INPUT_MAX_BYTES = 16 * 2 ** 20;
const LIMIT = `${INPUT_MAX_BYTES / 2 ** 20} MiB`;

/** The whole of a regular file of at most INPUT_MAX_BYTES, as UTF-8 text. */
export function readInputFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw new InputError(`${file}: cannot read file: ${fsFailure(err)}`);
  }
  try {
    const st = fstatSync(fd);
    const why = notRegular(st);
    if (why !== null) throw new InputError(`${file}: cannot read file: ${why}`);
    if (st.size > INPUT_MAX_BYTES) throw tooLarge(file);
    // The file may grow after fstat: read until end of file, but never past the limit.
    const buf = Buffer.alloc(Math.min(st.size + 1, INPUT_MAX_BYTES + 1));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > INPUT_MAX_BYTES) throw tooLarge(file);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks, total).toString("utf8");
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`${file}: cannot read file: ${fsFailure(err)}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * An output file that is also read back (sweep --out, resumable): absent, or a regular file.
 * Returns whether it exists; refuses a device, FIFO, socket or directory before anything reads it.
 */
export function existingRegularFile(file: string, what: string): boolean {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw new InputError(`${file}: cannot use as ${what}: ${fsFailure(err)}`);
  }
  const why = notRegular(st);
  if (why !== null) throw new InputError(`${file}: cannot use as ${what}: ${why}`);
  return true;
}

function notRegular(st: Stats): string | null {
  if (st.isFile()) return null;
  if (st.isDirectory()) return "is a directory";
  const kind = st.isFIFO()
    ? "a FIFO"
    : st.isCharacterDevice()
      ? "a character device"
      : st.isBlockDevice()
        ? "a block device"
        : st.isSocket()
          ? "a socket"
          : "not a file";
  return `not a regular file (${kind})`;
}

function tooLarge(file: string): InputError {
  return new InputError(`${file}: cannot read file: larger than the ${LIMIT} limit on input files`);
}

/** A filesystem error (an errno code) in a few words: `no such file`, `permission denied`, ... */
export function fsFailure(err: unknown): string {
  const code = typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
  // mkdir -p through a file: a component of the path is a file, not a directory
  const e = err as NodeJS.ErrnoException;
  if (code === "EEXIST" && e.syscall === "mkdir" && e.path !== undefined)
    return `${e.path} is not a directory`;
  const reasons: Record<string, string> = {
    ENOENT: "no such file",
    EISDIR: "is a directory",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    ENOTDIR: "not a directory",
    ENOSPC: "no space left on device",
    EDQUOT: "disk quota exceeded",
    EROFS: "read-only file system",
    EPIPE: "broken pipe",
    ENAMETOOLONG: "file name too long",
    ELOOP: "too many symbolic links",
    EEXIST: "already exists",
    EMFILE: "too many open files",
    EIO: "input/output error",
    EFBIG: "file too large",
  };
  if (Object.hasOwn(reasons, code)) return reasons[code];
  return code || (err instanceof Error ? err.message : String(err)).split("\n", 1)[0].trim();
}

/** FIFOs opened for writing by checkOutputPath, kept open until openOutput hands them out. */
const held = new Map<string, number>();

/**
 * An output path the user named (--out, --trace, --itf, --html): checked before any work, so that
 * a FIFO nobody reads is an error at once rather than a write that blocks forever after a long
 * search. A FIFO is opened without blocking first (ENXIO: no reader), then for writing, and kept
 * open (closing it would end the reader's input): openOutput hands that descriptor out. Other
 * paths are left to the write itself (EISDIR, EACCES are worded there).
 */
export function checkOutputPath(path: string): void {
  if (held.has(path)) return;
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    return; // not there yet: the write creates it
  }
  if (!st.isFIFO()) return;
  let probe: number;
  try {
    probe = openSync(path, constants.O_WRONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENXIO") throw new InputError(`${path}: cannot write: a FIFO that no process reads`);
    throw new InputError(`${path}: cannot write: ${fsFailure(err)}`);
  }
  try {
    held.set(path, openSync(path, constants.O_WRONLY)); // a reader is there: this does not block
  } finally {
    closeSync(probe);
  }
}

/** A descriptor to write `path` from its start: a FIFO checked (and held) by checkOutputPath, or the file made anew. */
export function openOutput(path: string, what = "write"): number {
  checkOutputPath(path);
  const fd = held.get(path);
  if (fd !== undefined) {
    held.delete(path);
    return fd;
  }
  try {
    mkdirSync(dirname(path), { recursive: true });
    return openSync(path, "w");
  } catch (err) {
    throw new InputError(`${path}: cannot ${what}: ${fsFailure(err)}`);
  }
}

/** The whole of `text` into `path` (a file made anew, or a FIFO with a reader). */
export function writeOutputFile(path: string, text: string | Uint8Array, what = "write"): void {
  const fd = openOutput(path, what);
  try {
    const b = typeof text === "string" ? Buffer.from(text) : text;
    for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off);
  } catch (err) {
    throw new InputError(`${path}: cannot ${what}: ${fsFailure(err)}`);
  } finally {
    closeSync(fd);
  }
}
