// `report` (the HTML page from what compare/sweep/demo wrote) and `demo` (the seed debates, written and reported).

import { join } from "node:path";
import type { Command } from "commander";
import { writeOutputFile } from "../scenario/read.js";
import { intArg } from "./args.js";

async function cmdReport(dir: string, o: { html: string }): Promise<number> {
  const { loadManifest, renderHtml } = await import("../report/html.js");
  writeOutputFile(o.html, renderHtml(dir, loadManifest(dir), o.html));
  return 0;
}

async function cmdDemo(dir: string, o: { html?: string; seeds?: number }): Promise<number> {
  const { writeDemo } = await import("../report/demo.js");
  const { renderHtml } = await import("../report/html.js");
  const html = o.html ?? join(dir, "report.html");
  const manifest = await writeDemo(dir, {
    seeds: o.seeds,
    log: (m) => process.stderr.write(`demo: ${m}\n`),
  });
  writeOutputFile(html, renderHtml(dir, manifest, html));
  process.stderr.write(`demo: wrote ${html}\n`);
  return 0;
}

/** `report DIR` and `demo [DIR]`, in that order. */
export function registerReport(cli: Command): void {
  cli
    .command("report")
    .description(
      "one self-contained HTML page (tables, plots, links to traces) from what compare/sweep/demo wrote",
    )
    .argument("<dir>", "a directory written by compare --plot, sweep --out or demo")
    .requiredOption("--html <file>", "the page to write")
    .action(async (dir: string, o: { html: string }) => {
      process.exitCode = await cmdReport(dir, o);
    });
  cli
    .command("demo")
    .description("the seed debates: run each section's comparisons, write plots, traces and report.html")
    .argument("[dir]", "where to write", "out/demo")
    .option("--html <file>", "the page (default DIR/report.html)")
    .option("--seeds <n>", "seeds per combination (default 5)", intArg("--seeds", 1, 1000))
    .action(async (dir: string, o: { html?: string; seeds?: number }) => {
      process.exitCode = await cmdDemo(dir, o);
    });
}
