// `view`: the counterexample explorer page, written or served.

import type { Command } from "commander";
import { explainSchedule } from "../report/explain.js";
import { InputError } from "../scenario/errors.js";
import { writeOutputFile } from "../scenario/read.js";
import { intArg } from "./args.js";
import { loadCounterexample } from "./counterexample.js";

interface ViewFlags {
  scenario?: string;
  out?: string;
  serve?: boolean;
  port?: number;
}

/** `view FILE`: the counterexample explorer, one self-contained HTML page. */
async function cmdView(file: string, o: ViewFlags): Promise<number> {
  const { cs, props, sf } = loadCounterexample(file, o.scenario);
  const { viewHtml } = await import("../report/view.js");
  const ex = explainSchedule(cs, props, sf.schedule);
  const html = viewHtml(ex, file);
  const what = `${cs.name}, ${ex.steps.length} steps, ${ex.property} at step ${ex.violation}`;
  if (o.serve !== true || o.out !== undefined) {
    const out = o.out ?? `${file.replace(/\.schedule$/, "")}.html`;
    writeOutputFile(out, html);
    process.stdout.write(`wrote ${out}: ${what}\n`);
  }
  if (o.serve === true) {
    // The same page over HTTP, on the loopback interface only; it stays up until interrupted.
    const { createServer } = await import("node:http");
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split(/[?#]/)[0];
      if (req.method !== "GET" || (path !== "/" && path !== "/index.html")) {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
        return;
      }
      res
        .writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
        .end(html);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) =>
        reject(new InputError(`--port ${o.port ?? 0}: cannot listen on 127.0.0.1: ${err.message}`)),
      );
      server.listen(o.port ?? 0, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    const port = typeof addr === "object" && addr !== null ? addr.port : o.port;
    process.stdout.write(`serving http://127.0.0.1:${port}/ : ${what} (Ctrl-C to stop)\n`);
  }
  return 0;
}

/** `view SCHEDULE`. */
export function registerView(cli: Command): void {
  cli
    .command("view")
    .description(
      "explore a counterexample in the browser: one self-contained HTML page (timeline per CPU and device, state as kernel structs, stepping, filters)",
    )
    .argument("<schedule>", "a .schedule file written by check")
    .option("--scenario <file>", "the scenario, if not where the schedule says")
    .option("--out <page>", "the page to write (default: the schedule's name with .html)")
    .option(
      "--serve",
      "serve the page on http://127.0.0.1 (loopback only) until interrupted, instead of writing it (unless --out)",
    )
    .option("--port <n>", "the port for --serve (default: any free one)", intArg("--port", 0, 65535))
    .action(async (file: string, o: ViewFlags) => {
      process.exitCode = await cmdView(file, o);
    });
}
