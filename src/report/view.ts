// `asidlab view FILE`: a counterexample explorer in one self-contained HTML
// page (inline CSS and JS, the data as embedded JSON; no network, no server).
// A timeline with a lane per CPU and per device, each step a slice named as
// the kernel function; stepping with the keyboard and buttons, jumps to the
// violation and to the same CPU's or task's previous/next step, #step=N; the
// state at the current step as kernel structs (fields.ts) with what the step
// changed highlighted and the model's internals folded; filters by CPU, task
// and field, a search box; and why the property broke. Hooks for tests: the
// current step in `data-step` on <html>, `data-step-index` on each step's
// slice, `data-violation` on the violating one, the state panel `#state`.

import type { Explained } from "./explain.js";

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** JSON safe inside a <script> element. */
const scriptJson = (v: unknown) =>
  JSON.stringify(v)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/\u2028|\u2029/g, " ");

const CSS = `
:root { --w: 22px; font: 13px/1.35 system-ui, sans-serif; color: #1b1f24; }
body { margin: 0; }
header { padding: 8px 14px; background: #f3f4f6; border-bottom: 1px solid #d0d7de; }
h1 { font-size: 16px; margin: 0 0 4px; }
#why { margin: 4px 0; }
#why .rule { color: #444; }
#why .broken { color: #b00020; font-weight: 600; }
#why table { border-collapse: collapse; margin-top: 4px; }
#why td { padding: 1px 8px 1px 0; vertical-align: top; font-family: ui-monospace, monospace; font-size: 12px; }
#why a { color: #0550ae; cursor: pointer; }
#controls { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; padding: 6px 14px; border-bottom: 1px solid #d0d7de; position: sticky; top: 0; background: #fff; z-index: 3; }
#controls button { font: inherit; padding: 2px 8px; }
#pos { font-weight: 600; min-width: 120px; }
#timeline { overflow-x: auto; border-bottom: 1px solid #d0d7de; padding: 4px 0; }
.lane { display: flex; align-items: stretch; height: 96px; border-bottom: 1px dashed #e5e7eb; }
.lane.hidden { display: none; }
.lane > .name { position: sticky; left: 0; z-index: 2; background: #fff; width: 70px; min-width: 70px; padding: 2px 6px; font-weight: 600; border-right: 1px solid #d0d7de; }
.track { position: relative; height: 100%; }
.run { position: absolute; top: 1px; height: 13px; font-size: 10px; overflow: hidden; white-space: nowrap; border-radius: 2px; background: #eef2ff; border: 1px solid #c7d2fe; padding: 0 2px; box-sizing: border-box; }
.slice { position: absolute; top: 16px; height: 76px; width: calc(var(--w) - 2px); box-sizing: border-box; border-radius: 2px; font-size: 9px; overflow: hidden; white-space: nowrap; cursor: pointer; color: #fff; padding: 1px; writing-mode: vertical-rl; }
.slice.user { background: #2da44e; } .slice.kernel { background: #0969da; } .slice.idle { background: #8c959f; }
.slice.irq { background: #d4751c; } .slice.nmi { background: #8250df; } .slice.device { background: #1b7c83; } .slice.timer { background: #bf8700; }
.slice.tick { background: #cf222e; }
.slice[data-violation] { outline: 3px solid #cf222e; outline-offset: 1px; }
.slice.current { box-shadow: 0 0 0 3px #111 inset; }
.slice.dim { opacity: 0.2; }
.slice.hit { outline: 2px dashed #bf8700; }
.flight { position: absolute; height: 10px; background: #1b7c83; opacity: 0.75; border-radius: 2px; font-size: 8px; color: #fff; overflow: hidden; white-space: nowrap; }
.mark { position: absolute; top: 0; height: 14px; font-size: 9px; color: #cf222e; white-space: nowrap; pointer-events: none; }
main { display: grid; grid-template-columns: minmax(320px, 1fr) minmax(420px, 1.4fr); gap: 10px; padding: 8px 14px; }
#step h2, #state h2 { font-size: 14px; margin: 4px 0; }
#step .actor { font-weight: 600; }
table.kv { border-collapse: collapse; width: 100%; font-family: ui-monospace, monospace; font-size: 12px; }
table.kv td, table.kv th { border-bottom: 1px solid #eef0f2; padding: 1px 6px; text-align: left; vertical-align: top; }
table.kv th { font-weight: normal; color: #57606a; white-space: nowrap; }
tr.struct th { background: #f6f8fa; color: #1b1f24; font-weight: 600; padding-top: 6px; }
tr.changed td.value { background: #fff3b0; font-weight: 600; }
td.old { color: #8c959f; text-decoration: line-through; }
tr.internal th { font-style: italic; }
body:not(.internals) tr.internal { display: none; }
tr.filtered { display: none !important; }
.legend span { display: inline-block; padding: 0 4px; color: #fff; border-radius: 2px; margin-right: 2px; font-size: 11px; }
kbd { border: 1px solid #d0d7de; border-radius: 3px; padding: 0 3px; font-size: 11px; }
`;

const SCRIPT = String.raw`
(function () {
  var D = JSON.parse(document.getElementById("data").textContent);
  var L = D.steps.length;
  var root = document.documentElement;
  // Rebuild the decoded state at every step from the first and the deltas.
  var states = [];
  var labelsAt = [];
  var cur = {};
  var labels = {};
  function apply(delta) {
    var next = Object.assign({}, cur);
    delta.set.forEach(function (e) { next[e[0]] = { struct: e[1], field: e[2], value: e[3], internal: e[4] === 1 }; });
    delta.del.forEach(function (k) { delete next[k]; });
    var nl = Object.assign({}, labels);
    delta.labels.forEach(function (p) { nl[p[0]] = p[1]; });
    cur = next; labels = nl;
    states.push(cur); labelsAt.push(labels);
  }
  apply(D.init);
  D.steps.forEach(function (s) { apply(s.delta); });
  var step = 0;
  var els = {};
  var W = 22;
  // Timeline: a lane per CPU, per device, and one for timers when there are timer steps.
  var lanes = [];
  for (var c = 0; c < D.cpus; c++) lanes.push("cpu " + c);
  D.devices.forEach(function (d) { lanes.push(d); });
  if (D.steps.some(function (s) { return s.lane === "timers"; })) lanes.push("timers");
  var tl = document.getElementById("timeline");
  var laneEl = {};
  lanes.forEach(function (name) {
    var lane = document.createElement("div");
    lane.className = "lane";
    lane.setAttribute("data-lane", name);
    var n = document.createElement("div");
    n.className = "name"; n.textContent = name;
    var tr = document.createElement("div");
    tr.className = "track"; tr.style.width = (L * W + 4) + "px";
    lane.appendChild(n); lane.appendChild(tr);
    tl.appendChild(lane);
    laneEl[name] = tr;
  });
  // Task runs over each lane: which task the CPU ran, step to step (preemptions show as a new run).
  var runStart = {};
  D.steps.forEach(function (s, i) {
    var tr = laneEl[s.lane];
    var el = document.createElement("div");
    el.className = "slice " + (s.kind === "tick" ? "tick" : s.context);
    el.style.left = (i * W) + "px";
    el.setAttribute("data-step-index", String(s.n));
    if (s.n === D.violation) el.setAttribute("data-violation", "");
    el.title = "step " + s.n + ": " + s.actor + ": " + s.label + (s.switchTo ? "\ncontext switch to " + s.switchTo : "") +
      s.raises.map(function (r) { return "\nraises " + r.what + " on cpu " + r.cpu; }).join("");
    el.textContent = s.kind === "tick" ? "tick" : s.path === "user" ? s.step : s.path;
    el.addEventListener("click", function () { go(s.n); });
    tr.appendChild(el);
    els[s.n] = el;
    s.raises.forEach(function (r) {
      var t = laneEl["cpu " + r.cpu];
      if (!t) return;
      var m = document.createElement("div");
      m.className = "mark"; m.style.left = (i * W) + "px";
      m.textContent = "\u26a1" + r.what.replace(/ \(.*\)$/, "");
      t.appendChild(m);
    });
    if (s.switchTo) {
      var m2 = document.createElement("div");
      m2.className = "mark"; m2.style.left = (i * W + W - 4) + "px"; m2.style.color = "#111";
      m2.textContent = "\u21c4";
      tr.appendChild(m2);
    }
    var key = s.lane;
    var r0 = runStart[key];
    if (!r0 || r0.task !== s.task || r0.last !== prevOnLane(i)) {
      var run = document.createElement("div");
      run.className = "run";
      run.style.left = (i * W) + "px";
      run.textContent = s.task || s.lane;
      run.title = s.task ? (s.task + " (pid " + s.pid + ")") : s.lane;
      tr.appendChild(run);
      r0 = runStart[key] = { task: s.task, el: run, first: i, last: i };
    }
    r0.last = i;
    r0.el.style.width = ((i - r0.first + 1) * W - 2) + "px";
  });
  // A device's descriptors in flight: a bar from the step that queued each to the one that completed it.
  (function () {
    var open = {};
    var row = {};
    function bar(key, from, to) {
      var d = /^dev\[(\d+)\]\.wq\[(\d+)\]$/.exec(key);
      var tr = laneEl[D.devices[Number(d[1])]];
      if (!tr) return;
      var el = document.createElement("div");
      el.className = "flight";
      var r = row[d[1]] = ((row[d[1]] || 0) + 1) % 6;
      el.style.top = (18 + r * 12) + "px";
      el.style.left = (from * W) + "px";
      el.style.width = Math.max(4, (to - from) * W - 2) + "px";
      el.textContent = open[key].value;
      el.title = "wq[" + d[2] + "] " + open[key].value + ": steps " + (from + 1) + (to > L - 1 ? " to the end" : " to " + to);
      tr.appendChild(el);
    }
    function scan(delta, i) {
      delta.set.forEach(function (e) {
        if (!/^dev\[\d+\]\.wq\[\d+\]$/.test(e[0])) return;
        if (open[e[0]]) bar(e[0], open[e[0]].from, i);
        open[e[0]] = { from: i, value: e[3].replace(/^descriptor: /, "") };
      });
      delta.del.forEach(function (k) { if (open[k]) { bar(k, open[k].from, i); delete open[k]; } });
    }
    scan(D.init, 0);
    D.steps.forEach(function (s, i) { scan(s.delta, i); });
    Object.keys(open).forEach(function (k) { bar(k, open[k].from, L); });
  })();
  function prevOnLane(i) {
    for (var j = i - 1; j >= 0; j--) if (D.steps[j].lane === D.steps[i].lane) return j;
    return -1;
  }
  // Filters.
  var cpuSel = document.getElementById("f-cpu");
  var taskSel = document.getElementById("f-task");
  var fieldIn = document.getElementById("f-field");
  var searchIn = document.getElementById("f-search");
  var internals = document.getElementById("f-internal");
  for (var c2 = 0; c2 < D.cpus; c2++) { var o = document.createElement("option"); o.value = String(c2); o.textContent = "cpu " + c2; cpuSel.appendChild(o); }
  D.tasks.forEach(function (t) { var o = document.createElement("option"); o.value = t; o.textContent = t; taskSel.appendChild(o); });
  function filterLanes() {
    var v = cpuSel.value;
    lanes.forEach(function (name) {
      laneEl[name].parentNode.classList.toggle("hidden", v !== "" && name !== "cpu " + v);
    });
    var t = taskSel.value;
    D.steps.forEach(function (s) { els[s.n].classList.toggle("dim", t !== "" && s.task !== t); });
    render();
  }
  cpuSel.addEventListener("change", filterLanes);
  taskSel.addEventListener("change", filterLanes);
  fieldIn.addEventListener("input", render);
  internals.addEventListener("change", function () { document.body.classList.toggle("internals", internals.checked); });
  var hits = [];
  function stepText(s) {
    return (s.actor + " " + s.label + " " + s.changes.map(function (c) { return c.field + " " + c.old + " " + c.new; }).join(" ")).toLowerCase();
  }
  searchIn.addEventListener("input", function () {
    var q = searchIn.value.trim().toLowerCase();
    hits = [];
    D.steps.forEach(function (s) {
      var hit = q !== "" && stepText(s).indexOf(q) >= 0;
      els[s.n].classList.toggle("hit", hit);
      if (hit) hits.push(s.n);
    });
    document.getElementById("hits").textContent = q === "" ? "" : hits.length + " steps match";
  });
  searchIn.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter" || hits.length === 0) return;
    var n = hits.find(function (h) { return h > step; });
    go(n === undefined ? hits[0] : n);
  });
  // Which struct a key belongs to, for the CPU and task filters.
  function structVisible(struct) {
    var v = cpuSel.value;
    if (v !== "") {
      var m = /^(cpu|cpu_tlbstate|tlb)\[(\d+)\]$/.exec(struct);
      if (m && m[2] !== v) return false;
    }
    var t = taskSel.value;
    if (t !== "" && /^task\[/.test(struct)) {
      var lbl = labelsAt[step][struct] || "";
      if (lbl.indexOf('"' + t + '"') < 0) return false;
    }
    return true;
  }
  function esc(s) { return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;"); }
  function render() {
    var st = states[step];
    var lb = labelsAt[step];
    var changed = {};
    var prev = step > 0 ? states[step - 1] : {};
    if (step > 0) {
      D.steps[step - 1].delta.set.forEach(function (e) { changed[e[0]] = true; });
      D.steps[step - 1].delta.del.forEach(function (k) { changed[k] = true; });
    }
    var q = fieldIn.value.trim().toLowerCase();
    var groups = {};
    var order = [];
    Object.keys(st).forEach(function (k) {
      var e = st[k];
      if (!groups[e.struct]) { groups[e.struct] = []; order.push(e.struct); }
      groups[e.struct].push(k);
    });
    Object.keys(prev).forEach(function (k) {
      if (st[k] === undefined && changed[k]) {
        var e = prev[k];
        if (!groups[e.struct]) { groups[e.struct] = []; order.push(e.struct); }
        groups[e.struct].push(k);
      }
    });
    var h = ['<h2>state after step ' + step + '</h2><table class="kv">'];
    order.forEach(function (s) {
      if (!structVisible(s)) return;
      var label = lb[s] || s;
      h.push('<tr class="struct" data-struct="' + esc(s) + '"><th colspan="3">' + esc(label) + '</th></tr>');
      groups[s].forEach(function (k) {
        var e = st[k] || prev[k];
        var gone = st[k] === undefined;
        var name = label + "." + e.field;
        var cls = (changed[k] ? "changed " : "") + (e.internal ? "internal " : "") +
          (q !== "" && name.toLowerCase().indexOf(q) < 0 && k.toLowerCase().indexOf(q) < 0 ? "filtered" : "");
        var old = changed[k] && prev[k] !== undefined ? prev[k].value : "";
        h.push('<tr class="' + cls + '" data-field="' + esc(k) + '" data-name="' + esc(name) + '"><th>' + esc(e.field) +
          '</th><td class="value">' + (gone ? "(gone)" : esc(e.value)) + '</td><td class="old">' + esc(old) + '</td></tr>');
      });
    });
    h.push("</table>");
    document.getElementById("state").innerHTML = h.join("");
    var sd = document.getElementById("step");
    if (step === 0) {
      sd.innerHTML = "<h2>initial state</h2><p>Step forward with <kbd>\u2192</kbd>.</p>";
    } else {
      var s = D.steps[step - 1];
      var lines = ['<h2>step ' + s.n + (s.n === D.violation ? ' \u2014 <span style="color:#cf222e">violation</span>' : "") + '</h2>',
        '<div class="actor">' + esc(s.actor) + ' [' + esc(s.context) + ']</div>',
        '<div><code>' + esc(s.label) + '</code> (' + esc(s.transition) + ')</div>'];
      if (s.switchTo) lines.push("<div>context switch to " + esc(s.switchTo) + "</div>");
      s.raises.forEach(function (r) { lines.push("<div>raises " + esc(r.what) + " on cpu " + r.cpu + "</div>"); });
      lines.push('<table class="kv">');
      s.changes.forEach(function (c) {
        lines.push('<tr class="' + (c.internal ? "internal" : "") + '"><th>' + esc(c.field) + '</th><td class="old">' + esc(c.old) +
          '</td><td>' + esc(c.new === "" ? "(gone)" : c.new) + "</td></tr>");
      });
      lines.push("</table>");
      sd.innerHTML = lines.join("");
    }
  }
  function go(n) {
    n = Math.max(0, Math.min(L, n | 0));
    if (els[step]) els[step].classList.remove("current");
    step = n;
    root.setAttribute("data-step", String(step));
    if (els[step]) {
      els[step].classList.add("current");
      els[step].scrollIntoView({ block: "nearest", inline: "nearest" });
    }
    document.getElementById("pos").textContent = "step " + step + " / " + L;
    var want = "#step=" + step;
    if (location.hash !== want) { try { history.replaceState(null, "", want); } catch (e) { /* file: URLs may refuse */ } }
    render();
  }
  function sameActor(dir, what) {
    var base = D.steps[(step > 0 ? step : 1) - 1];
    for (var n = step + dir; n >= 1 && n <= L; n += dir) {
      var s = D.steps[n - 1];
      if (what === "cpu" ? s.lane === base.lane : s.task !== "" && s.task === base.task) return go(n);
    }
  }
  var actions = {
    "b-first": function () { go(0); }, "b-prev": function () { go(step - 1); }, "b-next": function () { go(step + 1); },
    "b-last": function () { go(L); }, "b-violation": function () { go(D.violation); },
    "b-cpu-prev": function () { sameActor(-1, "cpu"); }, "b-cpu-next": function () { sameActor(1, "cpu"); },
    "b-task-prev": function () { sameActor(-1, "task"); }, "b-task-next": function () { sameActor(1, "task"); }
  };
  Object.keys(actions).forEach(function (id) { document.getElementById(id).addEventListener("click", actions[id]); });
  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT")) return;
    if (ev.key === "ArrowRight") { go(step + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { go(step - 1); ev.preventDefault(); }
    else if (ev.key === "Home") go(0);
    else if (ev.key === "End") go(L);
    else if (ev.key === "v") go(D.violation);
    else if (ev.key === "[") sameActor(-1, "cpu");
    else if (ev.key === "]") sameActor(1, "cpu");
    else if (ev.key === "{") sameActor(-1, "task");
    else if (ev.key === "}") sameActor(1, "task");
  });
  document.querySelectorAll("#why a[data-goto]").forEach(function (a) {
    a.addEventListener("click", function () { go(Number(a.getAttribute("data-goto"))); });
  });
  function fromHash() {
    var m = /^#step=(\d+)$/.exec(location.hash);
    return m ? Number(m[1]) : null;
  }
  window.addEventListener("hashchange", function () { var n = fromHash(); if (n !== null && n !== step) go(n); });
  var h0 = fromHash();
  go(h0 === null ? D.violation : h0);
})();
`;

/** The page for one explained counterexample. */
export function viewHtml(ex: Explained, source: string): string {
  const v = ex.steps[ex.violation - 1];
  const reads = ex.reads
    .map(
      (r) =>
        `<tr><td>${esc(r.field)}</td><td>= ${esc(r.value)}</td><td>${
          r.since === 0
            ? "since the start"
            : `<a data-goto="${r.since}">step ${r.since}</a>: ${esc(ex.steps[r.since - 1].actor)}: ${esc(ex.steps[r.since - 1].label)}${r.before !== "" ? `, was ${esc(r.before)}` : ""}`
        }</td></tr>`,
    )
    .join("");
  const data = {
    scenario: ex.scenario,
    cpus: ex.cpus,
    devices: ex.devices,
    tasks: ex.tasks,
    violation: ex.violation,
    init: ex.init,
    steps: ex.steps,
  };
  const legend = [
    ["user", "#2da44e"],
    ["kernel", "#0969da"],
    ["idle", "#8c959f"],
    ["interrupt", "#d4751c"],
    ["NMI", "#8250df"],
    ["device", "#1b7c83"],
    ["timer", "#bf8700"],
    ["tick", "#cf222e"],
  ]
    .map(([n, c]) => `<span style="background:${c}">${n}</span>`)
    .join("");
  return `<!doctype html>
<html lang="en" data-step="0">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>asidlab view: ${esc(ex.scenario)}: ${esc(ex.property)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${esc(ex.scenario)}: <span style="color:#cf222e">${esc(ex.property)}</span> at step ${ex.violation} of ${ex.steps.length} <small style="font-weight:normal;color:#57606a">(${esc(source)})</small></h1>
<div id="why">
<div class="rule">The rule: ${esc(ex.rule)}.</div>
<div class="broken">Broken at <a data-goto="${ex.violation}">step ${ex.violation}</a> (${esc(v.actor)}: ${esc(v.label)}): ${esc(ex.message)}.</div>
<div>The fields it reads there:</div>
<table>${reads}</table>
</div>
</header>
<div id="controls">
<button id="b-first" title="initial state (Home)">start</button>
<button id="b-prev" title="previous step (&larr;)">&#x25C0;</button>
<span id="pos"></span>
<button id="b-next" title="next step (&rarr;)">&#x25B6;</button>
<button id="b-last" title="last step (End)">end</button>
<button id="b-violation" title="the violating step (v)">violation</button>
<button id="b-cpu-prev" title="previous step of this CPU or device ([)">&#x2190; same CPU</button>
<button id="b-cpu-next" title="next step of this CPU or device (])">same CPU &#x2192;</button>
<button id="b-task-prev" title="previous step of this task ({)">&#x2190; same task</button>
<button id="b-task-next" title="next step of this task (})">same task &#x2192;</button>
<label>CPU <select id="f-cpu"><option value="">all</option></select></label>
<label>task <select id="f-task"><option value="">all</option></select></label>
<label>field <input id="f-field" placeholder="e.g. pasid" size="10"></label>
<label>search <input id="f-search" placeholder="steps: function, field, value" size="18"></label><span id="hits"></span>
<label><input type="checkbox" id="f-internal"> model internals</label>
<span class="legend">${legend}</span>
</div>
<div id="timeline"></div>
<main>
<section id="step"></section>
<section id="state"></section>
</main>
<script type="application/json" id="data">${scriptJson(data)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
