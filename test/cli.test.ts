// The command line end to end, as a user runs it: `run` (table, --json,
// --seed, --policy, --trace), `scenarios`, `schema`, and the README's exit
// code contract for bad input (2, one located line on stderr, nothing on stdout).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { type CliResult, cli, REPO_ROOT } from "./helpers.js";
import { parseTrace, validateTrace } from "./trace-validator.js";

/** The `metrics` keys of `run --json`, as the README's contract lists them. */
const CONTRACT_METRICS = [
  "pasid_allocs",
  "pasid_frees",
  "pasid_peak",
  "refcount_ops",
  "gp_faults",
  "pasid_msr_writes",
  "ipis",
  "task_works",
  "context_switches",
  "xsaves_bytes",
  "xrstors_bytes",
  "bind_failures",
  "sigsegv",
  "enqcmd_submitted",
  "enqcmd_retries",
  "descriptors_completed",
  "dma_writes",
  "drains",
  "tlb_flushes_full",
  "tlb_flushes_range",
  "user_asid_flushes",
  "asid_switches",
  "cr3_writes",
  "cycles_total",
  "sim_time_ns",
];

/** Exit 2, nothing on stdout, one `asidlab: ` line on stderr with no stack trace; returns the message. */
function badInput(r: CliResult): string {
  assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, "", "nothing on stdout");
  assert.ok(r.stderr.endsWith("\n"), "stderr ends its line");
  const lines = r.stderr.split("\n").slice(0, -1);
  assert.equal(lines.length, 1, `exactly one line on stderr: ${JSON.stringify(r.stderr)}`);
  assert.ok(lines[0].startsWith("asidlab: "), lines[0]);
  assert.ok(!/^\s+at /m.test(r.stderr), "no stack trace");
  assert.ok(!/internal error/.test(r.stderr), lines[0]);
  return lines[0].slice("asidlab: ".length);
}

/** 1-based line and column of the first occurrence of `needle` in a fixture. */
function position(fixture: string, needle: string): { line: number; col: number } {
  const lines = readFileSync(join(REPO_ROOT, fixture), "utf8").split("\n");
  const line = lines.findIndex((l) => l.includes(needle));
  assert.ok(line >= 0, `${needle} in ${fixture}`);
  return { line: line + 1, col: lines[line].indexOf(needle) + 1 };
}

/** `file:line:col: ` at the start of a message, pointing at `needle`'s line (and column when given). */
function assertLocated(message: string, fixture: string, needle: string, exactCol = true): void {
  const m = /^(.+?):(\d+):(\d+): /.exec(message);
  assert.ok(m, `message names file:line:col: ${message}`);
  assert.equal(m[1], fixture);
  const at = position(fixture, needle);
  assert.equal(Number(m[2]), at.line, `line of '${needle}': ${message}`);
  if (exactCol) assert.equal(Number(m[3]), at.col, `column of '${needle}': ${message}`);
}

describe("asidlab run", () => {
  test("run scenarios/thread-pool.yaml exits 0 and prints a table with context_switches", () => {
    const r = cli("run", "scenarios/thread-pool.yaml");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, /thread-pool/);
    assert.match(r.stdout, /^ {4}context_switches +[\d,]+$/m);
    assert.match(r.stdout, /^ {2}scheduling$/m, "metrics grouped under a heading");
    assert.doesNotMatch(r.stdout, /├/, "no rule between rows");
    assert.match(r.stdout, /violations: none/);
  });

  test("run thread-pool --json: one JSON object with the contract keys", () => {
    const r = cli("run", "thread-pool", "--json");
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    for (const key of ["scenario", "seed", "policy", "metrics", "violations"]) assert.ok(key in j, key);
    assert.equal(j.scenario, "thread-pool");
    assert.equal(j.seed, 1, "the file's seed");
    assert.equal(j.policy.pasid_lifetime, "mm");
    for (const key of CONTRACT_METRICS) {
      assert.equal(typeof j.metrics[key], "number", `metrics.${key}`);
    }
    assert.ok(Array.isArray(j.violations));
    assert.deepEqual(j.violations, []);
    // The thread pool switches tasks: 2 processes x 8 threads on 4 CPUs, yielding.
    assert.ok(j.metrics.context_switches > 0);
  });

  test("--seed 7 and --policy pasid_lifetime=unbind override the file", () => {
    const r = cli("run", "thread-pool", "--json", "--seed", "7", "--policy", "pasid_lifetime=unbind");
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.seed, 7);
    assert.equal(j.policy.pasid_lifetime, "unbind");
    assert.equal(j.policy.pasid_msr, "gp-fixup", "the other policies stay the file's");
  });

  test("--trace writes Chrome Trace JSON whose slices nest per track, with sched_switch events", () => {
    const dir = mkdtempSync(join(tmpdir(), "asidlab-trace-"));
    try {
      const out = join(dir, "out.json");
      const r = cli("run", "scenarios/process-lifecycle.yaml", "--trace", out);
      assert.equal(r.status, 0, r.stderr);
      const { errors, checked } = validateTrace(parseTrace(readFileSync(out, "utf8")));
      assert.deepEqual(errors, []);
      assert.ok(checked.slices > 0);
      assert.ok(new Set(checked.parents.map((p) => p.tid)).size >= 2, "one track per CPU");
      assert.ok(
        checked.instants.some((e) => e.name === "sched_switch"),
        "a sched_switch event",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("asidlab: bad input exits 2 with one located line", () => {
  test("malformed YAML names file:line:col", () => {
    const msg = badInput(cli("run", "test/fixtures/malformed.yaml"));
    assertLocated(msg, "test/fixtures/malformed.yaml", "compute: 5: 6", false);
  });

  test("a schema violation (cpus: 0) names file:line:col of the value and the key path", () => {
    const msg = badInput(cli("run", "test/fixtures/bad-schema.yaml"));
    assertLocated(msg, "test/fixtures/bad-schema.yaml", "cpus: 0", false);
    const col = Number(/^[^:]+:\d+:(\d+):/.exec(msg)?.[1]);
    assert.equal(
      col,
      position("test/fixtures/bad-schema.yaml", "cpus: 0").col + "cpus: ".length,
      "at the value",
    );
    assert.match(msg, /machine\.cpus/);
  });

  test("an unknown op names file:line:col of the op and the op's name", () => {
    const msg = badInput(cli("run", "test/fixtures/unknown-op.yaml"));
    assertLocated(msg, "test/fixtures/unknown-op.yaml", "frobnicate");
    assert.match(msg, /frobnicate/);
  });

  test("an fpu op naming a component the machine lacks names file:line:col and the component", () => {
    const msg = badInput(cli("run", "test/fixtures/fpu-no-amx.yaml"));
    assertLocated(msg, "test/fixtures/fpu-no-amx.yaml", "fpu: [avx, amx]");
    assert.match(msg, /no XSTATE component 'amx'/);
  });

  test("a missing file names the file", () => {
    const msg = badInput(cli("run", "test/fixtures/no-such-file.yaml"));
    assert.ok(msg.startsWith("test/fixtures/no-such-file.yaml: "), msg);
  });

  test("an unknown policy value names the option and the allowed values", () => {
    const msg = badInput(cli("run", "thread-pool", "--policy", "pasid_lifetime=forever"));
    assert.match(msg, /pasid_lifetime/);
    assert.match(msg, /forever/);
    assert.match(msg, /unbind/);
  });

  test("a bad --seed names the option", () => {
    const msg = badInput(cli("run", "thread-pool", "--seed", "abc"));
    assert.match(msg, /--seed/);
  });
});

describe("asidlab scenarios and schema", () => {
  test("scenarios lists every file in scenarios/ with its description", () => {
    const r = cli("scenarios");
    assert.equal(r.status, 0, r.stderr);
    // An entry: its first line, then continuation lines (wrapped) that start with spaces.
    const entries: string[] = [];
    for (const l of r.stdout.trimEnd().split("\n")) {
      if (/^\s/.test(l)) entries[entries.length - 1] += ` ${l.trim()}`;
      else entries.push(l);
    }
    const files = readdirSync(join(REPO_ROOT, "scenarios"))
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .sort();
    assert.equal(entries.length, files.length, "one entry per scenario file");
    for (const f of files) {
      const name = f.replace(/\.(ya?ml|json)$/, "");
      const line = entries.find((l) => l.split(/\s+/)[0] === name);
      assert.ok(line !== undefined, `${name} is listed`);
      const description = line.slice(name.length).trim().replace(/\s+/g, " ");
      assert.ok(description.length > 0, `${name} has a description`);
      const comment = readFileSync(join(REPO_ROOT, "scenarios", f), "utf8")
        .split("\n")
        .find((l) => l.startsWith("#"));
      assert.equal(
        description,
        comment?.replace(/^#\s*/, "").replace(/\s+/g, " "),
        `${name}: the file's first comment line`,
      );
    }
  });

  test("schema prints a JSON Schema", () => {
    const r = cli("schema");
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(typeof s.$schema, "string");
    assert.ok(s.properties?.processes, "it describes processes");
  });
});

describe("the installed command", () => {
  test("package.json's bin is the built CLI, so `npx asidlab` runs it", () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
      bin: Record<string, string>;
    };
    const bin = join(REPO_ROOT, pkg.bin.asidlab);
    assert.match(
      readFileSync(bin, "utf8"),
      /^#!\/usr\/bin\/env node/,
      `${pkg.bin.asidlab} is built, with a shebang`,
    );
    const r = spawnSync(process.execPath, [bin, "scenarios"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^thread-pool\s/m);
    // The README's way: npx finds the package's own bin (it links itself as a dev
    // dependency); --no: never fetch a package of that name from the registry.
    const npx = spawnSync("npx", ["--no", "asidlab", "scenarios"], { cwd: REPO_ROOT, encoding: "utf8" });
    assert.equal(npx.status, 0, npx.stderr);
    assert.match(npx.stdout, /^thread-pool\s/m);
  });
});

describe("asidlab run: the device model's bad input", () => {
  test("an op naming an undeclared device is refused at load, located, listing the declared ones", () => {
    const msg = badInput(cli("run", "test/fixtures/undeclared-device.yaml"));
    assertLocated(msg, "test/fixtures/undeclared-device.yaml", "dsa1");
    assert.match(msg, /unknown device 'dsa1' \(declared: dsa0\)/);
  });

  test("an unknown kernel variant, in the file or on the command line, lists the known ones", () => {
    const msg = badInput(cli("run", "test/fixtures/unknown-variant.yaml"));
    assertLocated(msg, "test/fixtures/unknown-variant.yaml", "bogus");
    assert.match(msg, /free-at-mmput, no-drain/);
    const flag = badInput(cli("run", "scenarios/thread-pool.yaml", "--kernel", "nope"));
    assert.match(flag, /^--kernel nope: unknown kernel variant 'nope'/);
  });

  test("--kernel free-at-mmput makes exit-with-inflight exit 1 with the violation; mainline exits 0", () => {
    const bad = cli("run", "exit-with-inflight", "--kernel", "free-at-mmput", "--json");
    assert.equal(bad.status, 1);
    const r = JSON.parse(bad.stdout) as { violations: { property: string }[] };
    assert.ok(r.violations.some((v) => v.property === "pasid-reuse"));
    assert.equal(cli("run", "exit-with-inflight").status, 0);
  });
});
