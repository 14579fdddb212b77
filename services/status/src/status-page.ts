/*
 * The status page: one HTML file, its stylesheet and script, no external assets (an air-gapped hypervisor must
 * show it). The script reads /api/fleet every 5 s and a domain's /api/history when it is picked, and writes every
 * value with textContent: names come from the bus, never markup.
 */

export const statusPageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>VM-Babysitter — fleet status</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<header><h1>VM-Babysitter</h1><span id="summary">loading…</span><span id="updated"></span></header>
<main>
<table id="fleet">
<thead><tr><th>host</th><th>domain</th><th>state</th><th>last good backup</th><th>age</th><th>level</th><th>size</th><th>chain</th><th>archives</th><th>mirror</th><th>last drill</th><th>next run</th><th>attention</th></tr></thead>
<tbody></tbody>
</table>
<section id="history" hidden>
<h2 id="history-title"></h2>
<svg id="chart" viewBox="0 0 720 220" role="img" aria-label="backup sizes and durations"></svg>
<p class="legend"><span class="bar-key"></span> size written <span class="line-key"></span> duration <span class="fail-key"></span> failed run</p>
</section>
</main>
<script src="/app.js"></script>
</body>
</html>
`;

export const statusPageCss = `body{font:14px system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{display:flex;gap:1.5em;align-items:baseline;padding:.8em 1.2em;background:#1d3557;color:#fff}
header h1{font-size:1.2em;margin:0}
main{padding:1em 1.2em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6ea;white-space:nowrap}
td.attention{white-space:normal;color:#a4161a}
tr.domain{cursor:pointer}
tr.domain:hover{background:#eef3fb}
tr.down td{color:#a4161a}
tr.ok td.age{color:#2b9348}
tr.breached td.age{color:#a4161a;font-weight:600}
section{margin-top:1.5em;background:#fff;padding:1em}
svg{width:100%;max-width:900px;height:auto}
.bar{fill:#7aa6d8}.bar.failed{fill:#e5383b;opacity:.35}.line{fill:none;stroke:#1d3557;stroke-width:2}
.axis{font-size:10px;fill:#555}
.legend span{display:inline-block;width:1em;height:.6em;margin:0 .3em 0 1em}
.bar-key{background:#7aa6d8}.line-key{background:#1d3557}.fail-key{background:#e5383b;opacity:.35}
`;

export const statusPageJs = `"use strict";
const $ = (id) => document.getElementById(id);
const svgNs = "http://www.w3.org/2000/svg";
function age(iso) {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min";
  const h = Math.floor(m / 60);
  return h < 48 ? h + " h " + (m % 60) + " min" : Math.floor(h / 24) + " d " + (h % 24) + " h";
}
function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
  return (i ? bytes.toFixed(1) : String(bytes)) + " " + units[i];
}
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}
function render(fleet) {
  const body = $("fleet").tBodies[0];
  body.replaceChildren();
  let domains = 0, attention = 0, down = 0;
  for (const h of fleet.hosts) {
    if (!h.alive) down++;
    if (h.domains.length === 0) {
      const row = body.insertRow();
      row.className = h.alive ? "" : "down";
      cell(row, h.host); cell(row, "(no domains)");
    }
    for (const d of h.domains) {
      domains++;
      if (d.attention.length) attention++;
      const row = body.insertRow();
      row.className = "domain " + (!h.alive ? "down" : d.rpo.breached ? "breached" : d.lastBackup ? "ok" : "");
      row.dataset.host = h.host;
      row.dataset.domain = d.domain;
      const b = d.lastBackup;
      cell(row, h.host); cell(row, d.domain); cell(row, d.state + (d.scheduled ? "" : " (not scheduled)"));
      cell(row, b ? new Date(b.at).toLocaleString() : "never"); cell(row, b ? age(b.at) : "", "age");
      cell(row, b ? b.level : ""); cell(row, b ? size(b.bytesWritten) : "");
      cell(row, String(d.chainLength)); cell(row, String(d.archives));
      cell(row, d.mirror ? d.mirror.state + (d.mirror.lastSyncAt ? " (" + age(d.mirror.lastSyncAt) + " ago)" : "") : "");
      cell(row, d.lastDrill ? (d.lastDrill.ok ? "ok" : "FAILED") + " " + age(d.lastDrill.at) + " ago" : "");
      cell(row, d.nextRun ? new Date(d.nextRun).toLocaleString() : "");
      cell(row, d.attention.join("; "), "attention");
      row.addEventListener("click", () => showHistory(h.host, d.domain));
    }
  }
  $("summary").textContent = fleet.hosts.length + " hosts (" + down + " silent), " + domains + " domains, " + attention + " need attention";
  $("updated").textContent = "updated " + new Date(fleet.at).toLocaleTimeString();
}
function el(name, attrs, text) {
  const e = document.createElementNS(svgNs, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}
let shown;
async function showHistory(host, domain) {
  shown = { host, domain };
  const r = await fetch("/api/history?host=" + encodeURIComponent(host) + "&domain=" + encodeURIComponent(domain));
  if (!r.ok) return;
  const h = await r.json();
  $("history").hidden = false;
  $("history-title").textContent = domain + " on " + host + ": last " + h.runs.length + " runs";
  const chart = $("chart");
  chart.replaceChildren();
  const W = 720, H = 200, n = Math.max(h.runs.length, 1), bw = W / n;
  const maxBytes = Math.max(1, ...h.runs.map((x) => x.bytesWritten));
  const maxMs = Math.max(1, ...h.runs.map((x) => x.durationMs));
  const points = [];
  h.runs.forEach((x, i) => {
    // A failed run wrote little or nothing: a full-height faint band, so it is seen at all.
    const bh = x.outcome === "failed" ? H - 20 : (x.bytesWritten / maxBytes) * (H - 20);
    const bar = el("rect", { x: i * bw + 2, y: H - bh, width: Math.max(1, bw - 4), height: Math.max(1, bh), class: "bar" + (x.outcome === "failed" ? " failed" : "") });
    bar.appendChild(el("title", {}, new Date(x.at).toLocaleString() + ": " + x.outcome + " " + (x.level || "") + ", " + size(x.bytesWritten) + ", " + (x.durationMs / 1000).toFixed(1) + " s"));
    chart.appendChild(bar);
    points.push((i * bw + bw / 2).toFixed(1) + "," + (H - (x.durationMs / maxMs) * (H - 20)).toFixed(1));
  });
  if (points.length) chart.appendChild(el("polyline", { points: points.join(" "), class: "line" }));
  chart.appendChild(el("text", { x: 2, y: 12, class: "axis" }, "max " + size(maxBytes) + " / " + (maxMs / 1000).toFixed(1) + " s"));
}
async function refresh() {
  try {
    const r = await fetch("/api/fleet");
    if (r.ok) render(await r.json());
    if (shown) await showHistory(shown.host, shown.domain);
  } catch (e) {
    $("updated").textContent = "cannot reach the status service: " + e;
  }
}
refresh();
setInterval(refresh, 5000);
`;
