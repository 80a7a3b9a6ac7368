// `asidlab sweep` and `merge`: deterministic NDJSON, shards that merge into
// the unsharded bytes, resuming after a kill, a crashing worker, bad input.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { mergeResults, parseShard, planSweep, runSweep, type SweepPlan } from "../src/run/sweep.js";
import { InputError } from "../src/scenario/errors.js";
import { loadSweepString } from "../src/scenario/sweep-spec.js";
import { type CliResult, REPO_ROOT } from "./helpers.js";

/** The built command (`npm test` builds first): its worker threads load compiled code, not tsx. */
function cli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, ["dist/src/cli/main.js", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, ASIDLAB_DEBUG: "" },
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), "asidlab-sweep-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SPEC = `name: small
scenarios: [short-lived-threads, tlb-seed-001]
seeds: 2
vary: { machine.cpus: [1, 2] }
policies: { pasid_lifetime: [mm, unbind] }
metrics: [pasid_allocs, user_asid_flushes, cycles_total]
`;

function specFile(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

function plan(text = SPEC): SweepPlan {
  return planSweep(loadSweepString(text, join(dir, "spec.yaml")));
}

async function collect(p: SweepPlan, opts: Parameters<typeof runSweep>[1] = {}): Promise<string> {
  let s = "";
  await runSweep(p, { workers: 2, ...opts, write: (c) => (s += c) });
  return s;
}

describe("sweep", () => {
  test("cells: scenarios x vary x policies x seeds, first key outermost, seeds innermost", () => {
    const p = plan();
    assert.equal(p.cells.length, 2 * 2 * 2 * 2);
    assert.deepEqual(
      p.cells
        .slice(0, 5)
        .map((c) => `${c.scenario} ${c.params["machine.cpus"]} ${c.params.pasid_lifetime} ${c.seed}`),
      [
        "short-lived-threads 1 mm 1",
        "short-lived-threads 1 mm 2",
        "short-lived-threads 1 unbind 1",
        "short-lived-threads 1 unbind 2",
        "short-lived-threads 2 mm 1",
      ],
    );
    assert.equal(plan().id, p.id, "the same sweep has the same id");
    assert.notEqual(plan(SPEC.replace("seeds: 2", "seeds: 3")).id, p.id);
  });

  test("one line per cell in cell order, the same bytes on 1 or 2 workers", async () => {
    const p = plan();
    const two = await collect(p);
    const one = await collect(p, { workers: 1 });
    assert.equal(one, two);
    const lines = two.trimEnd().split("\n");
    assert.equal(lines.length, 16);
    lines.forEach((l, i) => {
      const j = JSON.parse(l);
      assert.equal(j.cell, i);
      assert.equal(j.status, "ok");
      assert.deepEqual(Object.keys(j.metrics), ["pasid_allocs", "user_asid_flushes", "cycles_total"]);
    });
  });

  test("shards merged are byte-identical to the unsharded run (API and command line)", async () => {
    const p = plan();
    const full = await collect(p);
    const shards = [];
    for (let k = 1; k <= 3; k++)
      shards.push({ file: `s${k}`, text: await collect(p, { shard: { k, n: 3 } }) });
    assert.equal(mergeResults(shards), full);
    assert.equal(mergeResults([shards[2], shards[0], shards[1]]), full, "in any order");

    const spec = specFile("cli.yaml", SPEC);
    const whole = cli("sweep", spec, "--workers", "2");
    assert.equal(whole.status, 0, whole.stderr);
    assert.equal(whole.stdout, full);
    const files: string[] = [];
    for (let k = 1; k <= 2; k++) {
      const f = join(dir, `cli-${k}.ndjson`);
      const r = cli("sweep", spec, "--shard", `${k}/2`, "--out", f, "--workers", "1");
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "");
      files.push(f);
    }
    const m = cli("merge", ...files);
    assert.equal(m.status, 0, m.stderr);
    assert.equal(m.stdout, full);
  });

  test("resume: a rerun keeps the finished cells (a torn line dropped) and runs only the rest", async () => {
    const p = plan();
    const full = await collect(p);
    const lines = full.trimEnd().split("\n");
    const out = join(dir, "resume.ndjson");
    // Cells 5, 0 and 9 finished in that order; a fourth line was torn by the kill.
    writeFileSync(out, `${lines[5]}\n${lines[0]}\n${lines[9]}\n${lines[3].slice(0, 40)}`);
    const s = await runSweep(p, { workers: 2, out });
    assert.deepEqual(s, { cells: 16, inShard: 16, skipped: 3, ran: 13, failed: 0 });
    assert.equal(readFileSync(out, "utf8"), full);
    const again = await runSweep(p, { workers: 2, out });
    assert.equal(again.ran, 0, "nothing left: no cell twice");
    assert.equal(readFileSync(out, "utf8"), full);
  });

  test("resume after a killed sweep finishes only the remaining cells", async () => {
    const spec = specFile(
      "kill.yaml",
      "name: kill\nscenarios: [fork-exec-churn]\nseeds: 12\nmetrics: [pasid_allocs, cycles_total]\n",
    );
    const out = join(dir, "kill.ndjson");
    const child = spawn(
      process.execPath,
      ["dist/src/cli/main.js", "sweep", spec, "--workers", "1", "--out", out],
      { cwd: REPO_ROOT, stdio: "ignore" },
    );
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // Kill it once a few cells are in the file.
    for (;;) {
      await new Promise((r) => setTimeout(r, 20));
      let n = 0;
      try {
        n = readFileSync(out, "utf8").split("\n").length - 1;
      } catch {}
      if (n >= 3 || child.exitCode !== null) break;
    }
    child.kill("SIGKILL");
    await exited;
    assert.ok(existsSync(`${out}.lock`), "the killed sweep's lock is left behind (and taken over below)");
    const kept = readFileSync(out, "utf8").split("\n").length - 1;
    const r = cli("sweep", spec, "--workers", "2", "--out", out);
    assert.equal(r.status, 0, r.stderr);
    const m = /(\d+) already done, (\d+) run, 0 failed/.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(Number(m[1]), kept);
    assert.equal(Number(m[2]), 12 - kept, "only the cells not in the file ran");
    const whole = cli("sweep", spec, "--workers", "2");
    assert.equal(readFileSync(out, "utf8"), whole.stdout, "the same bytes as an uninterrupted sweep");
  });

  test("a second sweep on the same --out is refused while the first runs; the lock goes when it ends", async () => {
    const spec = specFile(
      "two.yaml",
      "name: two\nscenarios: [fork-exec-churn]\nseeds: 200\nmetrics: [pasid_allocs]\n",
    );
    const out = join(dir, "two.ndjson");
    const first = spawn(
      process.execPath,
      ["dist/src/cli/main.js", "sweep", spec, "--workers", "1", "--out", out],
      { cwd: REPO_ROOT, stdio: "ignore" },
    );
    const exited = new Promise((resolve) => first.on("exit", resolve));
    while (!existsSync(`${out}.lock`) && first.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    const second = cli("sweep", spec, "--workers", "1", "--out", out);
    assert.equal(first.exitCode, null, "the first sweep still runs (give it more seeds if this fails)");
    assert.equal(second.status, 2, second.stderr);
    assert.equal(
      second.stderr,
      `asidlab: ${out}: another sweep (pid ${first.pid}) is writing it; wait for it, or remove ${out}.lock if that process is not a sweep\n`,
    );
    await exited;
    assert.equal(first.exitCode, 0);
    assert.ok(!existsSync(`${out}.lock`), "released at the end");
  });

  test("a worker that crashes fails its cell with the error recorded; the rest goes on", async () => {
    const p = plan();
    const workerUrl = pathToFileURL(join(REPO_ROOT, "test/fixtures/crash-worker.ts")).href;
    let text = "";
    const s = await runSweep(p, { workers: 2, workerUrl, write: (c) => (text += c) });
    assert.equal(s.failed, 2);
    const lines = text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 16);
    assert.equal(lines[1].status, "error");
    assert.match(lines[1].error, /exit/i);
    assert.equal(lines[2].status, "error");
    assert.match(lines[2].error, /injected failure/);
    assert.ok(lines.filter((l) => l.status === "ok").length === 14);
    const good = (await collect(p)).trimEnd().split("\n");
    assert.equal(JSON.stringify(lines[3]), good[3], "other cells as in a clean sweep");
  });
});

describe("sweep and merge: bad input", () => {
  const bad = (...args: string[]) => {
    const r = cli(...args);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    return r.stderr;
  };

  test("an unknown --vary key or value, an empty cross product: one located line, exit 2", () => {
    const unknownKey = specFile("k.yaml", "name: k\nscenarios: [thread-pool]\nvary:\n  bogus.key: [1, 2]\n");
    assert.match(bad("sweep", unknownKey), /k\.yaml:4:3: vary: --vary bogus\.key: unknown key/);
    const badValue = specFile("v.yaml", "name: v\nscenarios: [thread-pool]\nvary:\n  machine.cpus: [2, 0]\n");
    assert.match(
      bad("sweep", badValue),
      /v\.yaml:4:21: vary\.machine\.cpus\[1\]: thread-pool: machine\.cpus=0/,
    );
    const badPolicy = specFile(
      "p.yaml",
      "name: p\nscenarios: [thread-pool]\npolicies:\n  pasid_lifetime: [mm, forever]\n",
    );
    assert.match(bad("sweep", badPolicy), /p\.yaml:4:24: policies\.pasid_lifetime\[1\]: /);
    const empty = specFile("e.yaml", "name: e\nscenarios: [thread-pool]\nvary:\n  machine.cpus: []\n");
    assert.match(
      bad("sweep", empty),
      /e\.yaml:4:17: vary\["machine\.cpus"\]: no values: an empty cross product/,
    );
    const noScen = specFile("n.yaml", "name: n\nscenarios: []\n");
    assert.match(bad("sweep", noScen), /n\.yaml:2:12: scenarios: no scenarios: an empty cross product/);
    assert.match(bad("sweep", noScen.replace("n.yaml", "k.yaml"), "--vary", "nope=1"), /unknown key/);
    assert.match(bad("sweep", unknownKey.replace("k.yaml", "e.yaml")), /empty cross product/);
    // compare's --vary: the same errors on the command line
    assert.match(
      bad("compare", "short-lived-threads", "--vary", "machine.cpus="),
      /--vary machine\.cpus=: no values \(an empty cross product\)/,
    );
    assert.match(
      bad("compare", "short-lived-threads", "--vary", "pasid_lifetime=mm,forever"),
      /pasid_lifetime=forever/,
    );
  });

  test("--shard outside 1..n", () => {
    const spec = specFile("ok.yaml", "name: ok\nscenarios: [short-lived-threads]\n");
    assert.match(bad("sweep", spec, "--shard", "0/2"), /--shard 0\/2: k must be between 1 and 2/);
    assert.match(bad("sweep", spec, "--shard", "3/2"), /--shard 3\/2: k must be between 1 and 2/);
    assert.match(bad("sweep", spec, "--shard", "1/0"), /--shard 1\/0: n must be at least 1/);
    assert.match(bad("sweep", spec, "--shard", "two"), /--shard two: expected k\/n/);
    assert.throws(() => parseShard("2/1"), InputError);
  });

  test("merge of shards of different sweeps, or with a shard missing", async () => {
    const f = (n: string) => join(dir, n);
    // Shards 1/2 and 2/2 of two sweeps (a shard holds the cells i with i mod 2 = k-1).
    for (const name of ["a", "b"]) {
      const text = await collect(
        plan(`name: ${name}\nscenarios: [short-lived-threads]\nseeds: 4\nmetrics: [pasid_allocs]\n`),
      );
      const lines = text.trimEnd().split("\n");
      for (const k of [1, 2])
        writeFileSync(
          f(`${name}${k}.ndjson`),
          lines
            .filter((_, i) => i % 2 === k - 1)
            .map((l) => `${l}\n`)
            .join(""),
        );
    }
    assert.equal(cli("merge", f("a1.ndjson"), f("a2.ndjson")).status, 0);
    assert.match(bad("merge", f("a1.ndjson"), f("b2.ndjson")), /b2\.ndjson:1: from another sweep/);
    assert.match(bad("merge", f("a1.ndjson")), /2 of 4 cells missing \(cells 1, 3\): a shard is missing/);
    assert.match(bad("merge", f("a1.ndjson"), f("a1.ndjson")), /a1\.ndjson:1: cell 0 is also in/);
    assert.match(bad("merge", f("nothing.ndjson")), /nothing\.ndjson: cannot read file/);
    // A results file of another sweep is not resumed over.
    const b = specFile(
      "b.yaml",
      "name: b\nscenarios: [short-lived-threads]\nseeds: 4\nmetrics: [pasid_allocs]\n",
    );
    assert.match(
      bad("sweep", b, "--shard", "1/2", "--out", f("a1.ndjson")),
      /a1\.ndjson:1: results of another sweep/,
    );
  });
});

describe("sweep: labels", () => {
  test('vary: { "label=key": [...] } names the key in every cell; a bad key is still located', () => {
    const p = plan(
      "name: lab\nscenarios: [thread-pool]\nvary:\n  cpus=machine.cpus: [2, 4]\npolicies: { pasid_lifetime: [mm] }\n",
    );
    assert.deepEqual(
      p.cells.map((c) => c.params),
      [
        { cpus: "2", pasid_lifetime: "mm" },
        { cpus: "4", pasid_lifetime: "mm" },
      ],
    );
    assert.deepEqual(
      p.cells.map((c) => (c.task.doc as { machine: { cpus: number } }).machine.cpus),
      [2, 4],
      "the label names the key; the path is what varies",
    );
    assert.throws(
      () => plan("name: lab\nscenarios: [thread-pool]\nvary:\n  cpus=machine.nope: [2]\n"),
      (e) => e instanceof InputError && /spec\.yaml:\d+:\d+: /.test(e.message),
    );
  });
});
