// asidlab `check` beside SPIN on the same problems (issue #6, item 7). Two
// built-in check scenarios, each in its buggy form (the kernel variant) and
// its fixed form (mainline), at two sizes (1 CPU; 2 CPUs), preemption bound
// 2, are checked by asidlab (the CLI, a fresh process per row, as a user runs
// it) and by SPIN on their Promela twins in bench/promela/ (same transitions:
// a CPU's step, a tick, the device; same kernel steps where they matter).
// Time to verdict is the wall time of the whole command: asidlab's process
// start included, SPIN's `spin -a` + `gcc` + `./pan` included.
//
//   npm run bench:spin            the table (spin must be installed; ASIDLAB_INSTALL_SPIN=1 lets it apt-get install spin)
//   node dist/bench/run.js --only spin [--json]
//
// It measures and prints; it never fails on a figure.

import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { nowNs } from "./timing.js";

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = resolve(here, "..", "..");
const PROMELA = join(ROOT, "bench", "promela");
const CLI = join(ROOT, "dist", "src", "cli", "main.js");
const BOUND = 2;

interface Problem {
  scenario: string;
  promela: string;
  variant: string;
  /** The scenario at 2 CPUs: the built-in file's text changed so. */
  twoCpus: (yaml: string) => string;
}

const PROBLEMS: Problem[] = [
  {
    scenario: "check-exit-inflight",
    promela: "exit-inflight.pml",
    variant: "free-at-mmput",
    twoCpus: (y) => y.replace("cpus: 1", "cpus: 2"),
  },
  {
    // At 2 CPUs, `other` has count: 2, so that one of them shares CPU 0 with
    // app (round robin) and app can be preempted; the twin sets NPROC=3.
    scenario: "check-gp-fixup",
    promela: "gp-fixup.pml",
    variant: "gp-fixup-irqs-on",
    twoCpus: (y) => y.replace("cpus: 1", "cpus: 2").replace("- name: other", "- name: other\n    count: 2"),
  },
];

export interface ToolFigures {
  verdict: string;
  states: number;
  transitions: number;
  /** Search time as the tool reports it, s. */
  searchS: number;
  /** Wall time of the whole command(s), s: the time to verdict. */
  verdictS: number;
  /** Peak resident set, MiB (GNU time), or NaN. */
  memMiB: number;
  /** The counterexample's length (asidlab: shrunk; SPIN: the depth of the error). */
  cexLength: number | null;
}

export interface SpinRow {
  scenario: string;
  form: string;
  cpus: number;
  asidlab: ToolFigures;
  spin: ToolFigures;
}

export interface SpinBench {
  spinVersion: string;
  bound: number;
  rows: SpinRow[];
}

const TIME = "/usr/bin/time";

/** Run a command; its stdout, stderr, status, wall seconds and peak RSS (MiB, via GNU time when there is one). */
function run(cmd: string, args: string[], cwd: string) {
  const timed = existsSync(TIME);
  const t0 = nowNs();
  const r = timed
    ? spawnSync(TIME, ["-f", "maxrss_kb %M", cmd, ...args], { cwd, encoding: "utf8", maxBuffer: 1 << 28 })
    : spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 1 << 28 });
  const wall = (nowNs() - t0) / 1e9;
  const m = /maxrss_kb (\d+)/.exec(r.stderr ?? "");
  return {
    stdout: r.stdout ?? "",
    stderr: r.stderr ?? "",
    status: r.status,
    wall,
    memMiB: m ? Number(m[1]) / 1024 : Number.NaN,
  };
}

/**
 * SPIN's version. When it is missing, nothing is installed behind the user's
 * back: the bench stops and says the command, unless ASIDLAB_INSTALL_SPIN=1
 * asks it to run apt-get itself (a throwaway CI image, as root).
 */
export function ensureSpin(progress: (msg: string) => void): string {
  const probe = () => spawnSync("spin", ["-V"], { encoding: "utf8" });
  let v = probe();
  if ((v.error !== undefined || v.status !== 0) && process.env.ASIDLAB_INSTALL_SPIN !== "1")
    throw new Error(
      "spin is not installed: install it (Debian/Ubuntu: sudo apt-get install spin), or rerun with ASIDLAB_INSTALL_SPIN=1 to let the bench run apt-get install -y spin",
    );
  if (v.error !== undefined || v.status !== 0) {
    progress("spin not found; ASIDLAB_INSTALL_SPIN=1: apt-get install -y spin");
    let r = spawnSync("apt-get", ["install", "-y", "spin"], { stdio: "ignore" });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update"], { stdio: "ignore" });
      r = spawnSync("apt-get", ["install", "-y", "spin"], { stdio: "ignore" });
    }
    v = probe();
    if (v.error !== undefined || v.status !== 0)
      throw new Error("spin is not installed and apt-get could not install it");
  }
  return v.stdout.trim();
}

function asidlab(file: string, variant: string | null, cwd: string): ToolFigures {
  // --no-shortest: the first counterexample found, as pan reports its first error (still shrunk).
  const args = [
    CLI,
    "check",
    file,
    "--json",
    "--no-shortest",
    "--timing",
    "--preemption-bound",
    String(BOUND),
    "--max-states",
    "100000000",
  ];
  if (variant !== null) args.push("--kernel", variant);
  args.push("--out", join(cwd, "cex.schedule"));
  const r = run(process.execPath, args, cwd);
  const j = JSON.parse(r.stdout) as {
    verdict: string;
    states: number;
    transitions: number;
    counterexample: { length: number } | null;
  };
  return {
    verdict: j.verdict,
    states: j.states,
    transitions: j.transitions,
    searchS: Number(/timing: ([\d.]+) s/.exec(r.stderr)?.[1] ?? Number.NaN),
    verdictS: r.wall,
    memMiB: r.memMiB,
    cexLength: j.counterexample?.length ?? null,
  };
}

function spin(promela: string, cpus: number, bug: boolean, cwd: string): ToolFigures {
  for (const f of ["kernel.pml", promela]) copyFileSync(join(PROMELA, f), join(cwd, f));
  for (const f of ["pan", "pan.c", "pan.h", "pan.b", "pan.m", "pan.p", "pan.t"])
    rmSync(join(cwd, f), { force: true });
  const defs = [`-DNCPU=${cpus}`, `-DBOUND=${BOUND}`, ...(bug ? ["-DBUG"] : [])];
  const a = run("spin", [...defs, "-a", promela], cwd);
  if (a.status !== 0) throw new Error(`spin -a ${promela}: ${a.stdout}${a.stderr}`);
  const c = run("gcc", ["-O2", "-w", "-DSAFETY", "-DMEMLIM=8192", "-o", "pan", "pan.c"], cwd);
  if (c.status !== 0) throw new Error(`gcc pan.c: ${c.stderr}`);
  const p = run("./pan", ["-m1000000"], cwd);
  const out = p.stdout;
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : Number.NaN;
  };
  const errors = num(/errors: (\d+)/);
  const depth = /assertion violated .*\(at depth (\d+)\)/.exec(out);
  return {
    verdict: errors > 0 ? "violation" : errors === 0 ? "pass" : "?",
    states: num(/(\d+) states, stored/),
    transitions: num(/(\d+) transitions \(= stored\+matched\)/),
    searchS: num(/pan: elapsed time ([\d.e+-]+) seconds/),
    verdictS: a.wall + c.wall + p.wall,
    memMiB: p.memMiB,
    cexLength: depth ? Number(depth[1]) : null,
  };
}

export function measureSpin(progress: (msg: string) => void): SpinBench {
  const spinVersion = ensureSpin(progress);
  const dir = mkdtempSync(join(tmpdir(), "asidlab-spin-"));
  const rows: SpinRow[] = [];
  try {
    for (const p of PROBLEMS) {
      const builtin = join(ROOT, "scenarios", `${p.scenario}.yaml`);
      const two = join(dir, `${p.scenario}-2cpu.yaml`);
      writeFileSync(two, p.twoCpus(readFileSync(builtin, "utf8")));
      for (const cpus of [1, 2]) {
        for (const bug of [false, true]) {
          const form = bug ? `--kernel ${p.variant}` : "mainline";
          progress(`${p.scenario}, ${cpus} CPU${cpus > 1 ? "s" : ""}, ${form}: asidlab, then spin`);
          const a = asidlab(cpus === 1 ? builtin : two, bug ? p.variant : null, dir);
          const s = spin(p.promela, cpus, bug, dir);
          rows.push({ scenario: p.scenario, form, cpus, asidlab: a, spin: s });
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { spinVersion, bound: BOUND, rows };
}

const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
const fixed = (x: number, d: number) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d })
    : "-";
const rate = (states: number, s: number) => (s > 0 ? `${fixed(states / s / 1e6, 2)} M/s` : "-");

export function formatSpin(b: SpinBench): string {
  const header = [
    "scenario",
    "form",
    "cpus",
    "tool",
    "verdict",
    "states",
    "states/s",
    "MiB",
    "search s",
    "verdict s",
    "cex",
    "verdict time asidlab/spin",
  ];
  const rows: string[][] = [];
  for (const r of b.rows) {
    const ratio = r.asidlab.verdictS / r.spin.verdictS;
    for (const [tool, f] of [
      ["asidlab", r.asidlab],
      ["spin", r.spin],
    ] as const) {
      rows.push([
        tool === "asidlab" ? r.scenario : "",
        tool === "asidlab" ? r.form : "",
        tool === "asidlab" ? String(r.cpus) : "",
        tool,
        f.verdict,
        int(f.states),
        rate(f.states, f.searchS),
        fixed(f.memMiB, 0),
        fixed(f.searchS, 3),
        fixed(f.verdictS, 2),
        f.cexLength === null ? "" : String(f.cexLength),
        tool === "asidlab" ? `${fixed(ratio, 2)}x ${ratio <= 1 ? "(met)" : "(NOT met)"}` : "",
      ]);
    }
  }
  const all = [header, ...rows];
  const width = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const left = "lllll";
  const line = (r: string[]) =>
    r
      .map((c, i) => (i < left.length ? c.padEnd(width[i]) : c.padStart(width[i])))
      .join("  ")
      .trimEnd();
  const out = [
    `asidlab check beside SPIN (${b.spinVersion}); preemption bound ${b.bound}; one run per row, wall clock`,
    "states/s = states / the tool's own search time; verdict s = the whole command: node start (asidlab), spin -a + gcc -O2 + ./pan (SPIN)",
    "cex = counterexample length: asidlab's after shrinking, SPIN's depth of the error (not shortened: no -i)",
    line(header),
    width.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
  ];
  return `${out.join("\n")}\n`;
}
