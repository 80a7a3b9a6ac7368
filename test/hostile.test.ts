// Hostile and careless input (issue #18): whatever the file or flag, a clear
// one-line error naming the place and exit 2; never a stack trace, a hang, a
// runaway read or another exit code.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { type CliResult, cli } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "asidlab-hostile-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const f = (name: string) => join(dir, name);

/** Exit 2, nothing on stdout, one `asidlab: ` line on stderr with no stack trace; returns the message. */
function badInput(r: CliResult): string {
  assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, "", "nothing on stdout");
  const lines = r.stderr.split("\n");
  assert.equal(lines.pop(), "", "stderr ends its line");
  assert.equal(lines.length, 1, `exactly one line on stderr: ${JSON.stringify(r.stderr)}`);
  assert.ok(lines[0].startsWith("asidlab: "), lines[0]);
  assert.ok(!/internal error/.test(lines[0]), lines[0]);
  return lines[0].slice("asidlab: ".length);
}

describe("input files are read only if they are regular files of at most 16 MiB", () => {
  // Made once: a symlink to /dev/zero, a FIFO with no writer, a directory, a file over the cap.
  symlinkSync("/dev/zero", f("zero.yaml"));
  execFileSync("mkfifo", [f("fifo.yaml"), f("fifo.schedule"), f("fifo.ndjson")]);
  mkdirSync(f("dir.yaml"));
  writeFileSync(f("big.yaml"), Buffer.alloc(16 * 2 ** 20 + 1, 0x20));

  test("a scenario that is a symlink to /dev/zero, a FIFO, a directory or too large", () => {
    assert.equal(
      badInput(cli("run", f("zero.yaml"))),
      `${f("zero.yaml")}: cannot read file: not a regular file (a character device)`,
    );
    assert.equal(
      badInput(cli("check", f("fifo.yaml"))),
      `${f("fifo.yaml")}: cannot read file: not a regular file (a FIFO)`,
    );
    assert.equal(badInput(cli("run", f("dir.yaml"))), `${f("dir.yaml")}: cannot read file: is a directory`);
    assert.equal(
      badInput(cli("run", f("big.yaml"))),
      `${f("big.yaml")}: cannot read file: larger than the 16 MiB limit on input files`,
    );
  });

  test("schedules, sweep files, shards and report inputs alike", () => {
    assert.match(
      badInput(cli("replay", f("fifo.schedule"))),
      /fifo\.schedule: cannot read file: not a regular file \(a FIFO\)$/,
    );
    assert.match(
      badInput(cli("sweep", f("fifo.yaml"))),
      /fifo\.yaml: cannot read file: not a regular file \(a FIFO\)$/,
    );
    assert.match(badInput(cli("merge", "/dev/zero")), /^\/dev\/zero: cannot read file: not a regular file/);
    mkdirSync(f("report"));
    execFileSync("mkfifo", [f("report/report.json")]);
    assert.match(
      badInput(cli("report", f("report"), "--html", f("report.html"))),
      /report\.json: cannot read file: not a regular file \(a FIFO\)$/,
    );
  });

  test("sweep --out that is a device or a FIFO is not read as an earlier result", () => {
    assert.equal(
      badInput(cli("sweep", "sweeps/lifetimes.yaml", "--out", "/dev/full")),
      "/dev/full: cannot use as --out (a results file): not a regular file (a character device)",
    );
    assert.match(
      badInput(cli("sweep", "sweeps/lifetimes.yaml", "--out", f("fifo.ndjson"))),
      /fifo\.ndjson: cannot use as --out \(a results file\): not a regular file \(a FIFO\)$/,
    );
  });
});
