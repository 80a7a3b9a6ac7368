// The real side of vs-kernel: a kernel image (Debian's, fetched into a cache
// directory, or the user's), the workload compiled with gcc -static, and a
// QEMU boot with a timeout that reads the guest's report off the serial
// console. Every failure is one line (InputError: exit 2) with, for a boot,
// the console's last lines.

import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { InputError } from "../scenario/errors.js";
import { initramfs } from "./cpio.js";

export type Accel = "kvm" | "tcg";

export function cacheDir(): string {
  const base =
    process.env.ASIDLAB_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "asidlab");
  return join(base, "kernel");
}

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
  if (r.error !== undefined) {
    const e = r.error as NodeJS.ErrnoException;
    throw new InputError(
      e.code === "ENOENT"
        ? `${cmd}: not found (see docs/vs-kernel.md for the apt-get line)`
        : `${cmd}: ${e.message}`,
    );
  }
  if (r.status !== 0) {
    const last = `${r.stderr}${r.stdout}`.trim().split("\n").slice(-3).join(" | ");
    throw new InputError(`${cmd} ${args.join(" ")} failed (exit ${r.status}): ${last}`);
  }
  return r.stdout;
}

/**
 * The kernel image to boot: `auto` is Debian's linux-image-amd64, downloaded
 * with apt-get download into the cache directory and its vmlinuz extracted
 * (nothing installed); any other value is a path to a bzImage.
 */
export function kernelImage(spec: string): string {
  if (spec !== "auto") {
    if (!existsSync(spec)) throw new InputError(`--kernel-image ${spec}: no such file`);
    return spec;
  }
  const dir = cacheDir();
  const found = () =>
    existsSync(join(dir, "boot"))
      ? readdirSync(join(dir, "boot"))
          .filter((f) => f.startsWith("vmlinuz-"))
          .sort()
      : [];
  if (found().length === 0) {
    mkdirSync(dir, { recursive: true });
    const deps = run("apt-cache", ["depends", "linux-image-amd64"]);
    const m = /Depends:\s*(linux-image-[0-9][^\s]*)/.exec(deps);
    if (m === null)
      throw new InputError("apt-cache depends linux-image-amd64: no versioned kernel package named");
    let debs = readdirSync(dir).filter((f) => f.startsWith(`${m[1]}_`) && f.endsWith(".deb"));
    if (debs.length === 0) run("apt-get", ["download", m[1]], dir);
    debs = readdirSync(dir).filter((f) => f.startsWith(`${m[1]}_`) && f.endsWith(".deb"));
    if (debs.length === 0) throw new InputError(`apt-get download ${m[1]}: no .deb in ${dir}`);
    // Only ./boot/ of the package: vmlinuz, its config and System.map.
    execFileSync("sh", ["-c", `dpkg-deb --fsys-tarfile "$1" | tar -x ./boot/`, "sh", debs[0]], { cwd: dir });
  }
  const images = found();
  if (images.length === 0)
    throw new InputError(`${dir}: no boot/vmlinuz-* after extracting the kernel package`);
  return join(dir, "boot", images[images.length - 1]);
}

/** Compiles the workload (gcc -static -O1) and packs it as the initramfs's /init; returns the initrd's path. */
export function buildInitrd(source: string, work: string): string {
  mkdirSync(work, { recursive: true });
  const c = join(work, "workload.c");
  const exe = join(work, "init");
  writeFileSync(c, source);
  run("gcc", ["-static", "-O1", "-w", "-o", exe, c]);
  const initrd = join(work, "initrd.gz");
  writeFileSync(initrd, initramfs(readFileSync(exe)));
  return initrd;
}

export interface BootSpec {
  kernel: string;
  initrd: string;
  cpus: number;
  pti: boolean;
  pcid: boolean;
  accel: "auto" | Accel;
  timeoutMs: number;
}

export interface GuestReport {
  accel: Accel;
  version: string;
  flags: Set<string>;
  /** the trace file's lines (between the markers) */
  trace: string[];
  /** ns of guest time the workload ran */
  ns: number;
  /** tasks that died of a signal or failed an op (exit status >= 120) */
  failed: number;
  cmdline: string;
}

const TAIL = 12;

function kvmUsable(): boolean {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function qemuArgs(s: BootSpec, accel: Accel, append: string): string[] {
  return [
    "-nographic",
    "-no-reboot",
    "-m",
    "512",
    "-smp",
    String(s.cpus),
    "-accel",
    accel,
    "-cpu",
    accel === "kvm" ? "host" : "max",
    "-kernel",
    s.kernel,
    "-initrd",
    s.initrd,
    "-append",
    append,
    "-nic",
    "none",
  ];
}

function bootOnce(
  s: BootSpec,
  accel: Accel,
  append: string,
): Promise<{ out: string; code: number | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn("qemu-system-x86_64", qemuArgs(s, accel, append), {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, s.timeoutMs);
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stderr.on("data", (d: Buffer) => chunks.push(d));
    child.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      chunks.push(
        Buffer.from(err.code === "ENOENT" ? "qemu-system-x86_64: not found\n" : `${err.message}\n`),
      );
      resolve({ out: Buffer.concat(chunks).toString("utf8"), code: -1, timedOut: false });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ out: Buffer.concat(chunks).toString("utf8"), code, timedOut });
    });
  });
}

const ESC = String.fromCharCode(27);

/** Text without terminal escapes (the BIOS clears the screen) and control characters. */
function printable(line: string): string {
  let out = "";
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (line[i] === ESC) {
      // ESC [ params letter, or ESC letter
      let j = i + 1;
      if (line[j] === "[") {
        j++;
        while (j < line.length && /[0-9;?]/.test(line[j])) j++;
      }
      i = j; // the final letter
      continue;
    }
    if (c >= 32 && c !== 127) out += line[i];
  }
  return out;
}

function lastLines(out: string): string {
  return out
    .split("\n")
    .map(printable)
    .filter((l) => l.trim() !== "")
    .slice(-TAIL)
    .map((l) => (l.length > 200 ? `${l.slice(0, 200)}...` : l))
    .join(" | ");
}

/** Boots the guest; KVM first where /dev/kvm opens and --accel allows it, TCG otherwise or when KVM fails. */
export async function bootGuest(s: BootSpec): Promise<GuestReport> {
  const append = `console=ttyS0 quiet panic=-1 pti=${s.pti ? "on" : "off"}${s.pcid ? "" : " nopcid"}`;
  const tries: Accel[] = s.accel === "auto" ? (kvmUsable() ? ["kvm", "tcg"] : ["tcg"]) : [s.accel];
  let failure = "";
  for (const accel of tries) {
    const r = await bootOnce(s, accel, append);
    if (r.out.includes("qemu-system-x86_64: not found")) {
      throw new InputError(
        "qemu-system-x86_64: not found (apt-get install -y qemu-system-x86; see docs/vs-kernel.md)",
      );
    }
    const out = r.out.replace(/\r/g, "");
    const started = out.includes("@@ASIDLAB-KERNEL");
    if (r.timedOut) {
      failure = `the guest (${accel}) did not power off within ${s.timeoutMs / 1000} s; console: ${lastLines(out)}`;
      if (started) break;
      continue;
    }
    const err = /@@ASIDLAB-ERROR (.*)/.exec(out);
    if (err !== null) throw new InputError(`guest: ${err[1]}; console: ${lastLines(out)}`);
    if (!out.includes("@@ASIDLAB-END")) {
      failure = `the guest (${accel}) stopped before its report (exit ${r.code}); console: ${lastLines(out)}`;
      if (started) break;
      continue;
    }
    const kernel = /@@ASIDLAB-KERNEL (\S+)/.exec(out);
    const flags = /@@ASIDLAB-FLAGS flags\s*:(.*)/.exec(out);
    const done = /@@ASIDLAB-DONE ns=(\d+) failed=(\d+)/.exec(out);
    const b = out.indexOf("@@ASIDLAB-TRACE-BEGIN\n");
    const e = out.indexOf("@@ASIDLAB-TRACE-END");
    if (kernel === null || done === null || b < 0 || e < b) {
      throw new InputError(`the guest's report is incomplete; console: ${lastLines(out)}`);
    }
    return {
      accel,
      version: kernel[1],
      flags: new Set((flags?.[1] ?? "").trim().split(/\s+/)),
      trace: out.slice(b + "@@ASIDLAB-TRACE-BEGIN\n".length, e).split("\n"),
      ns: Number(done[1]),
      failed: Number(done[2]),
      cmdline: append,
    };
  }
  throw new InputError(failure);
}

/** A fresh work directory under the cache (removed by the caller when done). */
let works = 0;
export function workDir(): string {
  const d = join(cacheDir(), "work", `${process.pid}-${works++}`);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  return d;
}
