// The screenshot of `asidlab view` in the docs (docs/img/view.png): check
// finds the free-at-mmput counterexample, view writes its page, headless
// Chromium (Debian's, as the tests use) opens it at a step and takes the
// picture. Run after a build: `node --import tsx bench/view-screenshot.ts [OUT.png] [STEP]`.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const out = resolve(process.argv[2] ?? "docs/img/view.png");
const step = process.argv[3] ?? "47";
const tmp = mkdtempSync(join(tmpdir(), "asidlab-shot-"));
// Run in the temporary directory with the README's relative names, so that the page shows them.
const main = resolve("dist/src/cli/main.js");
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [main, ...args], { encoding: "utf8", cwd: tmp });
try {
  const schedule = "out/check-exit-inflight.schedule";
  const page = join(tmp, "out/check-exit-inflight.html");
  const c = cli("check", "check-exit-inflight", "--kernel", "free-at-mmput", "--out", schedule);
  if (c.status !== 1) throw new Error(`check: expected a violation (exit 1), got ${c.status}: ${c.stderr}`);
  const v = cli("view", schedule);
  if (v.status !== 0) throw new Error(`view: exit ${v.status}: ${v.stderr}`);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless"],
  });
  const p = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await p.goto(`${pathToFileURL(page).href}#step=${step}`);
  await p.waitForSelector("#state table");
  await p.screenshot({ path: out });
  await browser.close();
  process.stdout.write(`wrote ${out}\n`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
