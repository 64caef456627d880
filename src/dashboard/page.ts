/**
 * The dashboard's page: one self-contained HTML document (styles and script inline, no CDN, no
 * build step), served by `server.ts`. The script loads `/api/state`, then follows `/api/stream`
 * (Server-Sent Events: `tasks`, `workers`, `stats`) and redraws what changed. Charts are SVG drawn
 * here. Every string from the broker is escaped before it reaches the DOM.
 */
export const PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Celeriac dashboard</title>
<style>
:root { --bg:#f7f7f5; --fg:#1d2421; --muted:#6b7570; --line:#dde2df; --accent:#2f7d4f; --fail:#b83a3a; --warn:#b7791f; --card:#fff; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
header { display:flex; align-items:center; gap:16px; padding:10px 20px; background:#16321f; color:#e8f3ec; }
header h1 { font-size:17px; margin:0; }
header .broker { color:#a9c9b4; font-family: ui-monospace, monospace; font-size:12px; }
#conn { margin-left:auto; font-size:12px; padding:2px 8px; border-radius:9px; background:#555; }
#conn.live { background: var(--accent); }
main { padding: 14px 20px; display:grid; gap:14px; grid-template-columns: 1fr 1fr; }
section { background: var(--card); border:1px solid var(--line); border-radius:6px; padding:10px 12px; min-width:0; overflow-x:auto; }
#d-id { text-transform:none; font-family: ui-monospace, monospace; }
section.wide { grid-column: 1 / -1; }
h2 { font-size:13px; text-transform:uppercase; letter-spacing:.04em; color: var(--muted); margin:0 0 8px; }
table { width:100%; border-collapse:collapse; font-size:13px; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); white-space:nowrap; overflow:hidden; text-overflow:ellipsis; max-width:260px; }
th { color: var(--muted); font-weight:600; }
td.num, th.num { text-align:right; }
tr.task { cursor:pointer; }
tr.task:hover, tr.task.selected { background:#eef5f0; }
.badge { display:inline-block; padding:1px 7px; border-radius:8px; font-size:11px; font-weight:600; color:#fff; background:#888; }
.SUCCESS { background: var(--accent); } .FAILURE, .REJECTED { background: var(--fail); } .RETRY { background: var(--warn); }
.STARTED { background:#2b6cb0; } .RECEIVED { background:#5a67d8; } .PENDING { background:#888; } .REVOKED { background:#4a4a4a; }
.online { color: var(--accent); font-weight:600; } .offline { color: var(--fail); font-weight:600; }
.filters { display:flex; gap:8px; margin-bottom:8px; flex-wrap:wrap; }
.filters input, .filters select { padding:4px 6px; border:1px solid var(--line); border-radius:4px; font:inherit; }
button { font:inherit; padding:3px 10px; border-radius:4px; border:1px solid var(--line); background:#fff; cursor:pointer; }
button.danger { color: var(--fail); border-color:#e7b9b9; }
button:disabled { opacity:.5; cursor:default; }
.charts { display:grid; grid-template-columns: repeat(3, 1fr); gap:12px; }
.chart svg { width:100%; height:130px; background:#fbfcfb; border:1px solid var(--line); border-radius:4px; }
.chart .legend { font-size:11px; color: var(--muted); }
#detail { display:none; }
#detail.open { display:block; }
#detail dl { display:grid; grid-template-columns: 110px 1fr; gap:4px 10px; margin:0 0 8px; }
#detail dt { color: var(--muted); }
#detail dd { margin:0; font-family: ui-monospace, monospace; font-size:12px; white-space:pre-wrap; word-break:break-all; }
#d-meta:empty { display:none; }
#detail pre { background:#f3f4f3; padding:8px; overflow:auto; max-height:240px; font-size:12px; }
#action-msg { margin-left:10px; color: var(--muted); }
.muted { color: var(--muted); }
</style>
</head>
<body>
<header><h1>Celeriac</h1><span class="broker" id="broker"></span><span id="conn">connecting…</span></header>
<main>
<section id="workers-section"><h2>Workers</h2>
<table id="workers"><thead><tr><th>worker</th><th>status</th><th>software</th><th class="num">concurrency</th><th class="num">active</th><th class="num">processed</th><th class="num" title="load average over 1, 5 and 15 minutes">load</th><th class="num">heartbeat</th></tr></thead><tbody></tbody></table>
</section>
<section id="queues-section"><h2>Queues</h2>
<table id="queues"><thead><tr><th>queue</th><th class="num">depth</th><th class="num">in/s</th><th class="num">out/s</th><th></th></tr></thead><tbody></tbody></table>
</section>
<section class="wide"><h2>Over time (last 10 minutes, 5 s buckets)</h2>
<div class="charts">
<div class="chart"><svg id="chart-throughput" viewBox="0 0 300 120" preserveAspectRatio="none"></svg><div class="legend">throughput: succeeded / 5 s</div></div>
<div class="chart"><svg id="chart-latency" viewBox="0 0 300 120" preserveAspectRatio="none"></svg><div class="legend">runtime p50 / p95 / p99 (s) <span id="latency-max"></span></div></div>
<div class="chart"><svg id="chart-failures" viewBox="0 0 300 120" preserveAspectRatio="none"></svg><div class="legend">failures and retries / 5 s</div></div>
</div>
</section>
<section class="wide" id="detail"><h2>Task <span id="d-id"></span></h2>
<dl id="d-fields"></dl>
<div id="d-error"></div>
<pre id="d-meta"></pre>
<div><button id="btn-revoke" class="danger">Revoke</button> <button id="btn-retry">Retry</button> <button id="btn-close">Close</button><span id="action-msg"></span></div>
</section>
<section class="wide"><h2>Tasks <span class="muted" id="task-count"></span></h2>
<div class="filters">
<select id="f-state"><option value="">any state</option><option>PENDING</option><option>RECEIVED</option><option>STARTED</option><option>SUCCESS</option><option>FAILURE</option><option>RETRY</option><option>REVOKED</option><option>REJECTED</option></select>
<input id="f-name" placeholder="task name">
<input id="f-worker" placeholder="worker">
<input id="f-search" placeholder="task id or args">
</div>
<table id="tasks"><thead><tr><th>state</th><th>name</th><th>id</th><th>args</th><th class="num">runtime</th><th>worker</th><th>received</th></tr></thead><tbody></tbody></table>
</section>
</main>
<script>
"use strict";
var tasks = new Map(), workers = new Map(), stats = { queues: [], series: [], now: Date.now() / 1000 };
var selected = null, renderQueued = false;
var $ = function (id) { return document.getElementById(id); };
function esc(v) { return String(v == null ? "" : v).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; }); }
function fmtTime(ts) { return ts ? new Date(ts * 1000).toLocaleTimeString() : ""; }
function fmtRate(r) { return r == null ? "–" : r.toFixed(1); }
function fmtSecs(s) { return s == null ? "" : (s < 1 ? (s * 1000).toFixed(1) + " ms" : s.toFixed(2) + " s"); }
function lastTouch(t) { return t.finished || t.started || t.received || t.sent || 0; }
function schedule() { if (!renderQueued) { renderQueued = true; requestAnimationFrame(function () { renderQueued = false; render(); }); } }

function renderWorkers() {
  var now = Date.now() / 1000, rows = [];
  Array.from(workers.values()).sort(function (a, b) { return a.hostname.localeCompare(b.hostname); }).forEach(function (w) {
    var alive = w.online && now - w.lastHeartbeat < Math.max(w.freq, 1) * 2.5;
    rows.push('<tr data-worker="' + esc(w.hostname) + '"><td>' + esc(w.hostname) + '</td><td class="' + (alive ? "online" : "offline") + '">' + (alive ? "online" : "offline") +
      '</td><td>' + esc((w.sw_ident || "") + " " + (w.sw_ver || "")) + '</td><td class="num">' + (w.concurrency == null ? "–" : esc(w.concurrency)) + '</td><td class="num">' + esc(w.active) + '</td><td class="num">' + esc(w.processed) +
      '</td><td class="num" title="' + esc((w.loadavg || []).join(" ")) + '">' + esc((w.loadavg || [])[0]) + '</td><td class="num">' + Math.max(0, now - w.lastHeartbeat).toFixed(0) + ' s</td></tr>');
  });
  $("workers").tBodies[0].innerHTML = rows.join("") || '<tr><td colspan="8" class="muted">no worker events yet (start workers with -E / events: true)</td></tr>';
}

function renderQueues() {
  $("queues").tBodies[0].innerHTML = stats.queues.map(function (q) {
    return '<tr data-queue="' + esc(q.name) + '"><td>' + esc(q.name) + '</td><td class="num depth">' + (q.depth == null ? "?" : q.depth) + '</td><td class="num">' + fmtRate(q.rateIn) +
      '</td><td class="num">' + fmtRate(q.rateOut) + '</td><td><button class="danger purge" data-queue="' + esc(q.name) + '">purge</button></td></tr>';
  }).join("") || '<tr><td colspan="5" class="muted">no queues</td></tr>';
}

function matches(t) {
  var st = $("f-state").value, name = $("f-name").value.trim(), worker = $("f-worker").value.trim(), q = $("f-search").value.trim();
  if (st && t.state !== st) return false;
  if (name && (t.name || "").indexOf(name) < 0) return false;
  if (worker && (t.worker || "").indexOf(worker) < 0) return false;
  if (q && t.uuid.indexOf(q) < 0 && (t.args || "").indexOf(q) < 0 && (t.kwargs || "").indexOf(q) < 0) return false;
  return true;
}

function renderTasks() {
  var list = Array.from(tasks.values()).filter(matches).sort(function (a, b) { return lastTouch(b) - lastTouch(a); });
  $("task-count").textContent = "(" + list.length + " of " + tasks.size + ")";
  $("tasks").tBodies[0].innerHTML = list.slice(0, 300).map(function (t) {
    return '<tr class="task' + (t.uuid === selected ? " selected" : "") + '" data-task="' + esc(t.uuid) + '"><td class="state"><span class="badge ' + esc(t.state) + '">' + esc(t.state) + '</span></td><td>' +
      esc(t.name) + '</td><td title="' + esc(t.uuid) + '">' + esc(t.uuid.slice(0, 8)) + '</td><td>' + esc(t.args) + '</td><td class="num">' + fmtSecs(t.runtime) + '</td><td>' + esc(t.worker) +
      '</td><td>' + fmtTime(t.received || t.sent) + '</td></tr>';
  }).join("");
}

function renderDetail() {
  var box = $("detail");
  if (!selected || !tasks.has(selected)) { box.className = ""; return; }
  var t = tasks.get(selected);
  box.className = "open";
  $("d-id").textContent = t.uuid;
  var f = [["state", '<span class="badge ' + esc(t.state) + '" id="d-state">' + esc(t.state) + "</span>"], ["name", esc(t.name)], ["args", esc(t.args)], ["kwargs", esc(t.kwargs)],
    ["result", esc(t.result)], ["exception", esc(t.exception)], ["retries", esc(t.retries)], ["worker", esc(t.worker)], ["runtime", fmtSecs(t.runtime)],
    ["timeline", t.timeline.map(function (e) { return fmtTime(e.timestamp) + "  " + esc(e.type) + "  " + esc(e.hostname); }).join("\n")]];
  $("d-fields").innerHTML = f.map(function (p) { return "<dt>" + p[0] + "</dt><dd>" + p[1] + "</dd>"; }).join("");
  $("d-error").innerHTML = t.traceback ? "<pre>" + esc(t.traceback) + "</pre>" : "";
  var ready = ["SUCCESS", "FAILURE", "REVOKED", "REJECTED"].indexOf(t.state) >= 0;
  $("btn-revoke").disabled = ready;
  $("btn-retry").disabled = ["FAILURE", "REVOKED", "REJECTED"].indexOf(t.state) < 0;
}

function line(points, key, max, color) {
  if (!points.length) return "";
  var step = 300 / Math.max(1, points.length - 1);
  var d = points.map(function (p, i) { var v = p[key] == null ? 0 : p[key]; return (i ? "L" : "M") + (i * step).toFixed(1) + " " + (118 - (v / max) * 112).toFixed(1); }).join(" ");
  return '<path d="' + d + '" fill="none" stroke="' + color + '" stroke-width="1.5" vector-effect="non-scaling-stroke"/>';
}
function maxOf(points, keys) { var m = 0; points.forEach(function (p) { keys.forEach(function (k) { if (p[k] != null && p[k] > m) m = p[k]; }); }); return m || 1; }
function renderCharts() {
  var s = stats.series || [];
  $("chart-throughput").innerHTML = line(s, "succeeded", maxOf(s, ["succeeded"]), "#2f7d4f");
  var lm = maxOf(s, ["p50", "p95", "p99"]);
  $("chart-latency").innerHTML = line(s, "p50", lm, "#2b6cb0") + line(s, "p95", lm, "#b7791f") + line(s, "p99", lm, "#b83a3a");
  $("latency-max").textContent = "max " + lm.toFixed(3) + " s";
  var fm = maxOf(s, ["failed", "retried"]);
  $("chart-failures").innerHTML = line(s, "failed", fm, "#b83a3a") + line(s, "retried", fm, "#b7791f");
}

function render() { renderWorkers(); renderQueues(); renderTasks(); renderDetail(); renderCharts(); }

function action(path, body) {
  $("action-msg").textContent = "…";
  return fetch(path, { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json", "x-celeriac-action": "1" }, body: JSON.stringify(body || {}) })
    .then(function (r) { return r.json().then(function (j) { $("action-msg").textContent = j.ok || j.error || r.statusText; return j; }); })
    .catch(function (e) { $("action-msg").textContent = String(e); });
}

$("tasks").addEventListener("click", function (e) {
  var tr = e.target.closest("tr[data-task]");
  if (!tr) return;
  selected = tr.getAttribute("data-task");
  $("action-msg").textContent = "";
  $("d-meta").textContent = "";
  schedule();
  // What the result store holds (the full result, and with result_extended the original args).
  var id = selected;
  fetch("/api/tasks/" + encodeURIComponent(id), { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (j) {
    if (!j || !j.meta || selected !== id) return;
    $("d-meta").textContent = "stored result (" + j.meta.status + "): " + JSON.stringify(j.meta.result) + (j.meta.args ? "\nargs " + JSON.stringify(j.meta.args) + " kwargs " + JSON.stringify(j.meta.kwargs || {}) : "");
  });
});
$("queues").addEventListener("click", function (e) {
  var b = e.target.closest("button.purge");
  if (!b) return;
  var q = b.getAttribute("data-queue");
  var typed = window.prompt("Delete every message waiting in queue " + q + "? Type the queue name to confirm.");
  if (typed !== q) return;
  action("/api/queues/" + encodeURIComponent(q) + "/purge", { confirm: typed });
});
$("btn-revoke").addEventListener("click", function () { if (selected) action("/api/tasks/" + encodeURIComponent(selected) + "/revoke", {}); });
$("btn-retry").addEventListener("click", function () { if (selected) action("/api/tasks/" + encodeURIComponent(selected) + "/retry", {}); });
$("btn-close").addEventListener("click", function () { selected = null; schedule(); });
["f-state", "f-name", "f-worker", "f-search"].forEach(function (id) { $(id).addEventListener("input", schedule); });

function applyTasks(list) { list.forEach(function (t) { tasks.set(t.uuid, t); }); schedule(); }
function applyWorkers(list) { list.forEach(function (w) { workers.set(w.hostname, w); }); schedule(); }

function loadState() {
  return fetch("/api/state", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
    $("broker").textContent = s.broker;
    applyTasks(s.tasks); applyWorkers(s.workers);
    stats = { queues: s.queues, series: s.series, now: s.now };
    schedule();
  });
}
loadState().then(function () {
  var es = new EventSource("/api/stream"), lost = false;
  // After a lost connection, changes made meanwhile come from a fresh snapshot.
  es.onopen = function () { $("conn").textContent = "live"; $("conn").className = "live"; if (lost) { lost = false; loadState(); } };
  es.onerror = function () { lost = true; $("conn").textContent = "reconnecting…"; $("conn").className = ""; };
  es.addEventListener("tasks", function (e) { applyTasks(JSON.parse(e.data)); });
  es.addEventListener("workers", function (e) { applyWorkers(JSON.parse(e.data)); });
  es.addEventListener("stats", function (e) { stats = JSON.parse(e.data); schedule(); });
});
setInterval(renderWorkers, 1000);
</script>
</body>
</html>
`;
