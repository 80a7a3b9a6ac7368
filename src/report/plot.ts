// Plots without a browser: a Vega-Lite spec per plot, compiled to Vega and
// rendered to SVG by Vega's headless View (renderer "none": no canvas, text
// widths estimated), then to PNG by resvg with the system fonts. Each plot's
// spec is written beside its SVG and PNG (NAME.vl.json), data inline, so a
// user can edit it and re-render (vega-lite's `vl2svg`, or the online editor).
//
// Two kinds: bars per combination of varied values for one metric, with the
// 95% confidence interval as an error bar; and lines over a swept numeric
// parameter, one line per combination of the other values.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import * as vl from "vega-lite";
import { metricDef, metricTitle } from "../machine/glossary.js";
import type { CompareRow } from "../run/compare.js";
import { InputError } from "../scenario/errors.js";
import { fsFailure } from "../scenario/read.js";

/** A Vega-Lite spec, as JSON. */
export type VlSpec = Record<string, unknown>;

export interface Plot {
  /** File stem: NAME.vl.json, NAME.svg, NAME.png. */
  name: string;
  /** The metric plotted. */
  metric: string;
  spec: VlSpec;
}

const FONT = "DejaVu Sans";
const CONFIG = {
  font: FONT,
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 11 },
  title: { fontSize: 13, anchor: "start" },
};

/** `k=v k2=v2`, or just `v` when one key is varied. */
export function paramsLabel(params: Record<string, string>, keys: readonly string[]): string {
  if (keys.length === 1) return params[keys[0]];
  return keys.map((k) => `${k}=${params[k]}`).join(" ");
}

/** The values alone, `v / v2` (the axis title names the keys in the same order). */
const valuesLabel = (params: Record<string, string>, keys: readonly string[]) =>
  keys.map((k) => params[k]).join(" / ");

/** The subtitle: what is plotted, its unit, over how many seeds. */
function subtitle(metric: string, rows: readonly CompareRow[]): string[] {
  const d = metricDef(metric);
  const clipped = rows.some((r) => r.metrics[metric].clipped) ? "; intervals of a count clipped at 0" : "";
  return [
    `${metricTitle(metric)}: mean and 95% CI over ${rows[0].seeds.length} seeds${clipped}`,
    ...(d === undefined ? [] : [`${d.meaning} [${d.kernel}]`]),
  ];
}

/** Values spanning two decades or more (all positive): a log axis shows them apart. */
function spansDecades(xs: readonly number[]): boolean {
  if (xs.length < 2 || xs.some((x) => !(x > 0))) return false;
  return Math.max(...xs) / Math.min(...xs) >= 100;
}

/** One sentence when every row has the same mean for `metric` (no plot says more), else null. */
export function flatNote(rows: readonly CompareRow[], metric: string): string | null {
  const m = rows[0].metrics[metric].mean;
  if (!rows.every((r) => r.metrics[metric].mean === m)) return null;
  const spread = rows.some((r) => r.metrics[metric].ci95[1] > r.metrics[metric].ci95[0]);
  const fmt = Number.isInteger(m)
    ? m.toLocaleString("en-US")
    : m.toLocaleString("en-US", { maximumFractionDigits: 2 });
  return `${metricTitle(metric)}: ${fmt} per run in every row (${rows.length} rows${spread ? ", mean over seeds" : ""}), so no plot.`;
}

/** Bars per row for one metric, with the 95% CI as error bars. */
export function barSpec(title: string, rows: readonly CompareRow[], metric: string): VlSpec {
  const keys = Object.keys(rows[0].params);
  const values = rows.map((r) => ({
    label: valuesLabel(r.params, keys),
    mean: r.metrics[metric].mean,
    lo: Math.max(0, r.metrics[metric].ci95[0]),
    hi: r.metrics[metric].ci95[1],
  }));
  // Whole labels, never cut: a long one is set at an angle.
  const long = Math.max(...values.map((v) => v.label.length)) > 8;
  const x = {
    field: "label",
    type: "nominal",
    sort: null,
    title: keys.join(" / "),
    axis: { labelAngle: long ? -35 : 0, labelLimit: 0 },
  };
  const y = { field: "mean", type: "quantitative", title: metricTitle(metric), scale: { domainMin: 0 } };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle: subtitle(metric, rows) },
    width: Math.max(160, 48 * values.length),
    height: 200,
    config: CONFIG,
    data: { values },
    layer: [
      {
        mark: { type: "bar", color: "#4c78a8" },
        encoding: { x, y },
      },
      {
        mark: { type: "errorbar", ticks: true, color: "#222" },
        encoding: { x, y: { ...y, field: "lo" }, y2: { field: "hi" } },
      },
    ],
  };
}

/**
 * Lines over the numeric varied key `xKey` for one metric: one line per
 * combination of the other varied values, the 95% CI as error bars.
 */
export function lineSpec(title: string, rows: readonly CompareRow[], metric: string, xKey: string): VlSpec {
  const others = Object.keys(rows[0].params).filter((k) => k !== xKey);
  const seriesOf = (r: CompareRow) => (others.length === 0 ? metric : valuesLabel(r.params, others));
  // Series with the same figures at every x would be drawn on top of each other: one line, named for all.
  const names = [...new Set(rows.map(seriesOf))];
  const figures = (s: string) =>
    JSON.stringify(
      rows.filter((r) => seriesOf(r) === s).map((r) => [r.params[xKey], r.metrics[metric].mean]),
    );
  const alias = new Map<string, string>();
  for (const s of names) {
    const same = names.filter((t) => figures(t) === figures(s));
    alias.set(s, same.length === 1 ? s : `${same.join(" = ")} (identical)`);
  }
  const seen = new Set<string>();
  const values = rows.flatMap((r) => {
    const series = alias.get(seriesOf(r)) ?? seriesOf(r);
    const key = `${series}\0${r.params[xKey]}`;
    if (seen.has(key)) return [];
    seen.add(key);
    return [
      {
        x: Number(r.params[xKey]),
        series,
        mean: r.metrics[metric].mean,
        lo: Math.max(0, r.metrics[metric].ci95[0]),
        hi: r.metrics[metric].ci95[1],
      },
    ];
  });
  const logX = spansDecades(values.map((v) => v.x));
  const logY = spansDecades(values.flatMap((v) => [v.mean, v.lo]));
  const x = {
    field: "x",
    type: "quantitative",
    title: logX ? `${xKey} (log scale)` : xKey,
    scale: logX ? { type: "log" } : {},
    axis: { values: [...new Set(values.map((v) => v.x))] },
  };
  const yTitle = `${metricTitle(metric)}${logY ? " (log scale)" : ""}`;
  const y = {
    field: "mean",
    type: "quantitative",
    title: yTitle,
    scale: logY ? { type: "log" } : { domainMin: 0 },
  };
  const color = {
    field: "series",
    type: "nominal",
    sort: null,
    title: others.length === 0 ? null : others.join(" / "),
    legend: others.length === 0 ? null : { labelLimit: 0 },
  };
  // Dashes and point shapes as well as colours: lines that cross stay apart.
  // The same field, title and legend as the colour: one legend showing colour, dash and shape.
  const strokeDash = { ...color };
  const shape = { ...color };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle: subtitle(metric, rows) },
    width: 360,
    height: 200,
    config: CONFIG,
    data: { values },
    layer: [
      {
        mark: { type: "line", point: true },
        encoding: { x, y, color, strokeDash, shape },
      },
      {
        mark: { type: "errorbar", ticks: true },
        encoding: { x, y: { ...y, field: "lo" }, y2: { field: "hi" }, color },
      },
    ],
  };
}

/** A varied key whose values are all numbers: the x axis of a line chart. */
export function numericKey(rows: readonly CompareRow[]): string | null {
  const keys = Object.keys(rows[0].params);
  for (let i = keys.length - 1; i >= 0; i--) {
    const k = keys[i];
    const vals = new Set(rows.map((r) => r.params[k]));
    if (vals.size > 1 && [...vals].every((v) => v.trim() !== "" && Number.isFinite(Number(v)))) return k;
  }
  return null;
}

/** File-name-safe stem. */
export function stem(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "");
}

/**
 * The plots of a comparison, one per metric: lines over the last varied key
 * whose values are all numbers, if there is one (and `kind` allows), else bars.
 */
export function comparePlots(
  scenario: string,
  rows: readonly CompareRow[],
  metrics: readonly string[],
  kind: "auto" | "bar" | "line" = "auto",
): Plot[] {
  const xKey = kind === "bar" ? null : numericKey(rows);
  if (kind === "line" && xKey === null)
    throw new InputError(`${scenario}: a line plot needs a varied key whose values are numbers`);
  // A metric whose mean is the same in every row gets a sentence (flatNote), not a plot.
  return metrics
    .filter((m) => flatNote(rows, m) === null)
    .map((m) => ({
      name: stem(`${scenario}-${m}`),
      metric: m,
      spec: xKey === null ? barSpec(scenario, rows, m) : lineSpec(scenario, rows, m, xKey),
    }));
}

/** The plot as SVG text. */
export async function renderSvg(spec: VlSpec): Promise<string> {
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return `${svg}\n`;
}

/** SVG to PNG (twice the SVG's size), with the system's fonts. */
export function renderPng(svg: string): Buffer {
  const r = new Resvg(svg, {
    fitTo: { mode: "zoom", value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: FONT },
  });
  return Buffer.from(r.render().asPng());
}

export interface WrittenPlot {
  name: string;
  spec: string;
  svg: string;
  png: string;
}

/** Write NAME.vl.json, NAME.svg and NAME.png into `dir`. */
export async function writePlot(dir: string, plot: Plot): Promise<WrittenPlot> {
  const svg = await renderSvg(plot.spec);
  const files = {
    name: plot.name,
    spec: join(dir, `${plot.name}.vl.json`),
    svg: join(dir, `${plot.name}.svg`),
    png: join(dir, `${plot.name}.png`),
  };
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(files.spec, `${JSON.stringify(plot.spec, null, 2)}\n`);
    writeFileSync(files.svg, svg);
    writeFileSync(files.png, renderPng(svg));
  } catch (err) {
    throw new InputError(`${dir}: cannot write plots: ${fsFailure(err)}`);
  }
  return files;
}
