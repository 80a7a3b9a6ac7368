// How a comparison reads: one row per combination of varied values; per
// metric the mean, its 95% confidence interval and the ratio to a baseline
// row, marked where the difference is significant. As a terminal table, JSON (the DESIGN contract), CSV or Markdown.

import Table from "cli-table3";
import { metricTitle } from "../machine/glossary.js";
import { CONTRACT_METRICS } from "../machine/metrics.js";
import type { CompareRow, Stat } from "../run/compare.js";
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
const ratio = (s: Stat) =>
  s.ratio === null ? "-" : `${s.ratio.toFixed(2)}x${s.significant === true ? "*" : ""}`;
const half = (lo: number, hi: number) => (hi - lo) / 2;

/** `x` rounded to the precision an interval of half-width `h` supports: two significant digits of h. */
export function roundToCi(x: number, h: number): string {
  if (!(h > 0)) return num(x);
  const e = Math.floor(Math.log10(h)) - 1;
  const q = 10 ** e;
  const d = Math.max(0, -e);
  return (Math.round(x / q) * q).toLocaleString("en-US", {
    minimumFractionDigits: d,
    maximumFractionDigits: d,
  });
}

/** A number as CSV writes it: plain, no float noise (80.677, not 80.67699999999999). */
export function plain(x: number): string {
  if (Number.isInteger(x)) return String(x);
  return String(Number(x.toPrecision(12)));
}

/** One cell: mean ± half-width rounded to what the interval supports, or [0, hi] when clipped at 0. */
export function statCell(s: Stat): string {
  const h = half(s.ci95[0], s.ci95[1]);
  if (s.clipped === true) {
    const raw = s.ci95[1] - s.mean; // the unclipped half-width
    return `${roundToCi(s.mean, raw)} [0, ${roundToCi(s.ci95[1], raw)}]`;
  }
  return h > 0 ? `${roundToCi(s.mean, h)} ± ${roundToCi(h, h)}` : num(s.mean);
}

/** cli-table3 without a rule between rows. */
const NO_ROW_RULES = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

/** What the baseline of each ratio is, in words. */
export function baselineText(rows: readonly CompareRow[]): string {
  const b = rows[rows[0].baseline]?.params ?? {};
  const keys = Object.keys(rows[0].params);
  // The keys whose value is the same in every row's baseline are the chosen ones.
  const fixed = keys.filter((k) => rows.every((r) => rows[r.baseline].params[k] === b[k]));
  const per = keys.filter((k) => !fixed.includes(k));
  return `${fixed.map((k) => `${k}=${b[k]}`).join(" ")}${per.length > 0 ? ` (for each ${per.join(", ")})` : ""}`;
}

/** The line above every table: what the cells mean. */
export function compareCaption(scenario: string, rows: readonly CompareRow[]): string {
  return (
    `scenario  ${scenario}  (${rows[0].seeds.length} seeds each): mean ± 95% CI half-width, rounded to what the interval supports; ` +
    `[0, hi]: an interval of a count clipped at 0; (ratio to the baseline ${baselineText(rows)}; ` +
    "* = differs from it at 95%, Welch's t)"
  );
}

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
  const out = [
    [...keys, "seeds", "metric", "mean", "ci95_lo", "ci95_hi", "ratio", "significant", "ci95_clipped"].join(
      ",",
    ),
  ];
  for (const r of rows) {
    for (const m of metrics) {
      const s = r.metrics[m];
      out.push(
        [
          ...keys.map((k) => r.params[k]),
          r.seeds.length,
          m,
          plain(s.mean),
          plain(s.ci95[0]),
          plain(s.ci95[1]),
          s.ratio === null ? "" : plain(s.ratio),
          s.significant === null ? "" : String(s.significant),
          String(s.clipped === true),
        ].join(","),
      );
    }
  }
  return `${out.join("\n")}\n`;
}

function cells(r: CompareRow, metrics: readonly string[]): string[] {
  return metrics.map((m) => `${statCell(r.metrics[m])} (${ratio(r.metrics[m])})`);
}

export function compareMarkdown(
  rows: readonly CompareRow[],
  metrics: readonly string[],
  scenario?: string,
): string {
  const keys = Object.keys(rows[0].params);
  const head = [...keys, ...metrics.map(metricTitle)];
  const caption = scenario === undefined ? [] : [compareCaption(scenario, rows).replace(/\*/g, "\\*"), ""];
  const out = [...caption, `| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
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
  out.push(compareCaption(scenario, rows));
  // One table per group of metrics so that it fits a terminal.
  for (let i = 0; i < metrics.length; i += 4) {
    const group = metrics.slice(i, i + 4);
    const t = new Table({
      head: [...keys, ...group.map(metricTitle)],
      style: { head: [], border: [] },
      chars: NO_ROW_RULES,
    });
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
