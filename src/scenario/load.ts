/**
 * Loading scenario files: YAML or JSON text -> validated `Scenario`, with every error reported as one
 * line `file:line:col: path: message` pointing at the offending node of the document.
 */
import { existsSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Document,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
} from "yaml";
import type { z } from "zod";
import { InputError } from "./errors.js";
import { tooDeep } from "./nesting.js";

/** The most items in any list, or keys in any mapping, of a scenario or sweep file (checked before toJS). */
export const COLLECTION_MAX = 1024;

import { readInputFile } from "./read.js";
import { type DocPath, type Scenario, ScenarioSchema } from "./schema.js";

export interface LoadedScenario {
  scenario: Scenario;
  /** the file name as given, used in every located message */
  file: string;
  /** `file:line:col` of the node at `path`, or of its nearest ancestor that exists in the file */
  locate(path: DocPath): string;
  source: string;
}

const EXTENSIONS = [".yaml", ".yml", ".json"];

export function loadScenarioFile(file: string): LoadedScenario {
  if (!EXTENSIONS.includes(extname(file).toLowerCase())) {
    throw new InputError(`${file}: not a scenario file (expected a .yaml, .yml or .json file)`);
  }
  return loadScenarioString(readInputFile(file), file);
}

/** Parses and validates scenario text; `file` names it in messages, and a `.json` name means strict JSON. */
export function loadScenarioString(source: string, file: string): LoadedScenario {
  source = source.replace(/^\uFEFF/, "");
  const { data, locate } = loadLocated(source, file, ScenarioSchema, {
    what: "scenario",
    empty: "a mapping with at least 'name' and 'processes'",
    keys: "name, processes, ...",
  });
  return { scenario: data, file, source, locate };
}

/** A validated document and where its nodes are. */
export interface Located<T> {
  data: T;
  /** `file:line:col` of the node at `path`, or of its nearest ancestor that exists in the file */
  locate(path: DocPath): string;
  /** `file:line:col` of the key `key` of the mapping at `path` */
  locateKey(path: DocPath, key: string): string;
}

/**
 * YAML or JSON text validated by a zod schema whose top level is a mapping, every error one line
 * `file:line:col: path: message`. `kind` words the messages: what the file is, what an empty one
 * lacks, and a few of its keys.
 */
export function loadLocated<S extends z.ZodType>(
  source: string,
  file: string,
  schema: S,
  kind: { what: string; empty: string; keys: string },
): Located<z.output<S>> {
  const json = extname(file).toLowerCase() === ".json";
  // Before anything recursive sees the text (the YAML parser, zod, the compiler).
  const deep = tooDeep(source);
  if (deep !== null) {
    const before = source.slice(0, deep.offset);
    const line = before.split("\n").length;
    const col = deep.offset - (before.lastIndexOf("\n") + 1) + 1;
    throw new InputError(`${file}:${line}:${col}: ${deep.message}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, schema: json ? "json" : "core" });
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const fail = (offset: number, message: string) => new InputError(`${at(offset)}: ${message}`);

  const [syntaxError] = doc.errors;
  if (syntaxError) {
    const message =
      syntaxError.code === "MULTIPLE_DOCS"
        ? `a ${kind.what} file holds one document, but a second one starts here`
        : firstLine(syntaxError.message);
    throw fail(syntaxError.pos[0], message);
  }
  if (json) checkStrictJson(source, fail);
  const top = doc.contents;
  if (top === null) throw fail(0, `empty ${kind.what} (expected ${kind.empty})`);
  if (!isMap(top)) throw fail(top.range?.[0] ?? 0, `the top level must be a mapping (${kind.keys})`);

  // On the parsed tree, before toJS materialises it: `__proto__` as a key would set the object's
  // prototype in toJS and vanish from the data; a list or mapping wider than COLLECTION_MAX is
  // refused where it starts (no list in either file kind allows more; the schema's own, smaller
  // maxima are said by zod afterwards).
  let bad: { offset: number; message: string } | null = null;
  visit(doc, {
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key)) {
        // `? [a, b]: v` or `{a: 1}: v`: toJS would stringify the key (and yaml warns on stderr)
        const at = (pair.key as { range?: [number, number, number] }).range?.[0] ?? 0;
        bad = { offset: at, message: "a key must be a name, not a list or mapping" };
        return visit.BREAK;
      }
      if (isScalar(pair.key) && pair.key.value === "__proto__") {
        bad = { offset: startOf(pair.key) ?? 0, message: "'__proto__' is not allowed as a key" };
        return visit.BREAK;
      }
    },
    Collection(_, node) {
      if (node.items.length > COLLECTION_MAX) {
        const what = isSeq(node) ? "a list of" : "a mapping of";
        const unit = isSeq(node) ? "items" : "keys";
        bad = {
          offset: node.range?.[0] ?? 0,
          message: `${what} ${node.items.length} ${unit}; at most ${COLLECTION_MAX} in any list or mapping`,
        };
        return visit.BREAK;
      }
    },
  });
  if (bad !== null) {
    const b = bad as { offset: number; message: string };
    throw fail(b.offset, b.message);
  }

  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    throw fail(0, firstLine(err instanceof Error ? err.message : String(err)));
  }
  const result = schema.safeParse(data);
  if (!result.success) {
    const { path, key, message } = explain(pickIssue(result.error.issues, doc), doc);
    const where = key === undefined ? offsetOf(doc, path) : keyOffsetOf(doc, path, key);
    const shown = formatPath(path);
    throw fail(where, shown ? `${shown}: ${message}` : message);
  }
  return {
    data: result.data,
    locate: (path) => at(offsetOf(doc, path)),
    locateKey: (path, key) => at(keyOffsetOf(doc, path, key)),
  };
}

/** `<package root>/scenarios`, found from this module's location (src/ under tsx, dist/src/ once built). */
export function builtinScenarioDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return join(dir, "scenarios");
}

/** `processes[0].program.do[2]`, `machine.cpus`, `costs["odd key"]`. */
export function formatPath(path: DocPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// zod issues -> what to say and where

interface Explained {
  /** the node the message is about */
  path: DocPath;
  /** point at this key of the mapping at `path` rather than at the mapping */
  key?: string;
  message: string;
}

function explain(issue: z.core.$ZodIssue, doc: Document, prefix: DocPath = []): Explained {
  const path = [...prefix, ...docPath(issue.path)];
  if (isMissingKey(issue, doc, prefix)) {
    return { path: path.slice(0, -1), message: `missing required key '${path[path.length - 1]}'` };
  }
  switch (issue.code) {
    case "invalid_union": {
      // A program is a list or a mapping: report the branch that matches the value's shape.
      const branch = matchingBranch(issue.errors);
      return branch ? explain(branch, doc, path) : { path, message: issue.message };
    }
    case "unrecognized_keys":
      return { path, key: issue.keys[0], message: issue.message };
    case "invalid_key": {
      const key = String(path[path.length - 1]);
      const why = issue.issues[0]?.message ?? issue.message;
      return { path: path.slice(0, -1), key, message: `invalid key '${key}': ${why}` };
    }
    default:
      return { path, message: issue.message };
  }
}

/**
 * The first issue, except that a missing key next to an unknown one is most likely a misspelling:
 * then the unknown key is the one to report.
 */
function pickIssue(issues: z.core.$ZodIssue[], doc: Document): z.core.$ZodIssue {
  const [first] = issues;
  if (!isMissingKey(first, doc)) return first;
  const parent = JSON.stringify(first.path.slice(0, -1));
  return issues.find((i) => i.code === "unrecognized_keys" && JSON.stringify(i.path) === parent) ?? first;
}

/** A required key that is not in the file: zod reports it as a wrong type at a node that does not exist. */
function isMissingKey(issue: z.core.$ZodIssue, doc: Document, prefix: DocPath = []): boolean {
  const path = [...prefix, ...docPath(issue.path)];
  return (
    (issue.code === "invalid_type" || issue.code === "invalid_union") && path.length > 0 && !exists(doc, path)
  );
}

function docPath(path: PropertyKey[]): DocPath {
  return path.map((seg) => (typeof seg === "number" ? seg : String(seg)));
}

/** The one union branch that got past the type check at the union's own node, if exactly one did. */
function matchingBranch(branches: z.core.$ZodIssue[][]): z.core.$ZodIssue | undefined {
  const rest = branches.filter(
    ([first]) => first && !(first.code === "invalid_type" && first.path.length === 0),
  );
  return rest.length === 1 ? rest[0][0] : undefined;
}

// ---------------------------------------------------------------------------------------------
// document paths -> source offsets

interface Walk {
  node: unknown;
  /** offset of the deepest node reached */
  offset: number;
  /** whether the whole path exists */
  complete: boolean;
}

function walk(doc: Document, path: DocPath): Walk {
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? 0;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return { node, offset, complete: false };
      // an empty value (`machine:` and nothing after it) has no text of its own: point at its key
      offset = startOf(pair.value) ?? startOf(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      node = node.items[seg];
      offset = startOf(node) ?? offset;
    } else {
      return { node, offset, complete: false };
    }
  }
  return { node, offset, complete: true };
}

function offsetOf(doc: Document, path: DocPath): number {
  return walk(doc, path).offset;
}

function exists(doc: Document, path: DocPath): boolean {
  return walk(doc, path).complete;
}

function keyOffsetOf(doc: Document, path: DocPath, key: string): number {
  const { node, offset, complete } = walk(doc, path);
  if (!complete || !isMap(node)) return offset;
  const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
  return startOf(pair?.key) ?? offset;
}

/** Start offset of a node that has source text. */
function startOf(node: unknown): number | undefined {
  if (!isNode(node) || !node.range) return undefined;
  const [start, end] = node.range;
  return end > start ? start : undefined;
}

// ---------------------------------------------------------------------------------------------
// small helpers

function firstLine(message: string): string {
  return message.split("\n", 1)[0].trim();
}

/** YAML accepts a little more than JSON (trailing commas, comments): a `.json` file must be JSON. */
function checkStrictJson(source: string, fail: (offset: number, message: string) => InputError): void {
  try {
    JSON.parse(source);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const position = /at position (\d+)/.exec(message);
    const offset = position ? Number(position[1]) : /end of JSON/.test(message) ? source.length : 0;
    const reason = firstLine(message.split(/ in JSON at |, "| is not valid JSON/)[0]);
    throw fail(offset, `invalid JSON: ${reason}`);
  }
}
