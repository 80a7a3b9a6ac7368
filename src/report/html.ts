// `asidlab report DIR --html FILE`: one self-contained HTML page from what
// compare, sweep and demo wrote into DIR. Styles and plots are inline (the
// plots' SVG text, without namespace URLs); the only links are relative ones
// to files beside it (plot specs and PNGs, traces), so opening the page makes
// no network request at all.
//
// DIR/report.json (written by `demo`) says which sections there are, their
// readings, comparisons, plots and traces. Without it, each NAME.compare.json
// is a section (with the plots NAME-*.svg), each sweep NDJSON another (its
// cells summarised over seeds), and traces/*.json are linked at the end.

import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, relative, sep } from "node:path";
import { metricDef, metricTitle } from "../machine/glossary.js";
import { CONTRACT_METRICS } from "../machine/metrics.js";
import { type CompareRow, type RunGroup, summarise } from "../run/compare.js";
import { InputError } from "../scenario/errors.js";
import { readInputFile } from "../scenario/read.js";
import { baselineText, chooseMetrics, statCell } from "./compare-report.js";

export interface ReportSection {
  id: string;
  title: string;
  /** What the section asks, in a sentence. */
  question?: string;
  /** Sentences generated from the figures. */
  reading: string[];
  /** NAME.compare.json files in DIR. */
  comparisons: string[];
  /** Plot stems in DIR (NAME.svg, NAME.png, NAME.vl.json). */
  plots: string[];
  /** Trace files, relative to DIR. */
  traces: string[];
  /** Sweep NDJSON files in DIR. */
  sweeps?: string[];
}

export interface ReportManifest {
  title: string;
  intro: string[];
  sections: ReportSection[];
}

export const MANIFEST = "report.json";

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Prose with `code` spans set as code, not as literal backticks. */
/** The seed threads (docs/seeds.md): subject, date and one line on what each said; "Seed NNN" in prose links there. */
const SEEDS: Record<string, { subject: string; said: string }> = {
  "000": {
    subject: "[PATCH 5/8] x86/mmu: Add mm-based PASID refcounting",
    said: "Lutomirski, Sep 2021: 'good' (lazy #GP fixup, once per task) vs 'perfect' (resync at switch, or IPI + task_work to every task of the mm); the fixup's preemption race",
  },
  "001": {
    subject: "[PATCH 15/24] x86/mm: Allow flushing for future ASID switches",
    said: "Lutomirski, Nov 2017: PTI's per-CPU mask of user ASIDs to flush on the way out to user space",
  },
  "002": {
    subject: "[PATCH 5/7] x86/mmu: Allocate/free PASID",
    said: "Gleixner, Apr 2020: the PASID lives in the mm, allocated on first bind; freeing it while a device may still use it is broken",
  },
  "003": {
    subject: "[PATCH 5/8] x86/mmu: Add mm-based PASID refcounting",
    said: "Fenghua Yu, Sep 2021: PASID lifetimes (static, unbind, mm exit, per-task refcounts); allocate on first use, free at mm exit",
  },
  "004": {
    subject: "[PATCH 4/8] x86/traps: Demand-populate PASID MSR via #GP",
    said: "Hansen, Sep 2021: XSTATE helpers that 'update' or 'replace' a component, and what each costs for AMX",
  },
};

/** "Seed 000" -> a link to the seed's entry at the end of the page (the page links nowhere else). */
function seedLinks(html: string): string {
  return html.replace(
    /\b(Seed|seed) (00[0-4])\b/g,
    (all, _w: string, n: string) =>
      `<a class="seed" href="#seed-${n}" title="${esc(SEEDS[n].said)}">${all}</a>`,
  );
}

/** The seeds the page names, each with its thread's subject and what it said (find it on lore.kernel.org by subject). */
function seedAppendix(page: string): string {
  const named = Object.keys(SEEDS).filter((n) => page.includes(`href="#seed-${n}"`));
  if (named.length === 0) return "";
  const items = named.map(
    (n) =>
      `<li id="seed-${n}"><strong>Seed ${n}</strong>: <em>${esc(SEEDS[n].subject)}</em> (LKML). ${esc(SEEDS[n].said)}.</li>`,
  );
  return `<aside id="seeds"><h2>The seed threads</h2><ul>${items.join("")}</ul></aside>`;
}

const prose = (s: string) => seedLinks(esc(s).replace(/`([^`]+)`/g, "<code>$1</code>"));

function readText(path: string): string {
  return readInputFile(path);
}

function readJson<T>(path: string): T {
  const text = readText(path);
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new InputError(`${path}: not JSON: ${err instanceof Error ? err.message.split("\n")[0] : err}`);
  }
}

interface CompareDoc {
  scenario: string;
  shown?: string[];
  rows: CompareRow[];
}

/** The sections when DIR has no report.json: one per comparison and per sweep, then the traces. */
export function discover(dir: string): ReportManifest {
  if (!existsSync(dir)) throw new InputError(`${dir}: no such directory`);
  if (!statSync(dir).isDirectory())
    throw new InputError(
      `${dir}: not a directory (expected one written by compare --plot, sweep --out or demo)`,
    );
  const files = readdirSync(dir).sort();
  const sections: ReportSection[] = [];
  for (const f of files.filter((f) => f.endsWith(".compare.json"))) {
    const name = f.slice(0, -".compare.json".length);
    const doc = readJson<CompareDoc>(join(dir, f));
    sections.push({
      id: name,
      title: `${doc.scenario}: ${Object.keys(doc.rows[0]?.params ?? {}).join(" x ")}`,
      reading: [],
      comparisons: [f],
      plots: files
        .filter((p) => p.startsWith(`${name}-`) && p.endsWith(".svg"))
        .map((p) => p.slice(0, -".svg".length)),
      traces: [],
    });
  }
  for (const f of files.filter((f) => f.endsWith(".ndjson"))) {
    sections.push({
      id: f.replace(/\.ndjson$/, ""),
      title: `sweep ${f}`,
      reading: [],
      comparisons: [],
      plots: [],
      traces: [],
      sweeps: [f],
    });
  }
  const tdir = join(dir, "traces");
  const traces = existsSync(tdir)
    ? readdirSync(tdir)
        .filter((f) => f.endsWith(".json"))
        .sort()
        .map((f) => `traces/${f}`)
    : [];
  if (traces.length > 0)
    sections.push({ id: "traces", title: "Traces", reading: [], comparisons: [], plots: [], traces });
  if (sections.length === 0)
    throw new InputError(`${dir}: nothing to report (no report.json, *.compare.json, *.ndjson or traces/)`);
  return { title: `asidlab report: ${basename(dir)}`, intro: [], sections };
}

export function loadManifest(dir: string): ReportManifest {
  const m = join(dir, MANIFEST);
  return existsSync(m) ? readJson<ReportManifest>(m) : discover(dir);
}

/** A sweep's cells grouped by scenario and varied values, summarised over seeds. */
export function sweepTables(text: string, file: string): { scenario: string; rows: CompareRow[] }[] {
  const byScenario = new Map<string, Map<string, RunGroup>>();
  text
    .split("\n")
    .filter((l) => l !== "")
    .forEach((line, i) => {
      let j: {
        scenario: string;
        params: Record<string, string>;
        seed: number;
        status: string;
        violations?: number;
        metrics?: Record<string, number>;
      };
      try {
        j = JSON.parse(line);
      } catch {
        throw new InputError(`${file}:${i + 1}: not a sweep result line`);
      }
      if (j.status !== "ok" || j.metrics === undefined) return;
      if (!byScenario.has(j.scenario)) byScenario.set(j.scenario, new Map());
      const groups = byScenario.get(j.scenario)!;
      const key = JSON.stringify(j.params);
      if (!groups.has(key)) groups.set(key, { params: j.params, seeds: [], runs: [], violations: 0 });
      const g = groups.get(key)!;
      g.seeds.push(j.seed);
      g.runs.push(j.metrics);
      g.violations += j.violations ?? 0;
    });
  return [...byScenario.entries()].map(([scenario, groups]) => ({
    scenario,
    rows: summarise([...groups.values()]),
  }));
}

/** A sweep keeps all metrics or those its file names: the contract's among them that are not all zero. */
function sweepMetrics(rows: readonly CompareRow[]): string[] {
  const kept = Object.keys(rows[0].metrics);
  const contract = kept.filter((m) => (CONTRACT_METRICS as readonly string[]).includes(m));
  const pool = contract.length > 0 ? contract : kept;
  const nonzero = pool.filter((m) => rows.some((r) => r.metrics[m].mean !== 0));
  return nonzero.length > 0 ? nonzero : pool;
}

/** Metrics per table: a wide comparison is split so that each table fits a page. */
const TABLE_METRICS = 4;

/** One table per group of metrics, each in a container that scrolls sideways on a narrow screen. */
function tableHtml(caption: string, rows: readonly CompareRow[], metrics: readonly string[]): string {
  const parts: string[] = [];
  for (let i = 0; i < metrics.length || i === 0; i += TABLE_METRICS) {
    const group = metrics.slice(i, i + TABLE_METRICS);
    const n = Math.ceil(metrics.length / TABLE_METRICS);
    const part = n > 1 ? ` (${i / TABLE_METRICS + 1} of ${n})` : "";
    parts.push(`<div class="scroll">${oneTable(caption + part, rows, group)}</div>`);
  }
  return parts.join("\n");
}

function oneTable(caption: string, rows: readonly CompareRow[], metrics: readonly string[]): string {
  if (rows.length === 0) return "";
  const keys = Object.keys(rows[0].params);
  const head = [
    ...keys.map((k) => `<th>${esc(k)}</th>`),
    ...metrics.map((m) => `<th title="${esc(metricDef(m)?.meaning ?? "")}">${esc(metricTitle(m))}</th>`),
  ].join("");
  const body = rows
    .map((r) => {
      const ps = keys.map((k) => `<td>${esc(r.params[k])}</td>`).join("");
      const ms = metrics
        .map((m) => {
          const s = r.metrics[m];
          if (s === undefined) return "<td></td>";
          const ratio =
            s.ratio === null
              ? ""
              : ` <span class="ratio">${s.ratio.toFixed(2)}x${s.significant === true ? "*" : ""}</span>`;
          return `<td class="num">${esc(statCell(s))}${ratio}</td>`;
        })
        .join("");
      return `<tr${r.violations > 0 ? ' class="violations"' : ""}>${ps}${ms}</tr>`;
    })
    .join("\n");
  const seeds = rows[0].seeds.length;
  return `<table><caption>${esc(caption)} <span class="ci">(mean ± 95% CI half-width over ${seeds} seed${seeds === 1 ? "" : "s"}, rounded to what it supports; [0, hi]: clipped at 0; ratio to the baseline ${esc(baselineText(rows))}; * = differs from it at 95%, Welch's t)</span></caption>
<thead><tr>${head}</tr></thead>
<tbody>
${body}
</tbody></table>`;
}

/** Inline SVG: the XML namespace attributes go (HTML does not need them, and they are URLs). */
export function inlineSvg(svg: string): string {
  return svg
    .replace(/<\?xml[^>]*>\s*/, "")
    .replace(/\s+xmlns(:\w+)?="[^"]*"/g, "")
    .trim();
}

/** A link from the HTML file to a file in DIR. */
function href(htmlDir: string, path: string): string {
  return relative(htmlDir, path).split(sep).map(encodeURIComponent).join("/");
}

const CSS = `
body { font: 15px/1.45 "DejaVu Sans", system-ui, sans-serif; color: #1b1b1b; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2.5rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
nav ol { padding-left: 1.2rem; }
.question { font-style: italic; color: #444; }
.reading li { margin: .2rem 0; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .85rem; }
caption { text-align: left; font-weight: bold; padding-bottom: .3rem; }
th, td { border: 1px solid #ddd; padding: .2rem .45rem; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
.ci, .ratio { color: #666; font-weight: normal; }
tr.violations td { background: #fde8e8; }
figure { display: inline-block; margin: .5rem 1rem .5rem 0; max-width: 100%; }
figure svg { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; max-width: 100%; }
figcaption { font-size: .8rem; color: #555; }
.traces li { font-family: "DejaVu Sans Mono", monospace; font-size: .85rem; }
`;

/** The whole page. `htmlPath` is where it will be written: links are relative to it. */
export function renderHtml(dir: string, m: ReportManifest, htmlPath: string): string {
  const htmlDir = dirname(htmlPath);
  const out: string[] = [];
  out.push(
    `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">`,
  );
  out.push(`<title>${esc(m.title)}</title>\n<style>${CSS}</style>\n</head>\n<body>`);
  out.push(`<h1>${esc(m.title)}</h1>`);
  for (const p of m.intro) out.push(`<p>${prose(p)}</p>`);
  out.push(
    `<nav><ol>${m.sections.map((s) => `<li><a href="#${esc(s.id)}">${esc(s.title)}</a></li>`).join("")}</ol></nav>`,
  );
  for (const s of m.sections) {
    out.push(`<section id="${esc(s.id)}">`);
    out.push(`<h2>${esc(s.title)}</h2>`);
    if (s.question) out.push(`<p class="question">${prose(s.question)}</p>`);
    if (s.reading.length > 0)
      out.push(`<ul class="reading">${s.reading.map((r) => `<li>${prose(r)}</li>`).join("")}</ul>`);
    for (const c of s.comparisons) {
      const doc = readJson<CompareDoc>(join(dir, c));
      if (doc.rows.length === 0) continue;
      const metrics = doc.shown ?? chooseMetrics(doc.rows, undefined);
      out.push(tableHtml(doc.scenario, doc.rows, metrics));
    }
    for (const f of s.sweeps ?? []) {
      for (const t of sweepTables(readText(join(dir, f)), f))
        out.push(tableHtml(`${f}: ${t.scenario}`, t.rows, sweepMetrics(t.rows)));
    }
    for (const p of s.plots) {
      const svg = readText(join(dir, `${p}.svg`));
      const links = [`${p}.vl.json`, `${p}.png`]
        .filter((f) => existsSync(join(dir, f)))
        .map((f) => `<a href="${esc(href(htmlDir, join(dir, f)))}">${esc(f)}</a>`)
        .join(" · ");
      out.push(
        `<figure class="plot" data-plot="${esc(p)}">${inlineSvg(svg)}<figcaption>${links}</figcaption></figure>`,
      );
    }
    if (s.traces.length > 0) {
      out.push(
        `<p>Traces (Chrome Trace Event JSON: open them in Perfetto or speedscope):</p><ul class="traces">${s.traces
          .map((t) => `<li><a href="${esc(href(htmlDir, join(dir, t)))}">${esc(t)}</a></li>`)
          .join("")}</ul>`,
      );
    }
    out.push("</section>");
  }
  out.push(seedAppendix(out.join("\n")));
  out.push("</body>\n</html>\n");
  return out.join("\n");
}
