// Plots, `report DIR --html FILE` and the demo report: every section with its
// plots, deterministic bytes, and no network request when the page is opened
// in headless Chromium (Debian's chromium, driven by playwright-core).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { contrast, DEMO_SECTIONS, writeDemo } from "../src/report/demo.js";
import { renderHtml } from "../src/report/html.js";
import { barSpec, comparePlots, flatNote, lineSpec, renderSvg } from "../src/report/plot.js";
import { compare, parseVary, summarise } from "../src/run/compare.js";
import { loadScenarioFile } from "../src/scenario/load.js";
import { withChromium } from "./chromium.js";
import { REPO_ROOT } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "asidlab-report-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function built(...args: string[]) {
  const r = spawnSync(process.execPath, ["dist/src/cli/main.js", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return r;
}

describe("plots", () => {
  const ls = loadScenarioFile(join(REPO_ROOT, "scenarios/short-lived-threads.yaml"));
  const rows = compare(ls, [parseVary("pasid_lifetime=mm,unbind"), parseVary("machine.cpus=1,2")], 2);

  test("bars per combination with CI error bars; lines over the numeric varied key", async () => {
    const bar = barSpec("t", rows, "pasid_allocs") as { data: { values: { label: string; lo: number }[] } };
    assert.deepEqual(
      bar.data.values.map((v) => v.label),
      ["mm / 1", "mm / 2", "unbind / 1", "unbind / 2"],
      "the values; the axis title names the keys",
    );
    assert.equal(
      (bar as unknown as { layer: { encoding: { x: { title: string } } }[] }).layer[0].encoding.x.title,
      "pasid_lifetime / machine.cpus",
    );
    assert.ok(
      bar.data.values.every((v) => v.lo >= 0),
      "a count's interval never below 0",
    );
    const line = lineSpec("t", rows, "pasid_allocs", "machine.cpus") as {
      data: { values: { x: number; series: string }[] };
    };
    assert.deepEqual(line.data.values[1], { ...line.data.values[1], x: 2, series: "mm" });
    const plots = comparePlots("t", rows, ["pasid_allocs", "cycles_total"]);
    assert.deepEqual(
      plots.map((p) => p.name),
      ["t-pasid_allocs", "t-cycles_total"],
    );
    assert.ok("layer" in plots[0].spec);
    const svg = await renderSvg(plots[0].spec);
    assert.match(svg, /^<svg/);
    assert.equal(await renderSvg(plots[0].spec), svg, "the same spec renders to the same bytes");
  });

  test("compare --plot DIR writes spec, SVG and PNG per metric; report DIR --html makes a page of them", () => {
    const dir = join(tmp, "cmp");
    const r = built(
      "compare",
      "short-lived-threads",
      "--vary",
      "pasid_lifetime=mm,unbind",
      "--seeds",
      "2",
      "--metrics",
      "pasid_allocs,cycles_total",
      "--plot",
      dir,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(dir).sort(), [
      "short-lived-threads-cycles_total.png",
      "short-lived-threads-cycles_total.svg",
      "short-lived-threads-cycles_total.vl.json",
      "short-lived-threads-pasid_allocs.png",
      "short-lived-threads-pasid_allocs.svg",
      "short-lived-threads-pasid_allocs.vl.json",
      "short-lived-threads.compare.json",
    ]);
    const png = readFileSync(join(dir, "short-lived-threads-pasid_allocs.png"));
    assert.equal(png.subarray(1, 4).toString(), "PNG");
    // A sweep's results in the same directory: summarised over seeds, one table per scenario.
    const spec = join(tmp, "sw.yaml");
    writeFileSync(
      spec,
      "name: sw\nscenarios: [short-lived-threads]\nseeds: 2\npolicies: { pasid_lifetime: [mm, static] }\n",
    );
    assert.equal(built("sweep", spec, "--workers", "1", "--out", join(dir, "sw.ndjson")).status, 0);
    const html = join(tmp, "cmp.html");
    const h = built("report", dir, "--html", html);
    assert.equal(h.status, 0, h.stderr);
    const page = readFileSync(html, "utf8");
    assert.equal((page.match(/<svg/g) ?? []).length, 2);
    assert.match(page, /<caption>sw\.ndjson: short-lived-threads .*over 2 seeds/);
    assert.match(page, /<td>unbind<\/td><td class="num">50 <span class="ratio">50\.00x\*<\/span><\/td>/);
    assert.match(page, /href="cmp\/short-lived-threads-pasid_allocs\.vl\.json"/);
    const bad = built("report", join(tmp, "nope"), "--html", html);
    assert.equal(bad.status, 2);
    assert.equal(bad.stdout, "");
    assert.match(bad.stderr, /^asidlab: .*nope: no such directory\n$/);
  });
});

describe("demo report", () => {
  test("readings are generated from the figures", () => {
    const ls = loadScenarioFile(join(REPO_ROOT, "scenarios/short-lived-threads.yaml"));
    const rows = compare(ls, [parseVary("pasid_lifetime=mm,unbind,task-refcount,static")], 1);
    assert.equal(
      contrast(rows, "pasid_allocs", "PASID allocations"),
      "unbind and task-refcount have 50.0x as many PASID allocations as mm (50 vs 1 per run); static has as many as mm (1)",
    );
  });

  test("the same sections give byte-identical pages", async () => {
    const only = DEMO_SECTIONS.filter((s) => s.id.startsWith("e-"));
    const pages = [];
    for (const d of ["d1", "d2"]) {
      const dir = join(tmp, d);
      const m = await writeDemo(dir, { seeds: 1, sections: only });
      pages.push(renderHtml(dir, m, join(dir, "report.html")));
    }
    assert.equal(pages[0], pages[1]);
  });

  test("every section with its plots, in headless Chromium, with no network request", async (t) => {
    const dir = join(tmp, "demo");
    const manifest = await writeDemo(dir, { seeds: 2 });
    const html = renderHtml(dir, manifest, join(dir, "report.html"));
    assert.deepEqual(
      manifest.sections.map((s) => s.id.charAt(0)),
      ["a", "b", "c", "d", "e"],
    );
    for (const s of manifest.sections) {
      assert.ok(s.plots.length > 0 && s.reading.length > 0 && s.comparisons.length > 0, s.id);
      for (const p of s.plots)
        for (const ext of [".svg", ".png", ".vl.json"]) assert.ok(existsSync(join(dir, p + ext)));
      for (const tr of s.traces) assert.ok(existsSync(join(dir, tr)), tr);
    }
    assert.doesNotMatch(html, /https?:|\/\/[a-z]/i, "no URL of any other place in the page");
    // "Seed 000" and "Seed 004" in the questions link to what the seed said, at the end of the page.
    const seedRefs = [...html.matchAll(/<a class="seed" href="#(seed-\d{3})"/g)].map((m) => m[1]);
    assert.ok(seedRefs.includes("seed-000") && seedRefs.includes("seed-004"), seedRefs.join(", "));
    for (const id of seedRefs)
      assert.match(html, new RegExp(`<li id="${id}"><strong>Seed \\d{3}</strong>: <em>\\[PATCH`));

    await withChromium(t, async (ctx) => {
      const PAGE = "http://report.invalid/report.html";
      const requests: string[] = [];
      ctx.on("request", (r) => requests.push(r.url()));
      await ctx.route("**/*", (route) =>
        route.request().url() === PAGE
          ? route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: html })
          : route.abort(),
      );
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      const sockets: string[] = [];
      page.on("websocket", (w) => sockets.push(w.url()));
      await page.goto(PAGE, { waitUntil: "load" });
      const seen = await page.evaluate(() =>
        [...document.querySelectorAll("section")].map((s) => ({
          id: s.id,
          title: s.querySelector("h2")?.textContent ?? "",
          plots: s.querySelectorAll("figure.plot svg").length,
          tables: s.querySelectorAll("table").length,
          readings: s.querySelectorAll(".reading li").length,
          traces: s.querySelectorAll(".traces a").length,
        })),
      );
      assert.deepEqual(
        seen.map((s) => [s.id, s.title, s.plots, s.tables, s.readings, s.traces]),
        manifest.sections.map((s) => [
          s.id,
          s.title,
          s.plots.length,
          // A table per 4 metrics of each comparison (wide ones are split).
          DEMO_SECTIONS.find((d) => d.id === s.id)!.comparisons.reduce(
            (n, c) => n + Math.ceil(c.metrics.length / 4),
            0,
          ),
          s.reading.length,
          s.traces.length,
        ]),
      );
      // A reader's checks at a desktop and a phone width: nothing wider than the window but a
      // table in its scrolling container; no axis named by an internal path; no cut label;
      // no count axis below 0; every section screenshotted.
      for (const width of [1400, 390]) {
        await page.setViewportSize({ width, height: 900 });
        const found = await page.evaluate((vw) => {
          const wide = [...document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > vw + 1 && e.closest(".scroll") === null)
            .map((e) => `${e.tagName.toLowerCase()}.${e.className}`);
          const texts = [...document.querySelectorAll("svg text")].map((t) => t.textContent ?? "");
          return {
            wide,
            paths: texts.filter((t) => /processes\.|program\./.test(t)),
            cut: texts.filter((t) => t.endsWith("…")),
            negative: texts.filter((t) => /^[−-]\d/.test(t.trim())),
          };
        }, width);
        assert.deepEqual(found.wide, [], `${width} px: wider than the window`);
        assert.deepEqual(found.paths, [], `${width} px: internal paths as labels`);
        assert.deepEqual(found.cut, [], `${width} px: cut labels`);
        assert.deepEqual(found.negative, [], `${width} px: a count axis below 0`);
        for (const s of manifest.sections) {
          const shot = await page
            .locator(`section#${s.id}`)
            .screenshot({ path: join(dir, `${s.id}-${width}.png`) });
          assert.ok(shot.length > 1000, `${s.id} at ${width} px`);
        }
      }
      assert.deepEqual(requests, [PAGE], "the page itself and nothing else");
      assert.deepEqual(sockets, []);
    });
  });
});

describe("plots a person reads", () => {
  const g = (params: Record<string, string>, xs: number[]) => ({
    params,
    seeds: xs.map((_, i) => i),
    runs: xs.map((x) => ({ pasid_allocs: x, cycles_total: 7, ipis: x })),
    violations: 0,
  });

  test("labels from --vary, log axes over decades, identical series named together, flat metrics as a sentence", () => {
    const v = parseVary("idle threads=processes.0.count=1,10,100,1000");
    assert.deepEqual(v, {
      key: "processes.0.count",
      values: ["1", "10", "100", "1000"],
      label: "idle threads",
    });
    const rows = summarise(
      ["1", "10", "100", "1000"].flatMap((n) => [
        g({ policy: "a", "idle threads": n }, [Number(n), Number(n) + 1]),
        g({ policy: "b", "idle threads": n }, [Number(n), Number(n) + 1]),
        g({ policy: "c", "idle threads": n }, [2 * Number(n), 2 * Number(n) + 1]),
      ]),
    );
    const spec = lineSpec("t", rows, "pasid_allocs", "idle threads") as {
      data: { values: { series: string; lo: number }[] };
      layer: { encoding: { x: { title: string; scale: { type?: string } }; y: { title: string } } }[];
    };
    const enc = spec.layer[0].encoding;
    assert.equal(enc.x.title, "idle threads (log scale)");
    assert.equal(enc.x.scale.type, "log");
    assert.match(enc.y.title, /^pasid_allocs \(PASIDs\)/, "the unit on the axis");
    const series = [...new Set(spec.data.values.map((x) => x.series))];
    assert.deepEqual(series, ["a = b (identical)", "c"]);
    assert.ok(spec.data.values.every((x) => x.lo >= 0));
    const plots = comparePlots("t", rows, ["pasid_allocs", "cycles_total"]);
    assert.deepEqual(
      plots.map((p) => p.metric),
      ["pasid_allocs"],
    );
    assert.match(flatNote(rows, "cycles_total") ?? "", /^cycles_total \(cycles\): 7 per run in every row/);
    assert.equal(flatNote(rows, "pasid_allocs"), null);
  });

  test("the demo's sections use labels a person chose, and at least 5 seeds", () => {
    for (const s of DEMO_SECTIONS)
      for (const c of s.comparisons) {
        assert.ok((c.seeds ?? 5) >= 5, `${s.id}: ${c.seeds} seeds`);
        for (const v of c.vary.map(parseVary)) {
          const shown = v.label ?? v.key;
          assert.doesNotMatch(shown, /processes\.|program\./, `${s.id}: ${shown}`);
        }
      }
  });
});
