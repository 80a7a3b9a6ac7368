// The layers import only downward: machine -> hw -> kernel -> user -> engine
// -> scenario -> search | run -> report -> cli (docs/architecture.md). A
// file may import its own folder and any folder below; value imports (not
// `import type`) form no cycle.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..", "src");
const LAYERS: readonly (readonly string[])[] = [
  ["machine"],
  ["hw"],
  ["kernel"],
  ["user"],
  ["engine"],
  ["scenario"],
  ["search", "run"],
  ["report"],
  ["cli"],
];
const level = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

function imports(): Import[] {
  const out: Import[] = [];
  const re = /^(?:import|export)\s+(type\s+)?(?:[^"';]*?\s+from\s+)?"(\.[^"]+)";/gms;
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(re)) {
      const to = normalize(join(dirname(file), m[2].replace(/\.js$/, ".ts")));
      out.push({ from: relative(SRC, file), to: relative(SRC, to), typeOnly: m[1] !== undefined });
    }
  }
  return out;
}

const folder = (f: string) => f.split("/")[0];

test("every source file sits in a known layer", () => {
  const unknown = sourceFiles(SRC)
    .map((f) => relative(SRC, f))
    .filter((f) => !level.has(folder(f)));
  assert.deepEqual(unknown, []);
});

test("no file imports from a layer above its own, or from a peer layer", () => {
  const up = imports().filter((i) => {
    const a = folder(i.from);
    const b = folder(i.to);
    return a !== b && (level.get(b) ?? 99) >= (level.get(a) ?? -1);
  });
  assert.deepEqual(
    up.map((i) => `${i.from} -> ${i.to}`),
    [],
  );
});

test("value imports form no cycle", () => {
  const edges = new Map<string, string[]>();
  for (const i of imports()) {
    if (i.typeOnly) continue;
    edges.set(i.from, [...(edges.get(i.from) ?? []), i.to]);
  }
  const state = new Map<string, 1 | 2>();
  const cycles: string[] = [];
  const visit = (f: string, stack: string[]) => {
    state.set(f, 1);
    for (const g of edges.get(f) ?? []) {
      if (state.get(g) === 1) cycles.push([...stack.slice(stack.indexOf(g)), f, g].join(" -> "));
      else if (state.get(g) === undefined) visit(g, [...stack, f]);
    }
    state.set(f, 2);
  };
  for (const f of edges.keys()) if (state.get(f) === undefined) visit(f, []);
  assert.deepEqual(cycles, []);
});
