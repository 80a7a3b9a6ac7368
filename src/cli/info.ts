// `scenarios`, `metrics`, `schema`: what the model offers, listed.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { glossaryJson, glossaryText } from "../machine/glossary.js";
import { listingColumns } from "../report/text.js";
import { scenarioJsonSchema, sweepJsonSchema } from "../scenario/json-schema.js";
import { builtinScenarioDir } from "../scenario/load.js";

/** The built-in scenarios: name and the first comment line of each file. */
function cmdScenarios(): number {
  const dir = builtinScenarioDir();
  const files = readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();
  const rows = files.map((f): [string, string] => {
    const text = readFileSync(join(dir, f), "utf8");
    const first = text.split("\n").find((l) => l.startsWith("#"));
    return [f.replace(/\.(ya?ml|json)$/, ""), first ? first.replace(/^#\s*/, "") : ""];
  });
  // Wrapped at words to the terminal's width, or to 100 columns in a pipe or file.
  const width = process.stdout.isTTY === true ? (process.stdout.columns ?? 100) : 100;
  process.stdout.write(listingColumns(rows, width));
  return 0;
}

/** `scenarios`, `metrics` and `schema`, in that order. */
export function registerInfo(cli: Command): void {
  cli
    .command("scenarios")
    .description("list the built-in scenarios")
    .action(() => {
      process.exitCode = cmdScenarios();
    });
  cli
    .command("metrics")
    .description(
      "the metric glossary: every metric run --json emits, with unit, kernel counterpart and meaning",
    )
    .option("--json", "one JSON object: {format, metrics, per_cpu}")
    .action((o: { json?: boolean }) => {
      process.stdout.write(o.json ? glossaryJson() : glossaryText());
    });
  cli
    .command("schema")
    .description("print the scenario file's JSON Schema (for editors)")
    .option("--sweep", "the sweep file's instead")
    .action((o: { sweep?: boolean }) => {
      process.stdout.write(
        `${JSON.stringify(o.sweep ? sweepJsonSchema() : scenarioJsonSchema(), null, 2)}\n`,
      );
    });
}
