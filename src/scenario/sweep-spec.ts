/**
 * The sweep file (`asidlab sweep FILE`): which scenarios, which varied values, which policies and how
 * many seeds. YAML or JSON, validated by zod, every error located like a scenario file's:
 *
 *   name: lifetimes
 *   scenarios: [thread-pool, fork-exec-churn]     # built-in names, or paths relative to this file
 *   seeds: 3                                      # per combination, from each scenario's own seed
 *   vary: { machine.cpus: [2, 4] }                # paths in the scenario, or `kernel`
 *   policies: { pasid_lifetime: [mm, unbind] }    # policy keys and values
 *   metrics: [pasid_allocs, cycles_total]         # optional: the metrics each result line keeps
 *   max_steps: 10000000                           # optional: a bound per run
 *
 * Cells: scenarios x vary x policies x seeds, in that order (first key outermost, seeds innermost).
 */
import { extname } from "node:path";
import { z } from "zod";
import { InputError } from "./errors.js";
import { type Located, loadLocated } from "./load.js";
import { readInputFile } from "./read.js";
import { POLICY_VALUES, type PolicyKey } from "./schema.js";

/** The most items in a sweep file's lists: a cross product of more is not a sweep that ends. */
const SWEEP_LIST_MAX = 256;

const nonEmpty = <T extends z.ZodType>(item: T, what: string) =>
  z
    .array(item)
    .min(1, { error: `no ${what}: an empty cross product (give at least one)` })
    .max(SWEEP_LIST_MAX);

const value = z.union([z.string().min(1), z.number(), z.boolean()]);

const policyShape = Object.fromEntries(
  Object.entries(POLICY_VALUES).map(([k, vals]) => [
    k,
    nonEmpty(z.enum(vals as [string, ...string[]]), `values for ${k}`).optional(),
  ]),
) as Record<PolicyKey, z.ZodOptional<z.ZodArray<z.ZodEnum>>>;

const known = (keys: string[]) => `(expected one of: ${keys.join(", ")})`;

export const SweepSpecSchema = z.strictObject(
  {
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: "letters, digits, '.', '_' or '-' (1 to 64)" }),
    scenarios: nonEmpty(z.string().min(1), "scenarios"),
    seeds: z.int().min(1).max(10_000).default(1),
    vary: z.record(z.string(), nonEmpty(value, "values")).default({}),
    policies: z
      .strictObject(policyShape, {
        error: (iss) =>
          iss.code === "unrecognized_keys"
            ? `unknown policy '${iss.keys[0]}' ${known(Object.keys(POLICY_VALUES))}`
            : undefined,
      })
      .default({}),
    metrics: z.array(z.string().min(1)).min(1).max(SWEEP_LIST_MAX).optional(),
    max_steps: z.int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  },
  {
    error: (iss) =>
      iss.code === "unrecognized_keys"
        ? `unknown key '${iss.keys[0]}' ${known(["name", "scenarios", "seeds", "vary", "policies", "metrics", "max_steps"])}`
        : undefined,
  },
);
export type SweepSpec = z.output<typeof SweepSpecSchema>;

export interface LoadedSweep extends Located<SweepSpec> {
  file: string;
  source: string;
}

export function loadSweepFile(file: string): LoadedSweep {
  if (![".yaml", ".yml", ".json"].includes(extname(file).toLowerCase()))
    throw new InputError(`${file}: not a sweep file (expected a .yaml, .yml or .json file)`);
  return loadSweepString(readInputFile(file), file);
}

export function loadSweepString(source: string, file: string): LoadedSweep {
  source = source.replace(/^\uFEFF/, "");
  const l = loadLocated(source, file, SweepSpecSchema, {
    what: "sweep",
    empty: "a mapping with at least 'name' and 'scenarios'",
    keys: "name, scenarios, seeds, vary, policies, ...",
  });
  return { ...l, file, source };
}
