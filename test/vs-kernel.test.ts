// asidlab vs-kernel: the initramfs archive, the scenario-to-C translation,
// the trace parsing, and (where qemu-system-x86_64 is installed, or
// ASIDLAB_REQUIRE_QEMU=1 demands it) a real boot of Debian's kernel under
// QEMU for two calibration scenarios whose exact rows must be equal.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { loadScenarioFile, loadScenarioString } from "../src/scenario/load.js";
import { generateWorkload } from "../src/vskernel/cgen.js";
import { compareCounts, kernelCounts, traceLost } from "../src/vskernel/compare.js";
import { cpioNewc, initramfs } from "../src/vskernel/cpio.js";
import { cli, REPO_ROOT } from "./helpers.js";

const DIR = join(REPO_ROOT, "scenarios", "vs-kernel");
const CALIBRATION = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml"))
  .sort();

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

/** The entries of a newc archive, read back field by field. */
function readNewc(b: Buffer): { name: string; mode: number; data: Buffer; rdev: [number, number] }[] {
  const out = [];
  let off = 0;
  for (;;) {
    assert.equal(off % 4, 0, "every header starts 4-byte aligned");
    const h = b.subarray(off, off + 110).toString("ascii");
    assert.equal(h.slice(0, 6), "070701", `newc magic at ${off}`);
    const field = (i: number) => Number.parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const namesize = field(11);
    const filesize = field(6);
    const name = b.subarray(off + 110, off + 110 + namesize - 1).toString("utf8");
    assert.equal(b[off + 110 + namesize - 1], 0, "the name ends in NUL");
    let p = off + 110 + namesize;
    p += (4 - (p % 4)) % 4;
    const data = b.subarray(p, p + filesize);
    p += filesize;
    p += (4 - (p % 4)) % 4;
    if (name === "TRAILER!!!") break;
    out.push({ name, mode: field(1), data, rdev: [field(9), field(10)] as [number, number] });
    off = p;
  }
  return out;
}

describe("the initramfs", () => {
  test("a newc archive: each entry's name, mode and data as given, /dev/console a char device 5:1, a trailer", () => {
    const init = Buffer.from("\x7fELF not really, 23 bytes");
    const entries = readNewc(gunzipSync(initramfs(init)));
    assert.deepEqual(
      entries.map((e) => e.name),
      ["dev", "dev/console", "proc", "sys", "init"],
    );
    const console_ = entries.find((e) => e.name === "dev/console");
    assert.equal(console_?.mode, 0o020600);
    assert.deepEqual(console_?.rdev, [5, 1]);
    const initEntry = entries.find((e) => e.name === "init");
    assert.equal(initEntry?.mode, 0o100755);
    assert.ok(initEntry?.data.equals(init));
  });

  test("names and data of every length are padded to 4 bytes", () => {
    for (let n = 0; n < 9; n++) {
      const name = "x".repeat(n + 1);
      const data = Buffer.alloc(n, 0x41 + n);
      const [e] = readNewc(cpioNewc([{ name, mode: 0o100644, data }]));
      assert.equal(e.name, name);
      assert.ok(e.data.equals(data));
    }
  });

  test("cpio(1) reads it, where installed", (t) => {
    if (!has("cpio")) {
      t.skip("cpio is not installed");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "asidlab-cpio-"));
    try {
      writeFileSync(
        join(dir, "a.cpio"),
        cpioNewc([{ name: "init", mode: 0o100755, data: Buffer.from("hi") }]),
      );
      const r = spawnSync("sh", ["-c", "cpio -it < a.cpio"], { cwd: dir, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), "init");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the workload", () => {
  const withBind = `name: b
devices: { dsa: {} }
processes:
  - name: p
    program: [{ compute: 1000 }, { bind: dsa }, { munmap: 4 }]
`;

  test("an op with no counterpart is refused with one located line naming it; --skip-unsupported lists it", () => {
    const ls = loadScenarioString(withBind, "b.yaml");
    assert.throws(
      () => generateWorkload(ls, false),
      /^InputError: b\.yaml:5:\d+: op 'bind' has no counterpart/,
    );
    const w = generateWorkload(ls, true);
    assert.deepEqual(
      w.skipped.map((s) => [s.op, s.at.split(":")[1]]),
      [["bind", "5"]],
    );
    assert.match(w.source, /op_munmap\(4UL\)/);
  });

  test("the CLI refuses it before any kernel is fetched: exit 2, one line, nothing on stdout", () => {
    const dir = mkdtempSync(join(tmpdir(), "asidlab-vsk-"));
    try {
      writeFileSync(join(dir, "b.yaml"), withBind);
      const r = cli("vs-kernel", join(dir, "b.yaml"));
      assert.equal(r.status, 2);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr.trim().split("\n").length, 1);
      assert.match(r.stderr, /b\.yaml:5:\d+: op 'bind'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("every calibration scenario becomes C that gcc -static compiles", (t) => {
    if (!has("gcc")) {
      t.skip("gcc is not installed (apt-get install gcc libc6-dev)");
      return;
    }
    assert.ok(CALIBRATION.length >= 10, "10+ calibration scenarios");
    const dir = mkdtempSync(join(tmpdir(), "asidlab-vsk-"));
    try {
      for (const f of CALIBRATION) {
        const w = generateWorkload(loadScenarioFile(join(DIR, f)), false);
        assert.deepEqual(w.skipped, [], `${f}: every op translated`);
        writeFileSync(join(dir, "w.c"), w.source);
        const r = spawnSync("gcc", ["-fsyntax-only", "-w", "w.c"], { cwd: dir, encoding: "utf8" });
        assert.equal(r.status, 0, `${f}: ${r.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("bad input and a guest that does not finish", () => {
  const long =
    "name: long\nmachine: { cpus: 1 }\nprocesses:\n  - name: p\n    program: [{ sleep: 60000000000 }]\n";

  test("--kernel-image that does not exist: exit 2, one line naming it", () => {
    const dir = mkdtempSync(join(tmpdir(), "asidlab-vsk-"));
    try {
      writeFileSync(join(dir, "long.yaml"), long);
      const r = cli("vs-kernel", join(dir, "long.yaml"), "--kernel-image", join(dir, "no-bzImage"));
      assert.equal(r.status, 2);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /^asidlab: --kernel-image .*no-bzImage: no such file\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a guest still running at --timeout: killed, exit 2, the console's last lines", (t) => {
    if (!has("qemu-system-x86_64") || !has("gcc")) {
      if (process.env.ASIDLAB_REQUIRE_QEMU === "1") assert.fail("qemu-system-x86_64 or gcc is missing");
      t.skip("qemu-system-x86_64 or gcc is not installed: no boot");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "asidlab-vsk-"));
    try {
      writeFileSync(join(dir, "long.yaml"), long);
      const r = cli("vs-kernel", join(dir, "long.yaml"), "--timeout", "25");
      assert.equal(r.status, 2);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr.trim().split("\n").length, 1);
      assert.match(r.stderr, /did not power off within 25 s; console: .*@@ASIDLAB-KERNEL/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the comparison", () => {
  test("trace lines counted by event, reason and flush size; rows by mapping", () => {
    const lines = [
      "# tracer: nop",
      "            init-1       [000] d..2.     2.84: sched_switch: prev_comm=init prev_pid=1 prev_prio=120 prev_state=R+ ==> next_comm=init next_pid=79 next_prio=120",
      "            init-1       [000] d..2.     2.84: tlb_flush: pages:-1 reason:flush on task switch (0)",
      "            init-79      [000] d..2.     2.84: tlb_flush: pages:1 reason:local mm shootdown (3)",
      "            init-79      [000] d..2.     2.84: tlb_flush: pages:-1 reason:local mm shootdown (3)",
      "            init-79      [001] d..2.     2.84: tlb_flush: pages:4 reason:remote shootdown (1)",
      "            init-79      [000] d..2.     2.84: tlb_flush: pages:4 reason:remote ipi send (4)",
      "            init-79      [000] d....     2.84: x86_fpu_regs_activated: x86/fpu: 0000000 load: 1 xfeatures: 217 xcomp_bv: 0",
    ];
    assert.equal(traceLost(lines), 0);
    assert.equal(traceLost(["# entries-in-buffer/entries-written: 124/130   #P:1"]), 6);
    const k = kernelCounts(lines);
    assert.deepEqual(k, {
      sched_switch: 1,
      "tlb_flush.task_switch.full": 1,
      "tlb_flush.local_mm_shootdown.range": 1,
      "tlb_flush.local_mm_shootdown.full": 1,
      "tlb_flush.remote_shootdown.range": 1,
      "tlb_flush.remote_ipi_send": 1,
      "x86_fpu.regs_activated": 1,
    });
    const rows = compareCounts(
      k,
      { sched_switch: 2, "tlb_flush.range": 2, "tlb_flush.local_mm_shootdown.full": 1 },
      { cpus: 1, copies: false, exec: false, initialThreads: false },
    );
    const row = (m: string) => rows.find((r) => r.metric === m);
    assert.deepEqual(
      [row("flush.range")?.kernel, row("flush.range")?.model, row("flush.range")?.ratio],
      [2, 2, 1],
    );
    assert.equal(row("context_switches")?.ratio, 0.5);
    assert.equal(row("fpu.regs_activated")?.model, null);
    assert.deepEqual(
      rows.filter((r) => r.exact).map((r) => r.metric),
      ["flush.local_mm_shootdown.full", "flush.range", "fpu.copy_dst"],
    );
    // Two CPUs make the ranged count a matter of timing; exec adds its stack move's flush.
    const two = compareCounts(k, {}, { cpus: 2, copies: true, exec: true, initialThreads: true });
    assert.deepEqual(
      two.filter((r) => r.exact).map((r) => r.metric),
      [],
    );
  });
});

// Scenarios whose exact rows the kernel reproduces on 6.1 under TCG (docs/vs-kernel.md).
const BOOTED = ["munmap-1-kept.yaml", "munmap-34.yaml", "fork-exit.yaml"];

describe("a real kernel", () => {
  const qemu = has("qemu-system-x86_64") && has("gcc");
  for (const f of BOOTED) {
    test(`${f}: the model's exact rows equal the kernel's`, { timeout: 300_000 }, (t) => {
      if (!qemu) {
        if (process.env.ASIDLAB_REQUIRE_QEMU === "1")
          assert.fail("qemu-system-x86_64 or gcc is missing (apt-get install qemu-system-x86 gcc libc6-dev)");
        t.skip(
          "qemu-system-x86_64 or gcc is not installed (apt-get install qemu-system-x86 gcc libc6-dev): no boot",
        );
        return;
      }
      const r = spawnSync(
        process.execPath,
        ["--import", "tsx", "src/cli/main.ts", "vs-kernel", join(DIR, f), "--json"],
        {
          cwd: REPO_ROOT,
          encoding: "utf8",
          timeout: 280_000,
        },
      );
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as {
        scenario: string;
        kernel: { version: string; accel: string };
        guest_failures: number;
        trace_lost: number;
        rows: { metric: string; kernel: number; model: number | null; exact: boolean }[];
      };
      assert.match(out.kernel.version, /^\d+\.\d+/);
      assert.ok(["kvm", "tcg"].includes(out.kernel.accel));
      assert.equal(out.guest_failures, 0);
      assert.equal(out.trace_lost, 0);
      const exact = out.rows.filter((x) => x.exact);
      assert.ok(exact.length >= 2, "at least two rows the model claims exactly");
      for (const x of exact) assert.equal(x.model, x.kernel, `${f}: ${x.metric}`);
      const shootdowns = out.rows.filter(
        (x) => x.metric === "flush.range" || x.metric === "flush.local_mm_shootdown.full",
      );
      assert.ok(shootdowns.reduce((n, x) => n + x.kernel, 0) > 0, "the kernel traced the workload's flushes");
    });
  }
});
