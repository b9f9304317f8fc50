// Draws a run's page from its data (results/charts.rs) with uPlot: the HTML report (the data
// inline) and the live dashboard (the data, then a point a second from /events).
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#17becf", "#bcbd22", "#7f7f7f"];
const HEADS = ["requests", "ok", "failed", "mean ms", "p50", "p90", "p95", "p99", "max"];

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function num(v, digits) {
  if (v === null || v === undefined) return "";
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) && digits === undefined ? v.toLocaleString("en") : v.toFixed(digits ?? 2);
}

function table(heads, rows, classOf) {
  const t = el("table", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h))));
  for (const r of rows) {
    t.append(el("tr", {}, ...r.map((c, i) => el("td", classOf ? { class: classOf(r, i) } : {},
      typeof c === "number" && !Number.isInteger(c) ? num(c) : num(c)))));
  }
  return t;
}

function width() {
  return Math.max(320, Math.min(1000, document.body.clientWidth - 40));
}

// A line chart over the run's time: `lines` are {label, values, color, width, dash}.
function lineChart(box, title, unit, xs, lines, timeAxis) {
  const opts = {
    title, width: width(), height: 240,
    scales: {
      x: { time: timeAxis, range: (u, min, max) => (min === max ? [min - 1, max + 1] : [min, max]) },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      { stroke: "#444", grid: { stroke: "#eee" }, ticks: { stroke: "#ccc" } },
      { label: unit, stroke: "#444", grid: { stroke: "#eee" }, ticks: { stroke: "#ccc" }, size: 64 },
    ],
    series: [{ label: timeAxis ? "time" : "s" }].concat(lines.map((l, i) => ({
      label: l.label, stroke: l.color || COLORS[i % COLORS.length], width: l.width || 1.5,
      dash: l.dash, points: { show: xs.length < 3 },
    }))),
  };
  return new uPlot(opts, [xs].concat(lines.map((l) => l.values)), box);
}

// Bars over `labels` (addresses, latency buckets): one series.
function barChart(box, title, unit, labels, values, color) {
  const xs = labels.map((_, i) => i);
  const opts = {
    title, width: width(), height: 240,
    scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] } },
    axes: [
      { stroke: "#444", grid: { show: false }, ticks: { stroke: "#ccc" },
        values: (u, splits) => splits.map((s) => Number.isInteger(s) ? (labels[s] ?? "") : "") },
      { label: unit, stroke: "#444", grid: { stroke: "#eee" }, size: 64 },
    ],
    series: [{ label: "", value: (u, i) => labels[i] ?? "" },
      { label: unit, fill: color + "cc", stroke: color, paths: uPlot.paths.bars({ size: [0.9, 60] }), points: { show: false } }],
  };
  return new uPlot(opts, [xs, values], box);
}

class Page {
  constructor(root, data, live) {
    this.root = root;
    this.live = live;
    this.cols = { t: [], rps: [], errors: [], p50: [], p90: [], p95: [], p99: [], users: [] };
    this.tenants = {};
    this.actions = {};
    this.charts = [];
    this.data = data;
    this.addPoints(data.points || []);
    this.render();
  }

  addPoints(points) {
    for (const p of points) {
      const n = this.cols.t.length;
      for (const k of Object.keys(this.cols)) this.cols[k].push(p[k] ?? null);
      for (const [group, src] of [[this.tenants, p.tenants], [this.actions, p.actions]]) {
        for (const name of Object.keys(src || {})) {
          if (!group[name]) group[name] = new Array(n).fill(null);
        }
        for (const [name, values] of Object.entries(group)) values.push(src && name in src ? src[name] : null);
      }
    }
  }

  xs() {
    const start = this.data.started_unix;
    return start ? this.cols.t.map((t) => start + t) : this.cols.t.slice();
  }

  // The page: its head, the charts over time, the rest (each redrawn on its own).
  render() {
    this.root.replaceChildren();
    this.head = el("div");
    this.over = el("div");
    this.rest = el("div");
    this.root.append(this.head, el("h2", {}, "Over time"), this.over, this.rest);
    this.renderHead();
    this.drawSeries();
    this.renderRest();
  }

  renderHead() {
    const d = this.data;
    this.head.replaceChildren();
    this.head.append(el("h1", {}, d.title + (this.live ? " (live)" : "")));
    const when = el("p", { class: "when" });
    if (d.started_at) {
      when.append(el("time", { datetime: d.started_at }, d.started_at), " to ",
        d.ended_at ? el("time", { datetime: d.ended_at }, d.ended_at) : "now");
    }
    this.head.append(when);
    this.head.append(this.summary());
    const config = table(["", ""], d.config || []);
    config.className = "config";
    this.head.append(el("h2", {}, "Configuration"), config);
    if ((d.thresholds || []).length) {
      this.head.append(el("h2", {}, "Thresholds"), table(["metric", "threshold", "observed", "verdict"],
        d.thresholds.map((t) => [t.metric, t.threshold, t.observed === null ? "no data" : num(t.observed, 4), t.ok ? "ok" : "FAILED"]),
        (r, i) => (i === 3 ? (r[3] === "ok" ? "ok" : "fail") : "")));
    }
  }

  renderRest() {
    for (const u of this.restCharts || []) u.destroy();
    this.restCharts = [];
    this.rest.replaceChildren();
    this.rest.append(el("h2", {}, "Latency and status codes"));
    this.drawHistogram();
    this.rest.append(el("h3", {}, "Status codes"), table(["status", "requests"], this.data.status || []));
    this.rest.append(el("h2", {}, "Requests"));
    this.tables();
  }

  summary() {
    const s = this.data.summary || {};
    const rate = ((s.success_rate || 0) * 100).toFixed(1);
    const parts = [`${num(s.elapsed_s, 1)} s`, `users ${num(s.users_spawned)} spawned, ${num(s.users_finished)} finished`,
      `${num(s.requests)} requests, ${num(s.ok)} ok, ${num(s.failed)} failed (${rate}% success)`,
      `${num(s.rps, 1)} req/s`, `${num(s.iterations)} iterations` + (s.dropped_iterations ? `, ${num(s.dropped_iterations)} dropped` : "")];
    if (s.interrupted) parts.push("interrupted");
    return el("p", { class: "summary" }, parts.join("; "));
  }

  // The group names the series charts were drawn with: new ones mean a redraw.
  keys() {
    return JSON.stringify([Object.keys(this.tenants), Object.keys(this.actions)]);
  }

  drawSeries() {
    for (const u of this.charts) u.destroy();
    this.charts = [];
    this.over.replaceChildren();
    this.drawnKeys = this.keys();
    const xs = this.xs();
    const timeAxis = !!this.data.started_unix;
    const c = this.cols;
    const box = () => { const b = el("div", { class: "chart" }); this.over.append(b); return b; };
    const groupLines = (g) => Object.entries(g).slice(0, COLORS.length).map(([label, values]) => ({ label, values }));
    this.charts.push(lineChart(box(), "Requests and errors per second", "/s", xs,
      [{ label: "requests", values: c.rps, color: "#1f77b4" }, { label: "errors", values: c.errors, color: "#d62728" }], timeAxis));
    this.charts.push(lineChart(box(), "Latency", "ms", xs, [
      { label: "p50", values: c.p50, color: "#2ca02c" },
      { label: "p90", values: c.p90, color: "#ff7f0e" },
      { label: "p95", values: c.p95, color: "#000000", width: 2.5 },
      { label: "p99", values: c.p99, color: "#d62728", dash: [6, 4] }], timeAxis));
    this.charts.push(lineChart(box(), "Users active", "users", xs, [{ label: "active", values: c.users, color: "#9467bd" }], timeAxis));
    this.charts.push(lineChart(box(), "Requests per second by tenant", "/s", xs, groupLines(this.tenants), timeAxis));
    this.charts.push(lineChart(box(), "p90 latency by action", "ms", xs, groupLines(this.actions), timeAxis));
  }

  // The series charts' data as they were drawn (same lines, in the same order).
  seriesData() {
    const c = this.cols;
    const groups = (g) => Object.values(g).slice(0, COLORS.length);
    return [[c.rps, c.errors], [c.p50, c.p90, c.p95, c.p99], [c.users], groups(this.tenants), groups(this.actions)];
  }

  drawHistogram() {
    const h = this.data.histogram || [];
    const b = el("div", { class: "chart" });
    this.rest.append(b);
    if (!h.length) { b.append(el("p", {}, "No requests.")); return; }
    const labels = h.map((x) => num(x[0], x[0] < 10 ? 2 : 0));
    this.restCharts.push(barChart(b, "Latency histogram (ms, log buckets)", "requests", labels, h.map((x) => x[2]), "#1f77b4"));
  }

  tables() {
    const t = this.data.tables || {};
    this.rest.append(el("h3", {}, "by action"), table(["action"].concat(HEADS), t.action || []));
    this.rest.append(el("h3", {}, "by tenant"), table(["tenant"].concat(HEADS), t.tenant || []));
    const src = t.source || { rows: [], of: 0 };
    const b = el("div", { class: "chart" });
    this.rest.append(el("h3", {}, "Requests per source address"), b);
    if (src.rows.length) {
      this.restCharts.push(barChart(b, "", "requests", src.rows.map((r) => r[0]), src.rows.map((r) => r[2]), "#1f77b4"));
    }
    const shown = src.rows.length < src.of ? ` (the ${src.rows.length} busiest of ${num(src.of)})` : "";
    this.rest.append(el("h3", {}, "by source address" + shown), table(["source address", "tenant"].concat(HEADS), src.rows));
    if ((this.data.checks || []).length) {
      this.rest.append(el("h2", {}, "Checks"), table(["action", "check", "passed", "of", "rate"],
        this.data.checks.map((c) => [c.action, c.name, c.passed, c.of, c.of ? (100 * c.passed / c.of).toFixed(1) + "%" : "0.0%"])));
    }
    if ((this.data.errors || []).length) {
      this.rest.append(el("h2", {}, "Errors"), table(["error", "count"], this.data.errors));
    }
    const ws = this.data.websocket;
    if (ws) {
      this.rest.append(el("h2", {}, "WebSocket"), el("p", { class: "summary" },
        `${num(ws.sessions)} sessions (${num(ws.failed_openings)} openings refused), connecting p50 ${num(ws.connecting_p50_ms, 2)} ms, ` +
        `p95 ${num(ws.connecting_p95_ms, 2)} ms; messages sent ${num(ws.msgs_sent)}, received ${num(ws.msgs_received)}`),
        table(["step", "count", "failed", "p50 ms", "p95 ms", "p99 ms"], ws.steps));
    }
  }

  // The dashboard: new points and the latest totals.
  update(msg) {
    this.addPoints(msg.points || []);
    Object.assign(this.data, msg, { points: [] });
    this.renderHead();
    if (this.keys() !== this.drawnKeys) {
      this.drawSeries();
    } else {
      const xs = this.xs();
      this.seriesData().forEach((lines, i) => this.charts[i].setData([xs].concat(lines)));
    }
    this.renderRest();
  }
}

function showReport() {
  const data = JSON.parse(document.getElementById("data").textContent);
  return new Page(document.getElementById("app"), data, false);
}

function showLive() {
  let page = null;
  const status = document.getElementById("status");
  const source = new EventSource("events");
  source.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (!page) page = new Page(document.getElementById("app"), msg, true);
    else page.update(msg);
    status.textContent = "updated " + new Date().toLocaleTimeString();
  };
  source.addEventListener("end", () => {
    status.textContent = "the run has ended";
    source.close();
  });
  source.onerror = () => { status.textContent = "disconnected"; };
}
