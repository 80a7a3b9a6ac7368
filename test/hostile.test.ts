// Hostile and careless input (issue #18): whatever the file or flag, a clear
// one-line error naming the place and exit 2; never a stack trace, a hang, a
// runaway read or another exit code.

import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  budgetStop,
  budgets,
  capWorkers,
  DEFAULT_MEMORY_CAP_MIB,
  DEFAULT_TIME_S,
} from "../src/cli/budget.js";
import { fsMessage } from "../src/cli/guard.js";
import { compileScenario } from "../src/scenario/compile.js";
import { InputError } from "../src/scenario/errors.js";
import { loadScenarioString } from "../src/scenario/load.js";
import { fsFailure } from "../src/scenario/read.js";
import { type CliResult, cli, REPO_ROOT } from "./helpers.js";

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

/** The InputError message of loading and compiling `text` as `file`. */
function loadError(text: string, file: string): string {
  try {
    compileScenario(loadScenarioString(text, file));
  } catch (err) {
    assert.ok(err instanceof InputError, `an InputError, not ${String(err)}`);
    return err.message;
  }
  assert.fail("no error");
}

/** `{repeat: 2, do: [...]}` nested `depth` deep around one compute, as JSON. */
function repeats(depth: number): string {
  let p = '{"compute": 1}';
  for (let i = 0; i < depth; i++) p = `{"repeat": 2, "do": [${p}]}`;
  return `{"name": "t", "processes": [{"name": "a", "program": [${p}]}]}`;
}

describe("an output that is a FIFO", () => {
  execFileSync("mkfifo", [f("out.fifo")]);

  test("with no reader: refused before the work, one line, exit 2 (check --out/--trace/--itf, run --trace)", () => {
    const msg = `${f("out.fifo")}: cannot write: a FIFO that no process reads`;
    for (const flag of ["--out", "--trace", "--itf"])
      assert.equal(
        badInput(cli("check", "check-gp-fixup", "--kernel", "gp-fixup-irqs-on", flag, f("out.fifo"))),
        msg,
      );
    assert.equal(badInput(cli("run", "thread-pool", "--trace", f("out.fifo"))), msg);
  });

  test("with a reader: the whole output reaches it", async () => {
    const reader = spawn("cat", [f("out.fifo")], { stdio: ["ignore", "pipe", "inherit"] });
    const chunks: Buffer[] = [];
    reader.stdout.on("data", (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => reader.on("exit", resolve));
    await new Promise((r) => setTimeout(r, 200)); // cat has opened the FIFO
    const r = cli("check", "check-gp-fixup", "--kernel", "gp-fixup-irqs-on", "--out", f("out.fifo"));
    assert.equal(r.status, 1, r.stderr);
    await ended;
    const text = Buffer.concat(chunks).toString("utf8");
    assert.match(text, /^# asidlab counterexample schedule/);
    assert.ok(text.endsWith("\n"));
  });
});

describe("nesting is bounded before any recursive parse", () => {
  const deepList = (n: number) => `${"[".repeat(n)}"x"${"]".repeat(n)}`;

  test("a JSON or YAML name nested 1,000 lists deep is one located line", () => {
    const json = `{"name": ${deepList(1000)}, "processes": [{"name": "a", "program": [{"compute": 1}]}]}`;
    assert.equal(
      loadError(json, "x.json"),
      "x.json:1:72: nested deeper than 64 levels of lists and mappings",
    );
    const yaml = `name: ${deepList(1000)}\nprocesses:\n  - {name: a, program: [compute: 1]}\n`;
    assert.equal(
      loadError(yaml, "x.yaml"),
      "x.yaml:1:70: nested deeper than 64 levels of lists and mappings",
    );
  });

  test("YAML block nesting counts too", () => {
    let yaml = "name: t\nprocesses:\n  - name: a\n    program:\n";
    for (let i = 0; i < 1000; i++) yaml += `${" ".repeat(6 + 2 * i)}-\n`;
    assert.match(
      loadError(yaml, "x.yaml"),
      /^x\.yaml:66:\d+: nested deeper than 64 levels of lists and mappings$/,
    );
  });

  test("340 nested repeats: loops nested deeper than 6, at the seventh loop's body", () => {
    const text = repeats(340);
    const seventh = text.split('"do": [', 8).slice(0, 7).join('"do": [').length + '"do": '.length;
    assert.equal(
      loadError(text, "x.json"),
      `x.json:1:${seventh + 1}: loops nested deeper than 6 (repeat and count both nest)`,
    );
    // and through the CLI: exit 2, one line, not an internal error
    writeFileSync(f("repeats.json"), text);
    assert.match(badInput(cli("run", f("repeats.json"))), /repeats\.json:1:\d+: loops nested deeper than 6/);
  });

  test("7 nested repeats, within the bound, get the compiler's message", () => {
    assert.equal(loadError(repeats(7), "x.json").includes("loops nested deeper than 6"), true);
  });
});

describe("keys are checked against own properties, never the prototype", () => {
  test("--policy __proto__=x, constructor=x, toString=x", () => {
    for (const key of ["__proto__", "constructor", "toString"]) {
      assert.match(
        badInput(cli("run", "thread-pool", "--policy", `${key}=x`)),
        new RegExp(`^--policy ${key}=x: expected key=value with key one of pasid_lifetime, `),
      );
    }
  });

  test("--vary: a prototype key at the top or along a path", () => {
    assert.match(
      badInput(cli("compare", "thread-pool", "--vary", "toString=a")),
      /^--vary toString: unknown key/,
    );
    for (const key of ["machine.__proto__", "machine.constructor", "processes.0.toString"]) {
      const last = key.split(".").pop();
      assert.equal(
        badInput(cli("compare", "thread-pool", "--seeds", "1", "--vary", `${key}=1`)),
        `--vary ${key}: '${last}' is not a key of the scenario`,
      );
    }
    assert.equal(
      badInput(cli("compare", "thread-pool", "--seeds", "1", "--vary", "machine.constructor.x=1")),
      "--vary machine.constructor.x: no 'machine.constructor' in the scenario",
    );
  });

  test("--kernel and --vary kernel= name no prototype key", () => {
    for (const v of ["__proto__", "constructor", "toString"]) {
      assert.match(
        badInput(cli("run", "thread-pool", "--kernel", v)),
        new RegExp(`unknown kernel variant '${v}'`),
      );
    }
  });

  test("costs: {toString: 5} is an unknown cost; a __proto__ key in a file is refused where it is", () => {
    const program = '"processes": [{"name": "a", "program": [{"compute": 1}]}]';
    assert.equal(
      loadError(`{"name": "t", "costs": {"toString": 5}, ${program}}`, "x.json"),
      "x.json:1:37: costs.toString: unknown cost kind 'toString'",
    );
    assert.equal(
      loadError(`{"name": "t", "machine": {"__proto__": {"cpus": 999}}, ${program}}`, "x.json"),
      "x.json:1:27: '__proto__' is not allowed as a key",
    );
    writeFileSync(f("proto-sweep.yaml"), "name: s\nscenarios: [thread-pool]\nvary: {__proto__: [1]}\n");
    assert.equal(
      badInput(cli("sweep", f("proto-sweep.yaml"))),
      `${f("proto-sweep.yaml")}:3:8: '__proto__' is not allowed as a key`,
    );
  });
});

describe("filesystem errors on output are one line and exit 2", () => {
  writeFileSync(f("a-file"), "not a directory\n");

  test("report FILE --html, or an output under a file where a directory is expected", () => {
    assert.equal(
      badInput(cli("report", f("a-file"), "--html", f("out.html"))),
      `${f("a-file")}: not a directory (expected one written by compare --plot, sweep --out or demo)`,
    );
    assert.equal(
      badInput(cli("run", "thread-pool", "--trace", f("a-file/t.json"))),
      `${f("a-file/t.json")}: cannot write trace: ${f("a-file")} is not a directory`,
    );
    // compare prints its table before it writes the plots: the error is still one line and exit 2
    const r = cli(
      "compare",
      "thread-pool",
      "--seeds",
      "1",
      "--vary",
      "machine.cpus=1,2",
      "--plot",
      f("a-file"),
    );
    assert.equal(r.status, 2, r.stderr);
    assert.equal(
      r.stderr,
      `asidlab: ${f("a-file/thread-pool.compare.json")}: cannot write: ${f("a-file")} is not a directory\n`,
    );
  });

  test("stdout on a full device (ENOSPC): exit 2, not 1 with a stack trace", () => {
    const full = openSync("/dev/full", "w");
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "run", "thread-pool", "--json"],
      {
        cwd: REPO_ROOT,
        encoding: "utf8",
        stdio: ["ignore", full, "pipe"],
        timeout: 60_000,
      },
    );
    closeSync(full);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, "asidlab: standard output: cannot write: no space left on device\n");
  });

  test("stdout a closed pipe (EPIPE): exit 2, one line", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "run", "thread-pool", "--json"],
      {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout.destroy(); // the reader goes away before anything is written
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const status = await new Promise<number | null>((res) => child.on("close", (code) => res(code)));
    assert.equal(status, 2, stderr);
    assert.equal(stderr, "asidlab: standard output: cannot write: broken pipe\n");
  });

  test("an uncaught filesystem error (EACCES, ENOSPC, ...) is worded, not an internal error", () => {
    const err = Object.assign(new Error("EACCES: permission denied, open '/x/y'"), {
      code: "EACCES",
      syscall: "open",
      path: "/x/y",
    });
    assert.equal(fsMessage(err), "/x/y: cannot open: permission denied");
    assert.equal(fsMessage(new TypeError("x is not a function")), null, "a bug stays an internal error");
    assert.equal(fsFailure({ code: "ENOSPC" }), "no space left on device");
  });
});

describe("replay refuses a schedule that does not reach the violation it records", () => {
  // One counterexample, then copies of it cut, edited and with a step removed.
  const out = f("c.schedule");
  const check = cli("check", "check-exit-inflight", "--kernel", "free-at-mmput", "--out", out);
  const lines = readFileSync(out, "utf8").split("\n").slice(0, -1);
  const head = lines.filter((l) => l.startsWith("#"));
  const steps = lines.length - head.length;
  const variant = (name: string, ls: string[]) => {
    writeFileSync(f(name), `${ls.join("\n")}\n`);
    return f(name);
  };

  test("the whole schedule still replays to its violation (exit 1)", () => {
    assert.equal(check.status, 1, check.stderr);
    const r = cli("replay", out);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, new RegExp(`pasid-reuse: .* \\(at step ${steps}\\)\n$`));
  });

  test("cut to its header, cut short, or missing a step: exit 2 saying where it stops", () => {
    assert.equal(
      badInput(cli("replay", variant("header.schedule", head))),
      `${f("header.schedule")}: no steps: the schedule ends without reaching the violation it records (pasid-reuse): cut short or edited? run check again`,
    );
    assert.equal(
      badInput(cli("replay", variant("half.schedule", lines.slice(0, head.length + 10)))),
      `${f("half.schedule")}:${head.length + 10}: step 10: the schedule ends without reaching the violation it records (pasid-reuse): cut short or edited? run check again`,
    );
    const dropped = lines.filter((_, i) => i !== head.length + 5);
    assert.match(
      badInput(cli("replay", variant("dropped.schedule", dropped))),
      /^.*dropped\.schedule:\d+: step \d+: /,
    );
  });

  test("a step whose number is out of range names the field, not another transition", () => {
    const edited = [...lines];
    edited[head.length + 1] = "cpu 99999999999999999999";
    assert.equal(
      badInput(cli("replay", variant("edited.schedule", edited))),
      `${f("edited.schedule")}:${head.length + 2}:5: cpu 99999999999999999999: the CPU number is out of range (at most 1048575)`,
    );
  });
});

describe("numbers past a field's range", () => {
  test("a huge number is told the field's range, not the safe-integer bound", () => {
    const msg = loadError(
      "name: x\nmachine: { cpus: 99999999999999999999 }\nprocesses: [ { name: a, program: [ { compute: 1 } ] } ]\n",
      "c.yaml",
    );
    assert.match(msg, /^c\.yaml:2:18: machine\.cpus: .*<=256$/);
    assert.doesNotMatch(msg, /9007199254740991/);
    assert.match(
      loadError(
        "name: x\nmachine: { cpus: 1.5 }\nprocesses: [ { name: a, program: [ { compute: 1 } ] } ]\n",
        "d.yaml",
      ),
      /machine\.cpus: .*int/,
    );
  });
});

describe("sizes are bounded before the document is materialised", () => {
  writeFileSync(
    f("ck.yaml"),
    "name: x\n? [a, b]\n: 1\nprocesses: [ { name: a, program: [ { compute: 1 } ] } ]\n",
  );
  test("a list or mapping of more than 1,024 entries is refused where it starts", () => {
    const procs = Array.from({ length: 1500 }, (_, i) => `  - { name: p${i}, program: [ { compute: 1 } ] }`);
    const msg = loadError(`name: x\nprocesses:\n${procs.join("\n")}\n`, "wide.yaml");
    assert.equal(msg, "wide.yaml:3:3: a list of 1500 items; at most 1024 in any list or mapping");
    const costs = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, 1]));
    assert.match(
      loadError(JSON.stringify({ name: "x", costs, processes: [] }), "wide.json"),
      /^wide\.json:1:\d+: a mapping of 2000 keys; at most 1024/,
    );
  });

  test("under the generic bound, the schema's own maxima are told with the field", () => {
    const procs = Array.from({ length: 65 }, (_, i) => `  - { name: p${i}, program: [ { compute: 1 } ] }`);
    assert.match(
      loadError(`name: x\nprocesses:\n${procs.join("\n")}\n`, "p.yaml"),
      /^p\.yaml:\d+:\d+: processes: .*64/,
    );
    assert.match(
      loadError(
        `name: x\nkernel: [${Array(65).fill("a").join(", ")}]\nprocesses: [ { name: a, program: [ { compute: 1 } ] } ]\n`,
        "k.yaml",
      ),
      /^k\.yaml:\d+:\d+: kernel: .*64/,
    );
  });

  test("a key that is a list or mapping is refused where it is (toJS would stringify it, and yaml warn)", () => {
    assert.equal(
      loadError(
        "name: x\n? [a, b]\n: 1\nprocesses: [ { name: a, program: [ { compute: 1 } ] } ]\n",
        "key.yaml",
      ),
      "key.yaml:2:3: a key must be a name, not a list or mapping",
    );
    assert.equal(
      badInput(cli("run", f("ck.yaml"))),
      `${f("ck.yaml")}:2:3: a key must be a name, not a list or mapping`,
    );
  });

  test("set_fixmap is capped at the fixmap's 1,024 pages, so one step is bounded work", () => {
    assert.match(
      loadError("name: x\nprocesses: [ { name: a, program: [ { set_fixmap: 67108864 } ] } ]\n", "fix.yaml"),
      /^fix\.yaml:2:\d+: .*set_fixmap: .*<=1024$/,
    );
  });
});

describe("budgets that hold", () => {
  test("run --time stops a long run where it is, says so, and exits 0", () => {
    const r = cli("run", "big-machine", "--time", "1", "--json");
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { complete: boolean; stop_reason: string };
    assert.equal(out.complete, false);
    assert.equal(out.stop_reason, "time-budget");
    assert.match(r.stderr, /run stopped at the time-budget; figures cover the part that ran/);
  });

  test("check on a 10,000-task machine ends at its time budget (symmetry is not tried there)", () => {
    const r = cli("check", "big-machine", "--time", "2", "--json");
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { verdict: string; reason: string; coverage: string; states: number };
    assert.equal(out.verdict, "incomplete");
    assert.equal(out.reason, "time budget: 2 s");
    assert.match(out.coverage, /symmetry not tried \(\d+ task slots, over 256\)/);
    assert.ok(out.states > 0);
  });

  test("check --memory below what node itself takes stops at the first poll, saying which budget", () => {
    const r = cli("check", "check-gp-fixup", "--memory", "16", "--json");
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { verdict: string; reason: string; states: number };
    assert.equal(out.verdict, "incomplete");
    assert.equal(out.reason, "memory budget: 16 MiB");
    assert.ok(out.states <= 64, `stopped within one poll: ${out.states} states`);
  });

  test("default budgets: an hour and half the machine's memory, named as defaults when they end a search", () => {
    const b = budgets(undefined, undefined);
    assert.equal(b.timeS, DEFAULT_TIME_S);
    assert.equal(b.memoryMiB, Math.min(DEFAULT_MEMORY_CAP_MIB, Math.floor(totalmem() / 2 ** 21)));
    const tight = budgetStop({ ...b, memoryMiB: 16 });
    assert.match(
      tight.stop({ states: 0, transitions: 0, depth: 0 }) ?? "",
      /memory budget: 16 MiB \(the default/,
    );
    const given = budgetStop(budgets(undefined, 16));
    assert.equal(given.stop({ states: 0, transitions: 0, depth: 0 }), "memory budget: 16 MiB");
    // A visited table about to double is counted before it is allocated.
    const roomy = budgetStop(budgets(undefined, 1e6));
    assert.equal(roomy.stop({ states: 0, transitions: 0, depth: 0 }), null);
    assert.match(
      roomy.stop({ states: 0, transitions: 0, depth: 0, reserve: 2 ** 40 }) ?? "",
      /memory budget/,
    );
  });

  test("--workers past the CPUs available is capped, with a note on stderr", () => {
    const many = availableParallelism() + 6;
    const r = cli("check", "check-ipi-in-bh", "--workers", String(many), "--json");
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`--workers ${many} capped at the ${availableParallelism()} CPUs? available`),
    );
    const out = JSON.parse(r.stdout) as { verdict: string; coverage: string };
    assert.equal(out.verdict, "pass");
    assert.equal(capWorkers(1).note, null);
  });
});

describe("no async work escapes the command line's guard", () => {
  const files = readdirSync(join(REPO_ROOT, "src"), { recursive: true, encoding: "utf8" })
    .filter((p) => p.endsWith(".ts"))
    .map((p) => ({ path: `src/${p}`, text: readFileSync(join(REPO_ROOT, "src", p), "utf8") }));
  /** The text without comments and string literals (so that code in a string is not code). */
  const code = (t: string) =>
    t
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "")
      .replace(/`(?:\\.|[^`\\])*`|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'/g, '""');

  test("the entry point installs the guards and awaits main(), which catches what commands throw", () => {
    const main = readFileSync(join(REPO_ROOT, "src/cli/main.ts"), "utf8");
    assert.match(main, /\n\s+guardProcess\(\);\n\s+guardStdout\(\);/);
    assert.match(main, /try \{\n\s+await cli\.parseAsync\(argv\);\n\s+\} catch/);
    assert.match(main, /\nawait main\(process\.argv\);\n$/);
  });

  test("every call of an async function is awaited or returned; every .then has a rejection handler", () => {
    const asyncNames = new Set<string>();
    for (const f of files)
      for (const m of code(f.text).matchAll(/async function (\w+)/g)) asyncNames.add(m[1]);
    assert.ok(asyncNames.size >= 5, [...asyncNames].join(", "));
    const floating: string[] = [];
    for (const f of files) {
      const c = code(f.text);
      for (const name of asyncNames)
        for (const m of c.matchAll(new RegExp(`(?<![\\w.])${name}\\(`, "g"))) {
          const before = c.slice(Math.max(0, m.index - 40), m.index);
          if (/async function\s*$/.test(before)) continue; // the declaration
          if (!/(await|return|=>)\s*$/.test(before)) floating.push(`${f.path}: ${name}(...) not awaited`);
        }
      for (const m of c.matchAll(/\.then\(/g)) {
        // The call's arguments up to its closing parenthesis: a second one (onRejected) must be there.
        let depth = 1;
        let i = m.index + m[0].length;
        let args = 1;
        for (; i < c.length && depth > 0; i++) {
          const ch = c[i];
          if ("([{".includes(ch)) depth++;
          else if (")]}".includes(ch)) depth--;
          else if (ch === "," && depth === 1) args++;
        }
        if (args < 2 && !/^\s*\.catch\(/.test(c.slice(i)))
          floating.push(`${f.path}: .then without onRejected`);
      }
      for (const m of c.matchAll(/set(?:Timeout|Interval|Immediate)\(\s*async|\bvoid\s+([\w.]+)\(/g))
        if (m[1] === undefined || asyncNames.has(m[1].split(".").pop() ?? ""))
          floating.push(`${f.path}: ${m[0]}`);
    }
    assert.deepEqual(floating, []);
  });

  test("an exception that escapes everything is one line and exit 70, not a stack trace and exit 1", () => {
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "-e",
        'import("./src/cli/guard.ts").then((g) => { g.guardProcess(); setTimeout(() => { throw new Error("boom\\nsecond line"); }, 0); }, () => process.exit(9));',
      ],
      { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, ASIDLAB_DEBUG: "" } },
    );
    assert.equal(r.status, 70, r.stderr);
    assert.equal(r.stderr, "asidlab: internal error: boom\n");
  });
});
