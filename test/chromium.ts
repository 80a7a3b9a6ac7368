// Headless Chromium for the browser tests (Debian's package, driven by
// playwright-core): a fresh profile per test, closed and removed after. Where
// Chromium is missing the test is skipped, or fails under
// ASIDLAB_REQUIRE_CHROMIUM (CI installs it).

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Run `use` with a browser context, or skip the test's browser half where there is no Chromium. */
export async function withChromium(
  t: TestContext,
  use: (ctx: BrowserContext) => Promise<void>,
): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.ASIDLAB_REQUIRE_CHROMIUM)
      assert.fail(`${CHROMIUM} is missing (apt-get install chromium)`);
    t.skip(`${CHROMIUM} is not installed (apt-get install chromium): the browser half is skipped`);
    return;
  }
  const profile = mkdtempSync(join(tmpdir(), "asidlab-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
  });
  try {
    await use(ctx);
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
