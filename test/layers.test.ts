// The layers import only downward: machine -> hw -> kernel -> user -> engine
// -> scenario -> search | run -> report -> cli (docs/architecture.md). A
// file may import its own folder and any folder below; value imports (not
// `import type`) form no cycle.

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { folderOf as folder, LAYERS, readImports } from "../bench/layers.js";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..", "src");
const level = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));
const imports = () => readImports(SRC).imports;

test("every source file sits in a known layer", () => {
  const unknown = readImports(SRC).files.filter((f) => !level.has(folder(f)));
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
