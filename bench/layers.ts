// The layers of src/ as the imports draw them: `npm run layers` prints a
// Mermaid flowchart of which folder imports which (value imports solid, type
// imports only dashed; each arrow labelled with how many imports), the one
// in docs/architecture.md. test/layers.test.ts checks the rule with the same
// reader.

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The layers, bottom first; names on one line are peers (neither imports the other). */
export const LAYERS: readonly (readonly string[])[] = [
  ["machine"],
  ["hw"],
  ["kernel"],
  ["user"],
  ["engine"],
  ["scenario"],
  ["search", "run"],
  ["report", "vskernel"],
  ["cli"],
];

export interface Import {
  /** Source file, relative to src/ (e.g. "kernel/fpu.ts"). */
  from: string;
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
    )
    .sort();
}

/** Every relative import and re-export under `src`, in file order. */
export function readImports(src: string): { files: string[]; imports: Import[] } {
  const files = sourceFiles(src);
  const imports: Import[] = [];
  const re = /^(?:import|export)\s+(type\s+)?(?:[^"';]*?\s+from\s+)?"(\.[^"]+)";/gms;
  for (const file of files) {
    for (const m of readFileSync(file, "utf8").matchAll(re)) {
      const to = normalize(join(dirname(file), m[2].replace(/\.js$/, ".ts")));
      imports.push({ from: relative(src, file), to: relative(src, to), typeOnly: m[1] !== undefined });
    }
  }
  return { files: files.map((f) => relative(src, f)), imports };
}

export const folderOf = (file: string): string => file.split("/")[0];

/** The folder-level graph as a Mermaid flowchart, bottom layer last. */
export function mermaid(src: string): string {
  const { files, imports } = readImports(src);
  const count = new Map<string, number>();
  for (const f of files) count.set(folderOf(f), (count.get(folderOf(f)) ?? 0) + 1);
  const edges = new Map<string, { value: number; type: number }>();
  for (const i of imports) {
    const a = folderOf(i.from);
    const b = folderOf(i.to);
    if (a === b) continue;
    const e = edges.get(`${a} ${b}`) ?? { value: 0, type: 0 };
    if (i.typeOnly) e.type++;
    else e.value++;
    edges.set(`${a} ${b}`, e);
  }
  const lines = ["flowchart TD"];
  for (const names of [...LAYERS].reverse()) {
    for (const n of names) lines.push(`  ${n}["${n}/ (${count.get(n) ?? 0} files)"]`);
  }
  for (const [k, e] of [...edges].sort(([a], [b]) => a.localeCompare(b))) {
    const [a, b] = k.split(" ");
    lines.push(e.value > 0 ? `  ${a} -->|${e.value + e.type}| ${b}` : `  ${a} -.->|${e.type}| ${b}`);
  }
  return `${lines.join("\n")}\n`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const here = dirname(fileURLToPath(import.meta.url));
  // Run from dist/bench (built) or bench/ (tsx): src/ is beside the repository's bench/.
  const root = here.includes(`${join("dist", "bench")}`) ? join(here, "..", "..") : join(here, "..");
  process.stdout.write(mermaid(join(root, "src")));
}
