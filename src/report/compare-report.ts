// How a comparison reads: one row per combination of varied values; per
// metric the mean, its 95% confidence interval and the ratio to the first
// row. As a terminal table, JSON (the DESIGN contract), CSV or Markdown.

import Table from "cli-table3";
import { CONTRACT_METRICS } from "../machine/metrics.js";
import type { CompareRow } from "../run/compare.js";
import { InputError } from "../scenario/errors.js";

/** The metrics to show: those asked for, or every contract metric that is not zero in some row. */
export function chooseMetrics(rows: readonly CompareRow[], asked: readonly string[] | undefined): string[] {
  const known = Object.keys(rows[0].metrics);
  if (asked !== undefined) {
    for (const m of asked)
      if (!known.includes(m))
        throw new InputError(`--metrics ${m}: unknown metric (known: ${known.join(", ")})`);
    return [...asked];
  }
  return CONTRACT_METRICS.filter((m) => rows.some((r) => r.metrics[m].mean !== 0));
}

const num = (x: number) =>
  Number.isInteger(x) ? x.toLocaleString("en-US") : x.toLocaleString("en-US", { maximumFractionDigits: 1 });
const ratio = (r: number | null) => (r === null ? "-" : `${r.toFixed(2)}x`);
const half = (lo: number, hi: number) => (hi - lo) / 2;

/** `{scenario, rows}` (the contract); with `shown`, also the metrics chosen for display (report's tables). */
export function compareJson(
  scenario: string,
  rows: readonly CompareRow[],
  shown?: readonly string[],
): string {
  const format = "asidlab/compare/v1";
  const doc = shown === undefined ? { format, scenario, rows } : { format, scenario, shown, rows };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function compareCsv(rows: readonly CompareRow[], metrics: readonly string[]): string {
  const keys = Object.keys(rows[0].params);
  const out = [[...keys, "seeds", "metric", "mean", "ci95_lo", "ci95_hi", "ratio"].join(",")];
  for (const r of rows) {
    for (const m of metrics) {
      const s = r.metrics[m];
      out.push(
        [
          ...keys.map((k) => r.params[k]),
          r.seeds.length,
          m,
          s.mean,
          s.ci95[0],
          s.ci95[1],
          s.ratio ?? "",
        ].join(","),
      );
    }
  }
  return `${out.join("\n")}\n`;
}

function cells(r: CompareRow, metrics: readonly string[]): string[] {
  return metrics.map((m) => {
    const s = r.metrics[m];
    const h = half(s.ci95[0], s.ci95[1]);
    return `${num(s.mean)}${h > 0 ? ` ± ${num(h)}` : ""} (${ratio(s.ratio)})`;
  });
}

export function compareMarkdown(rows: readonly CompareRow[], metrics: readonly string[]): string {
  const keys = Object.keys(rows[0].params);
  const head = [...keys, ...metrics];
  const out = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows)
    out.push(`| ${[...keys.map((k) => r.params[k]), ...cells(r, metrics)].join(" | ")} |`);
  return `${out.join("\n")}\n`;
}

export function compareTable(
  scenario: string,
  rows: readonly CompareRow[],
  metrics: readonly string[],
): string {
  const keys = Object.keys(rows[0].params);
  const out: string[] = [];
  out.push(
    `scenario  ${scenario}  (${rows[0].seeds.length} seeds each: mean ± 95% CI half-width (ratio to the first row))`,
  );
  // One table per group of metrics so that it fits a terminal.
  for (let i = 0; i < metrics.length; i += 4) {
    const group = metrics.slice(i, i + 4);
    const t = new Table({ head: [...keys, ...group], style: { head: [], border: [] } });
    for (const r of rows) t.push([...keys.map((k) => r.params[k]), ...cells(r, group)]);
    out.push(t.toString());
  }
  const bad = rows.filter((r) => r.violations > 0);
  if (bad.length > 0) {
    out.push(
      `violations in: ${bad
        .map((r) =>
          Object.entries(r.params)
            .map(([k, v]) => `${k}=${v}`)
            .join(" "),
        )
        .join("; ")} (run them for details)`,
    );
  }
  return `${out.join("\n")}\n`;
}
