// `merge`: shard outputs of one sweep or of one check, joined.

import type { Command } from "commander";
import { mergeResults } from "../run/sweep.js";
import { InputError } from "../scenario/errors.js";
import { readInputFile, writeOutputFile } from "../scenario/read.js";
import { isCheckResult, mergeChecks } from "../search/merge.js";

function cmdMerge(files: string[], o: { out?: string }): number {
  const inputs = files.map((file) => ({ file, text: readInputFile(file) }));
  // Shards of one check (check --json) or of one sweep (NDJSON), never a mix.
  const checks = inputs.filter((i) => isCheckResult(i.text));
  if (checks.length > 0 && checks.length < inputs.length) {
    const other = inputs.find((i) => !isCheckResult(i.text))!;
    throw new InputError(
      `merge: ${checks[0].file} is a check result and ${other.file} is not: merge the shards of one check, or of one sweep`,
    );
  }
  const merged = checks.length > 0 ? mergeChecks(inputs) : mergeResults(inputs);
  if (o.out !== undefined) writeOutputFile(o.out, merged);
  else process.stdout.write(merged);
  // Merged check shards exit as check does: 1 when a shard found a violation.
  return checks.length > 0 && (JSON.parse(merged) as { verdict: string }).verdict === "violation" ? 1 : 0;
}

/** `merge FILES...`. */
export function registerMerge(cli: Command): void {
  cli
    .command("merge")
    .description(
      "join shard outputs: of one sweep, into exactly the bytes of the unsharded run; of one check (--json), into one result",
    )
    .argument("<files...>", "the shards' NDJSON files (sweep) or JSON results (check --shard k/n --json)")
    .option("--out <file>", "write here instead of stdout")
    .action((files: string[], o: { out?: string }) => {
      process.exitCode = cmdMerge(files, o);
    });
}
