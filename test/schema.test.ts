// The JSON Schemas `asidlab schema` (and `--sweep`) print, as an editor uses
// them: every built-in scenario and sweep validates; a misspelt kernel
// variant, policy value or metric does not. Validated with ajv (draft
// 2020-12), and with the small validator below, which knows every keyword the
// schemas use and fails on any other (so a new keyword is looked at).

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";
import { GLOSSARY } from "../src/machine/glossary.js";
import { scenarioJsonSchema, sweepJsonSchema } from "../src/scenario/json-schema.js";
import { cli, REPO_ROOT } from "./helpers.js";

type S = Record<string, unknown>;

const ANNOTATIONS = new Set(["$schema", "$id", "$defs", "title", "description", "default"]);

/** Errors of `v` against `s` (a subset of draft 2020-12: the keywords these schemas use). */
function validate(root: S, s: S, v: unknown, at = "$"): string[] {
  const errs: string[] = [];
  for (const [k, x] of Object.entries(s)) {
    if (ANNOTATIONS.has(k)) continue;
    const o = v as Record<string, unknown>;
    switch (k) {
      case "$ref": {
        const name = /^#\/\$defs\/(.+)$/.exec(x as string)?.[1];
        const target = name === undefined ? undefined : (root.$defs as Record<string, S>)[name];
        if (target === undefined) throw new Error(`unresolvable $ref ${x}`);
        errs.push(...validate(root, target, v, at));
        break;
      }
      case "type": {
        const types = Array.isArray(x) ? x : [x];
        const ok = types.some((t) =>
          t === "integer"
            ? Number.isInteger(v)
            : t === "array"
              ? Array.isArray(v)
              : t === "object"
                ? typeof v === "object" && v !== null && !Array.isArray(v)
                : t === "null"
                  ? v === null
                  : typeof v === t,
        );
        if (!ok) errs.push(`${at}: not ${types.join("|")}`);
        break;
      }
      case "enum":
        if (!(x as unknown[]).includes(v)) errs.push(`${at}: ${JSON.stringify(v)} not in enum`);
        break;
      case "const":
        if (v !== x) errs.push(`${at}: not ${JSON.stringify(x)}`);
        break;
      case "anyOf":
        if (!(x as S[]).some((sub) => validate(root, sub, v, at).length === 0))
          errs.push(`${at}: no anyOf matches`);
        break;
      case "properties":
        if (typeof v === "object" && v !== null && !Array.isArray(v))
          for (const [p, sub] of Object.entries(x as Record<string, S>))
            if (Object.hasOwn(o, p)) errs.push(...validate(root, sub, o[p], `${at}.${p}`));
        break;
      case "required":
        if (typeof v === "object" && v !== null)
          for (const p of x as string[]) if (!Object.hasOwn(o, p)) errs.push(`${at}: missing ${p}`);
        break;
      case "additionalProperties":
        if (typeof v === "object" && v !== null && !Array.isArray(v)) {
          const known = (s.properties ?? {}) as S;
          for (const [p, pv] of Object.entries(o)) {
            if (Object.hasOwn(known, p)) continue;
            if (x === false) errs.push(`${at}: unknown key ${p}`);
            else errs.push(...validate(root, x as S, pv, `${at}.${p}`));
          }
        }
        break;
      case "propertyNames":
        if (typeof v === "object" && v !== null)
          for (const p of Object.keys(o)) errs.push(...validate(root, x as S, p, `${at}[${p}]`));
        break;
      case "items":
        if (Array.isArray(v))
          for (const [i, e] of v.entries()) errs.push(...validate(root, x as S, e, `${at}[${i}]`));
        break;
      case "minItems":
        if (Array.isArray(v) && v.length < (x as number)) errs.push(`${at}: fewer than ${x} items`);
        break;
      case "maxItems":
        if (Array.isArray(v) && v.length > (x as number)) errs.push(`${at}: more than ${x} items`);
        break;
      case "minimum":
        if (typeof v === "number" && v < (x as number)) errs.push(`${at}: below ${x}`);
        break;
      case "maximum":
        if (typeof v === "number" && v > (x as number)) errs.push(`${at}: above ${x}`);
        break;
      case "minLength":
        if (typeof v === "string" && [...v].length < (x as number)) errs.push(`${at}: shorter than ${x}`);
        break;
      case "maxLength":
        if (typeof v === "string" && [...v].length > (x as number)) errs.push(`${at}: longer than ${x}`);
        break;
      case "pattern":
        if (typeof v === "string" && !new RegExp(x as string, "u").test(v)) errs.push(`${at}: not /${x}/`);
        break;
      default:
        throw new Error(`the test's validator does not know the keyword ${k}: teach it`);
    }
  }
  return errs;
}

/** ajv (draft 2020-12): the validator editors and CI tools use. */
function ajvFor(schema: object): (v: unknown) => boolean {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  return ajv.compile(schema);
}

const SCENARIOS = join(REPO_ROOT, "scenarios");
const builtins = readdirSync(SCENARIOS)
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => ({ f, doc: parse(readFileSync(join(SCENARIOS, f), "utf8")) as S }));

describe("JSON Schema", () => {
  const scenario = scenarioJsonSchema() as S;
  const sweep = sweepJsonSchema() as S;

  test("an $id, a title, named $defs, a description on every top-level, machine, policy and op key", () => {
    for (const s of [scenario, sweep]) {
      assert.match(s.$id as string, /^urn:asidlab:schema:\w+:v1$/);
      assert.ok((s.title as string).length > 0);
      for (const [k, p] of Object.entries(s.properties as Record<string, S>))
        assert.ok(typeof p.description === "string" && p.description.length > 0, `${s.title}: ${k}`);
    }
    const text = JSON.stringify(scenario);
    assert.doesNotMatch(text, /__schema/);
    assert.deepEqual(Object.keys(scenario.$defs as object).sort(), ["ops", "program"]);
    const props = scenario.properties as Record<string, S>;
    for (const key of ["machine", "policy"])
      for (const [k, p] of Object.entries((props[key] as { properties: Record<string, S> }).properties))
        assert.ok(typeof p.description === "string", `${key}.${k}`);
    const op = ((scenario.$defs as Record<string, S>).ops.items as { properties: Record<string, S> })
      .properties;
    for (const [k, p] of Object.entries(op)) assert.ok(typeof p.description === "string", `op ${k}`);
  });

  test("every built-in scenario validates; a misspelt kernel variant or policy value does not", async () => {
    const check = ajvFor(scenario);
    assert.ok(builtins.length > 10);
    for (const { f, doc } of builtins) {
      assert.deepEqual(validate(scenario, scenario, doc), [], f);
      assert.equal(check(doc), true, `ajv: ${f}`);
    }
    const base = builtins.find((b) => b.f === "exit-with-inflight.yaml")!.doc;
    const typo = { ...base, kernel: ["free-at-mmputt"] };
    assert.ok(validate(scenario, scenario, typo).some((e) => /kernel\[0\].*not in enum/.test(e)));
    assert.equal(check(typo), false, "ajv: the typo");
    const badPolicy = { ...base, policy: { pasid_lifetime: "forever" } };
    assert.ok(validate(scenario, scenario, badPolicy).some((e) => /pasid_lifetime/.test(e)));
    // And the CLI rejects the same typo: the schema and the engine agree.
    const r = cli("run", "exit-with-inflight", "--kernel", "free-at-mmputt");
    assert.equal(r.status, 2);
  });

  test("schema --sweep: the built-in sweeps validate; an unknown metric does not", async () => {
    const r = cli("schema", "--sweep");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), sweep);
    const dir = join(REPO_ROOT, "sweeps");
    const check = ajvFor(sweep);
    for (const f of readdirSync(dir).filter((x) => /\.ya?ml$/.test(x))) {
      const doc = parse(readFileSync(join(dir, f), "utf8"));
      assert.deepEqual(validate(sweep, sweep, doc), [], f);
      assert.equal(check(doc), true, `ajv: ${f}`);
      const bad = { ...doc, metrics: [GLOSSARY[0].name, "pasid_alocs"] };
      assert.ok(
        validate(sweep, sweep, bad).some((e) => /metrics\[1\]/.test(e)),
        f,
      );
      assert.equal(check(bad), false, `ajv: ${f} with a misspelt metric`);
    }
  });
});
