// `npm run fuzz [-- --cases N --seed S --cli M]`: the fuzzing campaign of
// issue #18 at scale (bench/fuzz-core.ts says what a case is and what counts
// as a finding). N cases in-process (default 100,000), then M of them through
// the CLI (default 200). Prints the figures; each finding's input is kept
// under out/fuzz/ to reproduce. Exit 1 if there was any finding.

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import {
  CASE_BUDGET_MS,
  type CaseResult,
  cliCase,
  type Outcome,
  runCase,
  scenarioFile,
} from "./fuzz-core.js";

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) {
    process.stderr.write(`fuzz: ${name} takes a whole number\n`);
    process.exit(2);
  }
  return v;
}

const cases = flag("--cases", 100_000);
const seed = flag("--seed", 18);
const cliCases = flag("--cli", 200);
/** --cli-only: draw the same cases, but only run the CLI's picks (after a change to the CLI alone). */
const cliOnly = process.argv.includes("--cli-only");
const outDir = join("out", "fuzz");
mkdirSync(outDir, { recursive: true });

const counts: Record<Outcome, number> = { accepted: 0, refused: 0, "internal-error": 0, overshoot: 0 };
const findings: { n: number; r: CaseResult; file: string }[] = [];
let slowest = 0;
const BATCH = 1000;
const started = performance.now();
const cliPicks: { file: string; text: string }[] = [];
for (let b = 0; b * BATCH < cases; b++) {
  const batch = fc.sample(scenarioFile, {
    seed: seed * 1_000_003 + b,
    numRuns: Math.min(BATCH, cases - b * BATCH),
  });
  batch.forEach(({ file, text }, i) => {
    const n = b * BATCH + i;
    if (cliOnly) {
      if (cliPicks.length < cliCases && n % Math.max(1, Math.floor(cases / Math.max(1, cliCases))) === 0)
        cliPicks.push({ file, text });
      return;
    }
    const r = runCase(file, text);
    counts[r.outcome]++;
    slowest = Math.max(slowest, r.ms);
    if (r.outcome === "internal-error" || r.outcome === "overshoot") {
      const keep = join(outDir, `case-${n}${file.endsWith(".json") ? ".json" : ".yaml"}`);
      writeFileSync(keep, text);
      findings.push({ n, r, file: keep });
    }
    if (cliPicks.length < cliCases && n % Math.max(1, Math.floor(cases / Math.max(1, cliCases))) === 0)
      cliPicks.push({ file, text });
  });
  if (process.stderr.isTTY)
    process.stderr.write(`\r\x1b[Kfuzz: ${Math.min(cases, (b + 1) * BATCH)}/${cases} cases`);
}
if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
const inProcessS = (performance.now() - started) / 1000;

const main = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
let cliProblems = 0;
cliPicks.forEach(({ file, text }, i) => {
  const path = join(outDir, `cli-${i}${file.endsWith(".json") ? ".json" : ".yaml"}`);
  const p = cliCase([main], path, text);
  if (p !== null) {
    cliProblems++;
    findings.push({ n: -1, r: { outcome: "internal-error", detail: `CLI: ${p}`, ms: 0 }, file: path });
  }
});

const rows: [string, string][] = [
  ["cases (in-process: load, compile, run, check)", cases.toLocaleString("en-US")],
  ["  accepted (ran and checked within budget)", counts.accepted.toLocaleString("en-US")],
  ["  refused with one located line", counts.refused.toLocaleString("en-US")],
  ["  internal errors (crashes)", String(counts["internal-error"])],
  [`  budget overshoots (> 10% over ${CASE_BUDGET_MS / 1000} s)`, String(counts.overshoot)],
  ["  slowest case", `${Math.round(slowest)} ms`],
  ["  time", `${inProcessS.toFixed(0)} s`],
  ["CLI cases (run and check, exit code, stderr, JSON)", String(cliPicks.length)],
  ["  rule broken", String(cliProblems)],
];
for (const [k, v] of rows) process.stdout.write(`${k.padEnd(50)} ${v}\n`);
for (const f of findings.slice(0, 20))
  process.stdout.write(`finding: ${f.file}: ${f.r.outcome}: ${f.r.detail}\n`);
process.exitCode = findings.length === 0 ? 0 : 1;
