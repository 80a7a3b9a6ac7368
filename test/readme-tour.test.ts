// The README's tour, read as a new user would run it: every command's output
// goes under out/ (an ignored path), never into the repository's root; a
// merge names the shards that the tour made; nothing installs behind the
// user's back.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { REPO_ROOT } from "./helpers.js";

const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
const tour = readme.slice(readme.indexOf("## A short tour"));
const block = tour.slice(tour.indexOf("```sh") + 5, tour.indexOf("```", tour.indexOf("```sh") + 5));
const commands = block
  .split("\n")
  .map((l) => l.replace(/\s+#.*$/, "").trim())
  .filter((l) => l !== "");

/** Files a command writes: after an output flag or a shell redirection. */
function outputsOf(cmd: string): string[] {
  const out: string[] = [];
  for (const m of cmd.matchAll(/(?:--out|--trace|--itf|--html|--plot|>)\s+(\S+)/g)) out.push(m[1]);
  return out;
}

describe("README tour", () => {
  test("has commands, and every file a command writes is under out/ (ignored)", () => {
    assert.ok(commands.length > 20, `${commands.length} commands`);
    const ignore = readFileSync(join(REPO_ROOT, ".gitignore"), "utf8").split("\n");
    assert.ok(ignore.includes("out/"), ".gitignore has out/");
    let seen = 0;
    for (const c of commands) {
      for (const f of outputsOf(c)) {
        assert.match(f, /^out\//, `${c}: writes ${f} outside out/`);
        seen++;
      }
    }
    assert.ok(seen >= 10, `${seen} outputs checked`);
  });

  test("a merge names shards an earlier tour command wrote, all of them", () => {
    const merges = commands.filter((c) => / merge /.test(c));
    assert.ok(merges.length > 0);
    for (const m of merges) {
      const inputs = m
        .split(/\s+/)
        .slice(3)
        .filter((a) => !a.startsWith("-") && !outputsOf(m).includes(a));
      assert.ok(inputs.length >= 2, m);
      for (const f of inputs) {
        assert.doesNotMatch(f, /[*?]/, `${m}: a glob matches what happens to be there`);
        const writer = commands.find((c) => outputsOf(c).includes(f));
        assert.ok(
          writer !== undefined && commands.indexOf(writer) < commands.indexOf(m),
          `${f} written earlier`,
        );
        const shard = /--shard (\d+)\/(\d+)/.exec(writer ?? "");
        assert.ok(shard !== null, `${f}: a shard`);
        assert.equal(inputs.length, Number(shard[2]), "every shard merged");
      }
    }
  });

  test("bench:spin does not install anything unasked", () => {
    const spin = readFileSync(join(REPO_ROOT, "bench", "spin.ts"), "utf8");
    const at = spin.indexOf('spawnSync("apt-get"');
    assert.ok(at > 0);
    assert.ok(
      spin.slice(0, at).includes('process.env.ASIDLAB_INSTALL_SPIN !== "1"'),
      "apt-get only when asked",
    );
  });

  // Every command, in order, in a fresh clone (node_modules linked, not installed again): each exits
  // as the tour says (1 where it shows a violation), and the clone's `git status` shows nothing new
  // outside ignored paths. The bench lines are left out: minutes each, and bench:spin needs spin;
  // vs-kernel runs where QEMU is installed (CI installs it).
  test("every command runs in order in a fresh clone, with the exit code it should have, writing only ignored paths", () => {
    const dir = mkdtempSync(join(tmpdir(), "asidlab-tour-"));
    try {
      execFileSync("git", ["clone", "--quiet", REPO_ROOT, dir]);
      symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
      /** What shows a violation, as the tour's comments say: a historical variant, the exec finding, a replay. */
      const violation = (c: string) =>
        /--kernel (free-at-mmput|gp-fixup-irqs-on|ipi-in-bh|83b0177a6c48|user-pcid-mask-u16)\b/.test(c) ||
        /^npx asidlab run exec-after-activation$/.test(c) ||
        / replay /.test(c);
      let ran = 0;
      // vs-kernel boots a kernel in QEMU: CI installs it (ASIDLAB_REQUIRE_QEMU); elsewhere it may be absent.
      const qemu = existsSync("/usr/bin/qemu-system-x86_64") || process.env.ASIDLAB_REQUIRE_QEMU === "1";
      for (const c of commands) {
        if (/^npm run bench/.test(c)) continue;
        if (/ vs-kernel /.test(c) && !qemu) continue;
        const r = spawnSync("sh", ["-c", c], {
          cwd: dir,
          encoding: "utf8",
          env: { ...process.env, CI: "1", NO_COLOR: "1" },
          timeout: 300_000,
        });
        assert.equal(r.status, violation(c) ? 1 : 0, `${c}\n${r.stderr.slice(-2000)}`);
        ran++;
      }
      assert.ok(ran > 30, `${ran} commands ran`);
      const status = execFileSync("git", ["status", "--porcelain"], { cwd: dir, encoding: "utf8" });
      assert.equal(status, "", "nothing outside ignored paths");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
