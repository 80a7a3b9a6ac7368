// An initramfs: a cpio archive in the "newc" format (the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst), gzipped.
// Each entry is a 110-byte ASCII header ("070701" and 13 eight-digit hex
// fields), the NUL-terminated name padded to 4 bytes, then the data padded
// to 4 bytes; "TRAILER!!!" ends the archive.

import { gzipSync } from "node:zlib";

export interface CpioEntry {
  name: string;
  /** st_mode: type and permission bits (0o040755 a directory, 0o100755 an executable, 0o020600 a char device) */
  mode: number;
  data?: Uint8Array;
  /** for a device node */
  rdev?: [number, number];
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio: field ${n} out of range`);
  return n.toString(16).padStart(8, "0");
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function entry(e: CpioEntry, ino: number): Buffer[] {
  const name = Buffer.from(`${e.name}\0`, "utf8");
  const data = e.data ?? new Uint8Array(0);
  if ((e.mode & S_IFMT) !== S_IFREG && data.length > 0)
    throw new Error(`cpio: ${e.name} is not a file but has data`);
  const [maj, min] = e.rdev ?? [0, 0];
  const fields = [ino, e.mode, 0, 0, 1, 0, data.length, 0, 0, maj, min, name.length, 0];
  const header = Buffer.from(`070701${fields.map(hex8).join("")}`, "ascii");
  if (header.length !== 110) throw new Error("cpio: header is not 110 bytes");
  return [
    header,
    name,
    Buffer.alloc(pad4(header.length + name.length)),
    Buffer.from(data),
    Buffer.alloc(pad4(data.length)),
  ];
}

/** The archive, uncompressed. Directories must come before what they hold. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((e, i) => {
    parts.push(...entry(e, i + 1));
  });
  parts.push(...entry({ name: "TRAILER!!!", mode: 0 }, 0));
  const out = Buffer.concat(parts);
  return Buffer.concat([out, Buffer.alloc(pad4(out.length))]);
}

/** A gzipped initramfs whose /init is `init` (a static executable), with /dev/console, /proc and /sys. */
export function initramfs(init: Uint8Array): Buffer {
  return gzipSync(
    cpioNewc([
      { name: "dev", mode: 0o040755 },
      { name: "dev/console", mode: 0o020600, rdev: [5, 1] },
      { name: "proc", mode: 0o040755 },
      { name: "sys", mode: 0o040755 },
      { name: "init", mode: 0o100755, data: init },
    ]),
  );
}
