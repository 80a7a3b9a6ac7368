// The counterexample as a bug report and in the explorer: `check --json`
// steps carry named changes, `replay` lists them (internals folded, filters,
// why the property broke), and `view` writes one page that headless Chromium
// (Debian's chromium, driven by playwright-core, as report.test.ts does)
// steps through by keyboard and #step=N, with the state panel agreeing with
// `check --json`, the violation marked, a CPU filter, and no network request.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { HEADER_WORDS } from "../src/machine/memory.js";
import { explainSchedule } from "../src/report/explain.js";
import { pasidMsr } from "../src/report/fields.js";
import { replaySchedule } from "../src/search/replay.js";
import { parseSchedule } from "../src/search/schedule.js";
import { withChromium } from "./chromium.js";
import { builtin, type CliResult, cli, REPO_ROOT } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "asidlab-view-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Change {
  field: string;
  old: string;
  new: string;
  internal?: boolean;
}
interface Step {
  summary: string;
  changes: Change[];
}

// One real counterexample: the 5.18-rc1 PASID use-after-free.
const schedule = join(tmp, "cex.schedule");
const checked = cli("check", "check-exit-inflight", "--kernel", "free-at-mmput", "--out", schedule, "--json");
const result = JSON.parse(checked.stdout) as {
  verdict: string;
  property: string;
  counterexample: { steps: Step[]; length: number };
};
const steps = result.counterexample.steps;

function badInput(r: CliResult): string {
  assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, "", "nothing on stdout");
  const lines = r.stderr.split("\n").slice(0, -1);
  assert.equal(lines.length, 1, `exactly one line on stderr: ${JSON.stringify(r.stderr)}`);
  assert.ok(lines[0].startsWith("asidlab: ") && !/internal error|^\s+at /m.test(r.stderr), lines[0]);
  return lines[0];
}

describe("named changes: check --json and replay", () => {
  test("check --json: every step carries changes as named fields, internals marked", () => {
    assert.equal(checked.status, 1, checked.stderr);
    assert.equal(result.verdict, "violation");
    assert.equal(steps.length, result.counterexample.length);
    for (const s of steps) assert.ok(Array.isArray(s.changes), s.summary);
    const all = steps.flatMap((s) => s.changes);
    // The model's bookkeeping is there, but marked: kernel frames, loop stacks, user program counters.
    const bookkeeping = all.filter((c) => /\.(frames\[\d+\]|depth|upc|lsp|loops\[\d+\])$/.test(c.field));
    assert.ok(bookkeeping.length > 0);
    for (const c of bookkeeping) assert.equal(c.internal, true, c.field);
    // Tasks by the scenario's process names; no raw slot names such as task[2] or mm[1].
    assert.ok(all.some((c) => c.field.startsWith('task "leaver" (pid 1).')));
    for (const c of all) assert.doesNotMatch(c.field, /^(task|mm|dev|cpu)\[\d+\]/, c.field);
    // The #GP fixup's MSR write, in hex with its meaning.
    const msr = all.find((c) => c.field === "cpu 0.IA32_PASID");
    assert.equal(msr?.new, pasidMsr(0x80000001));
    assert.equal(pasidMsr(0x80000001), "0x80000001 (valid, PASID 1)");
    // The violating step frees the mm's PASID while descriptors are in flight.
    const last = steps[steps.length - 1].changes;
    assert.ok(last.some((c) => /^mm 1\b.*\.pasid$/.test(c.field) && c.old === "PASID 1" && c.new === "none"));
  });

  test("every word a step writes shows up as a named change (decoding loses nothing)", () => {
    const cs = builtin("check-exit-inflight", { kernel: ["free-at-mmput"] });
    const sf = parseSchedule(readFileSync(schedule, "utf8"), schedule);
    const ex = explainSchedule(cs, [], sf.schedule);
    const raw: number[] = [];
    replaySchedule(cs.boot, [], sf.schedule, {
      before() {},
      after(_i, _tr, k, before) {
        let n = 0;
        for (let a = HEADER_WORDS; a < k.w.length; a++) if (k.w[a] !== before[a]) n++;
        raw.push(n);
      },
    });
    assert.equal(ex.steps.length, raw.length);
    for (const [i, s] of ex.steps.entries()) {
      if (raw[i] > 0)
        assert.ok(s.changes.length > 0, `step ${i + 1} wrote ${raw[i]} words but names no change`);
      assert.deepEqual(s.changes, steps[i].changes, `step ${i + 1}: the same changes as check --json`);
    }
    assert.equal(ex.violation, steps.length);
  });

  test("replay: named, folded, no repeated labels, filters, and why the property broke", () => {
    const r = cli("replay", schedule);
    assert.equal(r.status, 1, r.stderr);
    const listed = r.stdout.split("\n").filter((l) => /^\s+\d+ {2}/.test(l));
    assert.equal(listed.length, steps.length);
    for (const l of listed) {
      const label = l.replace(/^.*?\): /, "").replace(/ {2}\(.*$/, "");
      const m = /^([^:]+): (.+)$/.exec(label);
      if (m !== null) assert.notEqual(m[1], m[2], `a repeated label: ${l}`);
    }
    assert.doesNotMatch(r.stdout, /frames\[\d+\]/, "kernel frames are folded");
    const raw = cli("replay", schedule, "--raw");
    assert.match(raw.stdout, /frames\[\d+\]/, "--raw shows them");
    assert.ok(raw.stdout.length > r.stdout.length);
    // Why: the rule, and the descriptors still queued, each with the step that queued it.
    const why = r.stdout.slice(r.stdout.indexOf("why pasid-reuse broke"));
    assert.match(why, /the rule: +no PASID is handed out or freed while a device holds/);
    const queued = [
      ...why.matchAll(/dsa0\.wq\[\d+\] = descriptor: PASID 1.*\n\s+\(step (\d+): [^\n]*user: enqcmd/g),
    ];
    assert.ok(queued.length >= 1, why);
    for (const q of queued) assert.match(listed[Number(q[1]) - 1], /user: enqcmd/);
    // Filters.
    const some = cli("replay", schedule, "--from", "20", "--to", "29");
    assert.equal(some.stdout.split("\n").filter((l) => /^\s+\d+ {2}/.test(l)).length, 10);
    assert.match(some.stdout, /\(10 of \d+ steps shown\)/);
    const leaver = cli("replay", schedule, "--task", "leaver")
      .stdout.split("\n")
      .filter((l) => /^\s+\d+ {2}/.test(l));
    assert.ok(leaver.length > 0 && leaver.length < steps.length);
    for (const l of leaver) assert.match(l, /"leaver"/);
    badInput(cli("replay", schedule, "--cpu", "7"));
  });

  test("view --serve: the same page on 127.0.0.1 only, nothing else served", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "view", schedule, "--serve"],
      {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(out.split("\n")[0]);
        });
        child.once("exit", (code) => reject(new Error(`view --serve exited ${code}`)));
      });
      const url = /^serving (http:\/\/127\.0\.0\.1:\d+\/) /.exec(line)?.[1];
      assert.ok(url !== undefined, line);
      const page = await fetch(url);
      assert.equal(page.status, 200);
      const body = await page.text();
      assert.match(body, /<html lang="en" data-step="0">/);
      assert.ok(body.includes(`"violation":${steps.length}`));
      assert.equal((await fetch(`${url}../schedule`)).status, 404);
    } finally {
      child.kill();
    }
  });

  test("view on bad input: exit 2, one line", () => {
    const msg = badInput(cli("view", join(tmp, "missing.schedule")));
    assert.match(msg, /missing\.schedule/);
    const junk = join(tmp, "junk.schedule");
    writeFileSync(junk, "# scenario: x\nnot a step\n");
    assert.match(badInput(cli("view", junk)), /junk\.schedule:2:1: not a transition/);
  });
});

describe("asidlab view in headless Chromium", () => {
  test("steps, #step=N, the state panel agrees with check --json, violation, CPU filter, no network", async (t) => {
    const page = join(tmp, "cex.html");
    const v = cli("view", schedule, "--out", page);
    assert.equal(v.status, 0, v.stderr);
    const html = readFileSync(page, "utf8");
    assert.doesNotMatch(html, /https?:|<link|src=/i, "nothing fetched from anywhere");

    await withChromium(t, async (ctx) => {
      const requests: string[] = [];
      ctx.on("request", (r) => requests.push(r.url()));
      await ctx.route("**/*", (route) =>
        route.request().url().startsWith("file:") ? route.continue() : route.abort(),
      );
      const url = pathToFileURL(page).href;
      const tab = ctx.pages()[0] ?? (await ctx.newPage());
      const errors: string[] = [];
      tab.on("pageerror", (e) => errors.push(e.message));
      const at = () => tab.evaluate(() => Number(document.documentElement.getAttribute("data-step")));
      const L = steps.length;

      // #step=N opens at step N; the arrows step forward and back.
      await tab.goto(`${url}#step=10`);
      assert.equal(await at(), 10);
      await tab.keyboard.press("ArrowRight");
      assert.equal(await at(), 11);
      await tab.keyboard.press("ArrowLeft");
      await tab.keyboard.press("ArrowLeft");
      assert.equal(await at(), 9);
      assert.equal(await tab.evaluate(() => location.hash), "#step=9");

      // The violation is marked, on the last step, and its button goes there.
      const marked = await tab.$$eval("[data-violation]", (els) =>
        els.map((e) => e.getAttribute("data-step-index")),
      );
      assert.deepEqual(marked, [String(L)]);
      assert.equal(await tab.$$eval("[data-step-index]", (els) => els.length), L);
      await tab.click("#b-violation");
      assert.equal(await at(), L);

      // The state panel shows what check --json says a step wrote: the mm's PASID, set and then freed.
      const value = (name: string) =>
        tab.$$eval(
          "#state tr[data-name]",
          (rows, n) =>
            rows
              .filter((r) => r.getAttribute("data-name") === n)
              .map((r) => r.querySelector("td.value")?.textContent ?? ""),
          name,
        );
      const pasidSteps = steps
        .map((s, i) => ({ n: i + 1, c: s.changes.find((c) => /^mm \d+.*\.pasid$/.test(c.field)) }))
        .filter((x) => x.c !== undefined);
      assert.ok(pasidSteps.length >= 2, "the PASID is set and freed");
      for (const { n, c } of [pasidSteps[0], pasidSteps[pasidSteps.length - 1]]) {
        await tab.goto(`${url}#step=${n}`);
        assert.equal(await at(), n);
        assert.deepEqual(await value(c!.field), [c!.new], `${c!.field} after step ${n}`);
        const changed = await tab.$$eval("#state tr.changed", (rows) =>
          rows.map((r) => r.getAttribute("data-name")),
        );
        assert.ok(changed.includes(c!.field), `${c!.field} highlighted at step ${n}`);
        await tab.keyboard.press("ArrowLeft");
        assert.deepEqual(await value(c!.field), [c!.old], `${c!.field} before step ${n}`);
      }
      // Internals are in the panel but hidden until asked for.
      const hiddenInternal = await tab.$$eval(
        "#state tr.internal",
        (rows) => rows.filter((r) => (r as HTMLElement).offsetParent !== null).length,
      );
      assert.equal(hiddenInternal, 0);
      await tab.check("#f-internal");
      assert.ok(
        (await tab.$$eval(
          "#state tr.internal",
          (rows) => rows.filter((r) => (r as HTMLElement).offsetParent !== null).length,
        )) > 0,
      );

      // A CPU filter hides every other lane.
      const visibleLanes = () =>
        tab.$$eval(".lane", (ls) =>
          ls.filter((l) => (l as HTMLElement).offsetParent !== null).map((l) => l.getAttribute("data-lane")),
        );
      const before = await visibleLanes();
      assert.ok(before.length >= 2 && before.includes("cpu 0"), String(before));
      await tab.selectOption("#f-cpu", "0");
      assert.deepEqual(await visibleLanes(), ["cpu 0"]);

      // The field filter narrows the state panel; the search marks matching steps; the task jump stays on the task.
      await tab.fill("#f-field", "IA32_PASID");
      const shown = await tab.$$eval("#state tr[data-name]", (rows) =>
        rows
          .filter((r) => (r as HTMLElement).offsetParent !== null)
          .map((r) => r.getAttribute("data-name") ?? ""),
      );
      assert.ok(shown.length > 0 && shown.every((n) => n.includes("IA32_PASID")), String(shown));
      await tab.fill("#f-search", "enqcmd");
      const hits = await tab.$$eval(".slice.hit", (els) =>
        els.map((e) => Number(e.getAttribute("data-step-index"))),
      );
      const expected = steps.flatMap((s, i) => (/enqcmd/i.test(s.summary) ? [i + 1] : []));
      assert.ok(
        expected.every((n) => hits.includes(n)),
        `${hits} covers ${expected}`,
      );
      await tab.goto(`${url}#step=30`);
      await tab.click("#b-task-next");
      assert.equal(await at(), 31);
      assert.deepEqual(errors, [], "no script error");

      assert.ok(requests.length > 0);
      assert.deepEqual(
        requests.filter((u) => !u.startsWith("file:")),
        [],
        "no request leaves the file",
      );
    });
  });
});
