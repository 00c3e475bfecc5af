// flowmatrix dashboard: vanilla JavaScript, no dependency. Reads the MG's /api/v1 with the
// operator token kept in sessionStorage; a refused token brings the login page back.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "flowmatrix-token";
const PAGES = ["overview", "matrix", "topology", "routing"];

// Everything a page drew, for people debugging and for the browser tests.
const fm = (window.fm = {
  network: null,
  heatmap: null,
  series: null,
  topology: null,
  colour: linkColour,
  ready: {},
});

// --- small helpers ----------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

class AuthRefused extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(path, params = {}, { csv = false } = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") query.set(k, String(v));
  }
  const url = `${API}/${path}${query.toString() ? "?" + query : ""}`;
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token()}` } });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    throw new AuthRefused(body.error || `HTTP ${response.status}`);
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const error = new Error(body.error || `HTTP ${response.status} for ${path}`);
    error.status = response.status;
    throw error;
  }
  if (csv) return { rows: parseCsv(await response.text()), status: response.headers.get("X-Flowmatrix-Status") };
  return response.json();
}

// RFC 4180 text (as pyarrow writes it: strings quoted, "" inside) → arrays of strings.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quoted) {
      if (c === 34) {
        if (text.charCodeAt(i + 1) === 34) {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        const next = text.indexOf('"', i);
        const end = next < 0 ? text.length : next;
        field += text.slice(i, end);
        i = end - 1;
      }
    } else if (c === 34) quoted = true;
    else if (c === 44) {
      row.push(field);
      field = "";
    } else if (c === 10 || c === 13) {
      if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      let end = i;
      while (end < text.length && ![34, 44, 10, 13].includes(text.charCodeAt(end))) end++;
      field += text.slice(i, end);
      i = end - 1;
    }
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Fill a <table> with a header row and rows; a cell is text, a number (right-aligned) or a Node.
function fillTable(table, headers, rows, { empty = "none", rowClass = () => "" } = {}) {
  table.replaceChildren();
  const head = el("tr", {}, ...headers.map((h) => el("th", {}, h)));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { colSpan: headers.length, class: "empty" }, empty)));
  }
  for (const row of rows) {
    const tr = el("tr", { class: rowClass(row) });
    for (const cell of row.cells || row) {
      const numeric = typeof cell === "number";
      tr.append(el("td", { class: numeric ? "num" : "" }, numeric ? fmtNum(cell) : cell));
    }
    body.append(tr);
  }
  table.append(body);
}

function fmtNum(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return value.toLocaleString("en-US", { maximumFractionDigits: digits });
}

function fmtSi(value, unit = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  const steps = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, prefix] of steps) {
    if (abs >= size) return `${(value / size).toFixed(2)} ${prefix}${unit}`;
  }
  return `${value.toFixed(abs < 10 && abs !== Math.round(abs) ? 2 : 0)} ${unit}`.trim();
}

function fmtPct(value) {
  if (value === null || value === undefined) return "–";
  const pct = 100 * value;
  // small loads keep two significant digits instead of showing 0.0 %
  return `${pct !== 0 && Math.abs(pct) < 1 ? pct.toPrecision(2) : pct.toFixed(1)} %`;
}

function fmtTime(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toISOString().replace(".000Z", "Z").replace("T", " ");
}

function showError(message) {
  $("error").textContent = message || "";
}

function fillSelect(select, options, keep = true) {
  const before = select.value;
  select.replaceChildren(...options.map(([value, label]) => el("option", { value }, label)));
  if (keep && options.some(([value]) => value === before)) select.value = before;
}

// --- login and navigation ---------------------------------------------------------------------

function showLogin(message = "") {
  fm.network = null;
  $("login").hidden = false;
  $("page").hidden = true;
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("network-name").textContent = "";
  $("login-error").textContent = message;
  document.body.dataset.view = "login";
  $("token").focus();
}

async function start() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (fragment.get("token")) {
    // a link with #token=… logs in and drops the token from the address bar
    sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname + "#overview");
  }
  if (!token()) {
    showLogin();
    return;
  }
  try {
    fm.network = await api("network");
  } catch (error) {
    if (error instanceof AuthRefused) {
      showLogin(`The MG refused this token: ${error.message}`);
      return;
    }
    showLogin(`Cannot reach the MG: ${error.message}`);
    return;
  }
  $("login").hidden = true;
  $("page").hidden = false;
  $("nav").hidden = false;
  $("logout").hidden = false;
  $("network-name").textContent = `${fm.network.name} (AS ${fm.network.asn})`;
  setupControls();
  route();
}

function currentPage() {
  const name = location.hash.replace(/^#/, "").split("&")[0];
  return PAGES.includes(name) ? name : "overview";
}

async function route() {
  if (!fm.network) return;
  const page = currentPage();
  for (const name of PAGES) $(name).hidden = name !== page;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.page === page);
  }
  document.body.dataset.view = page;
  showError("");
  fm.ready[page] = false;
  try {
    await LOADERS[page]();
  } catch (error) {
    if (error instanceof AuthRefused) {
      showLogin(`The MG refused this token: ${error.message}`);
      return;
    }
    showError(error.message);
  }
  fm.ready[page] = true;
  document.body.dataset.ready = page;
}

let controlsReady = false;

function setupControls() {
  if (controlsReady) return;
  controlsReady = true;
  const net = fm.network;
  const intervals = net.intervals.map((i) => [i.id, `${i.id} (${i.readout_seconds} s)`]);
  const classes = [["all", "all classes"], ...net.classes.map((c) => [c, c])];
  for (const id of ["ov-interval", "tm-interval", "topo-interval"]) fillSelect($(id), intervals);
  fillSelect($("tm-class"), classes);
  fillSelect($("topo-class"), classes);
  $("ov-interval").addEventListener("change", () => guarded(loadOverview));
  for (const id of ["tm-granularity", "tm-class", "tm-vrf", "tm-period", "tm-value"]) {
    $(id).addEventListener("change", () => guarded(loadMatrix));
  }
  $("tm-interval").addEventListener("change", () => guarded(loadMatrixPage));
  $("tm-vrf").addEventListener("focus", () => guarded(loadVrfs));
  for (const id of ["topo-period", "topo-class", "topo-threshold", "topo-failure"]) {
    $(id).addEventListener("change", () => guarded(loadCapacity));
  }
  $("topo-interval").addEventListener("change", () => guarded(loadTopology));
  $("rt-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(explainRoute);
  });
  const canvas = $("tm-canvas");
  canvas.addEventListener("mousemove", (event) => hoverCell(event));
  canvas.addEventListener("mouseleave", () => ($("tm-tip").hidden = true));
  canvas.addEventListener("click", (event) => clickCell(event));
}

async function guarded(action) {
  showError("");
  try {
    await action();
  } catch (error) {
    if (error instanceof AuthRefused) showLogin(`The MG refused this token: ${error.message}`);
    else showError(error.message);
  }
}

// --- overview -----------------------------------------------------------------------------------

async function loadOverview() {
  const net = fm.network;
  const chosen = $("ov-interval").value || net.intervals[0]?.id;
  const [periods, frps, alarms] = await Promise.all([
    api("periods"),
    api("frps"),
    net.features.statistics ? api("alarms") : Promise.resolve([]),
  ]);
  const busy = {};
  if (net.features.statistics) {
    const answers = await Promise.all(net.intervals.map((i) => api("busy-hour", { interval: i.id })));
    for (const answer of answers) busy[answer.interval] = answer.busy_hour;
  }
  const perInterval = {};
  for (const p of periods) (perInterval[p.interval] ||= []).push(p);
  const complete = periods.filter((p) => p.status === "complete").length;
  const gaps = periods.reduce((n, p) => n + p.gaps.reduce((m, g) => m + g.gap, 0), 0);
  const exporters = frps.frps.flatMap((f) => f.exporters.map((e) => ({ frp: f.name, ...e })));
  const dropped = exporters.reduce((n, e) => n + e.dropped, 0);
  $("ov-summary").replaceChildren(
    card(`${complete} / ${periods.length}`, "read-out periods complete"),
    card(`${frps.frps.filter((f) => f.uploads).length} / ${frps.frps.length}`, "FRPs reporting"),
    card(String(exporters.length), "exporters seen"),
    card(fmtNum(dropped), "records dropped"),
    card(fmtNum(gaps), "sequence gaps"),
    card(frps.unresolved_share === null ? "–" : fmtPct(frps.unresolved_share), "unresolved share"),
    card(String(alarms.length), "active alarms"),
  );
  fillTable(
    $("ov-intervals"),
    ["interval", "kind", "time zone", "read-out", "periods", "complete", "incomplete", "last period", "busy hour"],
    net.intervals.map((i) => {
      const ps = perInterval[i.id] || [];
      const done = ps.filter((p) => p.status === "complete").length;
      const hour = busy[i.id];
      return {
        bad: ps.length > done,
        cells: [
          i.id, i.kind, i.timezone, `${i.readout_seconds} s`, ps.length, done, ps.length - done,
          ps.length ? fmtTime(ps[ps.length - 1].period_start_ms) : "–",
          hour ? `${hour.local_start} (${fmtSi(hour.volume_bytes, "B")})` : "–",
        ],
      };
    }),
    { rowClass: (r) => (r.bad ? "bad" : "ok") },
  );
  const shown = (perInterval[chosen] || []).slice(-50).reverse();
  fillTable(
    $("ov-periods"),
    ["period start (UTC)", "end", "status", "reported", "missing", "records", "versions", "sequence gaps"],
    shown.map((p) => ({
      bad: p.status !== "complete",
      cells: [
        fmtTime(p.period_start_ms), fmtTime(p.period_end_ms),
        el("span", { class: "status" }, p.status),
        `${p.reported.length} / ${p.expected.length}`, p.missing.join(", ") || "–", p.records,
        p.versions, p.gaps.length ? p.gaps.map((g) => `${g.pe || g.exporter}: ${g.gap} ${g.gap_unit}`).join("; ") : "–",
      ],
    })),
    { rowClass: (r) => (r.bad ? "bad" : "ok"), empty: "no period stored for this interval" },
  );
  fillTable(
    $("ov-frps"),
    ["FRP", "address", "service node", "PEs", "uploads", "last upload", "last period", "records", "dropped", "gaps", "routing tables"],
    frps.frps.map((f) => [
      f.name, f.address, f.service_node || "–", f.pes.join(", ") || "–", f.uploads,
      f.last ? fmtTime(f.last.received_ms) : "never",
      f.last ? `${f.last.interval} ${fmtTime(f.last.period_start_ms)}` : "–",
      f.records, f.dropped, f.gap,
      f.routing ? `sent ${fmtTime(f.routing.received_ms)}` : f.pes.length ? "none sent" : "–",
    ]),
  );
  fillTable(
    $("ov-exporters"),
    ["FRP", "PE", "exporter", "source id", "periods", "datagrams", "records", "dropped", "sequence gap", "last period", "last report"],
    exporters.map((e) => ({
      bad: e.dropped > 0 || e.gap > 0,
      cells: [
        e.frp, e.pe || "–", e.address, e.source_id, e.periods, e.datagrams, e.records, e.dropped,
        e.gap ? `${e.gap} ${e.gap_unit}` : "0", fmtTime(e.last_period_start_ms), fmtTime(e.last_received_ms),
      ],
    })),
    { rowClass: (r) => (r.bad ? "bad" : ""), empty: "no exporter reported yet" },
  );
  const reasons = {};
  for (const f of frps.frps) {
    for (const [reason, bytes] of Object.entries(f.unresolved_bytes)) {
      reasons[reason] = (reasons[reason] || 0) + bytes;
    }
  }
  fillTable(
    $("ov-unresolved"),
    ["reason", "bytes"],
    Object.entries(reasons).map(([reason, bytes]) => [reason, bytes]),
    { empty: "every byte was resolved to an egress PE" },
  );
  fillTable(
    $("ov-alarms"),
    ["rule", "interval", "key", "since", "value", "threshold"],
    alarms.map((a) => [a.rule, a.interval, a.key, fmtTime(a.since_ms), a.value, a.threshold]),
    { empty: "no alarm raised" },
  );
}

function card(value, label) {
  return el("div", { class: "card" }, el("b", {}, value), el("span", {}, label));
}

// --- traffic matrix heatmap -----------------------------------------------------------------

const PALETTE = [
  [68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37],
];

function ramp(t) {
  const x = Math.min(1, Math.max(0, t)) * (PALETTE.length - 1);
  const i = Math.min(PALETTE.length - 2, Math.floor(x));
  const f = x - i;
  return PALETTE[i].map((c, k) => Math.round(c + f * (PALETTE[i + 1][k] - c)));
}

async function loadMatrixPage() {
  fm.matrixAnswer = null;
  const interval = $("tm-interval").value;
  const periods = await api("periods", { interval });
  fm.matrixPeriods = periods;
  const options = [["", `all ${periods.length} period(s), summed`]];
  for (const p of periods.slice().reverse()) {
    options.push([String(p.period_start_ms), `${fmtTime(p.period_start_ms)} ${p.status}`]);
  }
  fillSelect($("tm-period"), options);
  fm.vrfsFor = null;
  fillSelect($("tm-vrf"), [["", "all VRFs"]]);
  await loadMatrix();
}

function matrixQuery(granularity) {
  const params = {
    interval: $("tm-interval").value, granularity, class: $("tm-class").value, format: "csv",
  };
  if ($("tm-period").value) params.period_start_ms = $("tm-period").value;
  return params;
}

async function loadVrfs() {
  const key = `${$("tm-interval").value}/${$("tm-period").value}`;
  if (fm.vrfsFor === key) return;
  fm.vrfsFor = key;
  const answer = await api("matrix", matrixQuery("vrf"), { csv: true });
  const vrfs = [...new Set(answer.rows.slice(1).map((r) => r[0]))].sort();
  fillSelect($("tm-vrf"), [["", "all VRFs"], ...vrfs.map((v) => [v === "" ? "(global)" : v, v || "(global table)"])]);
}

async function loadMatrix() {
  if (!fm.matrixPeriods.length) {
    // nothing to ask the MG for (it would answer 404)
    fm.heatmap = null;
    $("tm-canvas").getContext("2d").clearRect(0, 0, $("tm-canvas").width, $("tm-canvas").height);
    $("tm-legend").replaceChildren();
    $("tm-caption").textContent = "No read-out period stored for this interval yet.";
    return;
  }
  const granularity = $("tm-granularity").value;
  const vrf = $("tm-vrf").value;
  const began = performance.now();
  // switching bytes/packets/bit/s redraws the answer already held
  const query = matrixQuery(vrf ? "vrf" : granularity);
  const key = JSON.stringify(query);
  if (!fm.matrixAnswer || fm.matrixAnswer.key !== key) {
    // CSV: the MG writes it several times faster than JSON for large matrices
    fm.matrixAnswer = { key, answer: await api("matrix", query, { csv: true }) };
  }
  const answer = fm.matrixAnswer.answer;
  const fetched = performance.now();
  const cols = answer.rows[0] || [];
  const at = (name) => cols.indexOf(name);
  const chosen = fm.matrixPeriods.filter(
    (p) => !query.period_start_ms || String(p.period_start_ms) === query.period_start_ms,
  );
  const seconds = chosen.reduce((n, p) => n + (p.period_end_ms - p.period_start_ms) / 1000, 0);
  const missing = [...new Set(chosen.flatMap((p) => p.missing))].sort();
  const [iIn, iEg, iBytes, iPk] = [at("ingress"), at("egress"), at("bytes"), at("packets")];
  const nodeOf = {};
  for (const pe of fm.network.pes) nodeOf[pe.name] = pe.service_node;
  const value = $("tm-value").value;
  const cells = new Map();
  for (let k = 1; k < answer.rows.length; k++) {
    const row = answer.rows[k];
    if (vrf && row[at("vrf")] !== (vrf === "(global)" ? "" : vrf)) continue;
    let ingress = row[iIn];
    let egress = row[iEg];
    if (vrf && granularity === "pop_pop") {
      ingress = nodeOf[ingress] || ingress;
      egress = nodeOf[egress] || egress;
    }
    let v = Number(value === "packets" ? row[iPk] : row[iBytes]);
    if (value === "bps") v = (v * 8) / seconds;
    const key = `${ingress}\u0000${egress}`;
    cells.set(key, (cells.get(key) || 0) + (v || 0));
  }
  const list = [...cells].map(([key, v]) => {
    const [ingress, egress] = key.split("\u0000");
    return { ingress, egress, value: v };
  });
  const rows = [...new Set(list.map((c) => c.ingress))].sort();
  const columns = [...new Set(list.map((c) => c.egress))].sort();
  drawHeatmap(rows, columns, list, value);
  const took = performance.now() - began;
  fm.heatmap.ms = took;
  fm.heatmap.fetchMs = fetched - began;
  fm.heatmap.drawMs = performance.now() - fetched;
  const total = list.reduce((n, c) => n + c.value, 0);
  const unit = value === "bps" ? "bit/s" : value;
  $("tm-caption").textContent =
    `${list.length} cells (${rows.length} × ${columns.length}), ${chosen.length} period(s), ` +
    `${answer.status}${missing.length ? " — missing " + missing.join(", ") : ""}; ` +
    `total ${fmtSi(total, value === "bps" ? "bit/s" : value === "bytes" ? "B" : "")}; ` +
    `${unit}, log colour scale; fetched in ${fm.heatmap.fetchMs.toFixed(0)} ms, drawn in ` +
    `${fm.heatmap.drawMs.toFixed(0)} ms. Click a cell for its time series.`;
}

function drawHeatmap(rows, columns, list, value) {
  const canvas = $("tm-canvas");
  const ctx = canvas.getContext("2d");
  const labels = Math.max(rows.length, columns.length) <= 60;
  const margin = labels ? 90 : 10;
  const room = Math.min(canvas.width, canvas.height) - margin - 10;
  // whole pixels when labelled; a large matrix fills the room (a cell may be a fraction)
  const fit = room / Math.max(1, rows.length, columns.length);
  const cell = labels ? Math.max(1, Math.floor(fit)) : fit;
  // loops, not Math.min(...values): a spread of 250,000 arguments overflows the stack
  let lo = Infinity;
  let hi = 0;
  for (const c of list) {
    if (c.value > 0 && c.value < lo) lo = c.value;
    if (c.value > hi) hi = c.value;
  }
  if (!(hi > 0)) [lo, hi] = [1, 1];
  const scale = (v) => (hi > lo ? Math.log(v / lo) / Math.log(hi / lo) : 1);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  // one pixel per cell, scaled up without smoothing: fast for 500 × 500
  const image = new ImageData(Math.max(1, columns.length), Math.max(1, rows.length));
  image.data.fill(0);
  const rowAt = new Map(rows.map((n, i) => [n, i]));
  const colAt = new Map(columns.map((n, i) => [n, i]));
  for (const c of list) {
    const [r, g, b] = c.value > 0 ? ramp(scale(c.value)) : [225, 225, 225];
    const k = 4 * (rowAt.get(c.ingress) * columns.length + colAt.get(c.egress));
    image.data[k] = r;
    image.data[k + 1] = g;
    image.data[k + 2] = b;
    image.data[k + 3] = 255;
  }
  const off = document.createElement("canvas");
  off.width = image.width;
  off.height = image.height;
  off.getContext("2d").putImageData(image, 0, 0);
  ctx.fillStyle = "#f3f5f7";
  ctx.fillRect(margin, margin, cell * columns.length, cell * rows.length);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, margin, margin, cell * columns.length, cell * rows.length);
  if (labels) {
    ctx.fillStyle = "#1d2733";
    ctx.font = `${Math.min(12, Math.max(8, cell - 2))}px system-ui, sans-serif`;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    rows.forEach((name, i) => ctx.fillText(name, margin - 4, margin + (i + 0.5) * cell));
    ctx.save();
    ctx.textAlign = "left";
    columns.forEach((name, j) => {
      ctx.save();
      ctx.translate(margin + (j + 0.5) * cell, margin - 4);
      ctx.rotate(-Math.PI / 3);
      ctx.fillText(name, 0, 0);
      ctx.restore();
    });
    ctx.restore();
    ctx.textAlign = "left";
    ctx.fillStyle = "#5d6b7a";
    ctx.fillText("ingress ↓  egress →", 4, 12);
  }
  fm.heatmap = { rows, columns, cells: list, value, layout: { x0: margin, y0: margin, cell }, lo, hi };
  fm.heatmapIndex = new Map(list.map((c) => [`${c.ingress}\u0000${c.egress}`, c]));
  const unit = value === "bps" ? "bit/s" : value === "bytes" ? "B" : " packets";
  $("tm-legend").replaceChildren(
    ...[1, 0.75, 0.5, 0.25, 0].map((t) => {
      const [r, g, b] = ramp(t);
      const v = hi > lo ? lo * Math.pow(hi / lo, t) : hi;
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = `rgb(${r}, ${g}, ${b})`;
      return el("div", {}, swatch, fmtSi(v, unit));
    }),
  );
}

function cellAt(event) {
  const h = fm.heatmap;
  if (!h) return null;
  const canvas = $("tm-canvas");
  const box = canvas.getBoundingClientRect();
  const x = ((event.clientX - box.left) * canvas.width) / box.width;
  const y = ((event.clientY - box.top) * canvas.height) / box.height;
  const j = Math.floor((x - h.layout.x0) / h.layout.cell);
  const i = Math.floor((y - h.layout.y0) / h.layout.cell);
  if (i < 0 || j < 0 || i >= h.rows.length || j >= h.columns.length) return null;
  const ingress = h.rows[i];
  const egress = h.columns[j];
  const found = fm.heatmapIndex.get(`${ingress}\u0000${egress}`);
  return { ingress, egress, value: found ? found.value : null, x: event.clientX - box.left, y: event.clientY - box.top };
}

function hoverCell(event) {
  const c = cellAt(event);
  const tip = $("tm-tip");
  if (!c) {
    tip.hidden = true;
    return;
  }
  const unit = fm.heatmap.value === "bps" ? "bit/s" : fm.heatmap.value;
  tip.textContent = `${c.ingress} → ${c.egress}: ${c.value === null ? "no traffic" : fmtNum(c.value, 2) + " " + unit}`;
  tip.style.left = `${c.x + 14}px`;
  tip.style.top = `${c.y + 14}px`;
  tip.hidden = false;
}

function clickCell(event) {
  const c = cellAt(event);
  if (c && c.value !== null) guarded(() => openSeries(c.ingress, c.egress));
}

function p95(values) {
  // inverted CDF, as the MG's statistics: the smallest value with CDF >= 0.95
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted.length ? sorted[Math.max(0, Math.ceil(0.95 * sorted.length) - 1)] : null;
}

async function openSeries(ingress, egress) {
  const interval = $("tm-interval").value;
  const granularity = $("tm-granularity").value;
  const klass = $("tm-class").value === "all" ? null : $("tm-class").value;
  const bps = $("tm-value").value === "bps";
  $("series").hidden = false;
  $("series-title").textContent = `${ingress} → ${egress} (${klass || "all classes"}, ${interval})`;
  $("series-stats").textContent = "loading…";
  fm.series = null;
  const series = await api("series", { interval, ingress, egress, class: klass, granularity });
  const readout = series.readout_seconds;
  const scale = bps ? 8 / readout : 1;
  const values = series.periods.map((p) => p.bytes);
  let mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  let high = p95(values);
  let std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(1, values.length));
  let source = "computed from the series";
  if (granularity === "pe_pe" && klass) {
    const stats = await api("stats", { interval, class: klass });
    const c = stats.columns;
    const row = stats.rows.find((r) => r[c.indexOf("ingress")] === ingress && r[c.indexOf("egress")] === egress);
    if (row) {
      mean = row[c.indexOf("mean_bytes")];
      high = row[c.indexOf("p95_bytes")];
      std = row[c.indexOf("std_bytes")];
      source = "from /stats";
    }
  }
  let forecast = null;
  let note = "";
  if (granularity !== "pe_pe") {
    note = "Forecasts are made per PE-to-PE element: open the PE-PE view for one.";
  } else if (values.length < 4) {
    note = `No forecast: ${values.length} period(s) of history, the forecast needs at least 4.`;
  } else {
    try {
      forecast = await api("forecast", { interval, ingress, egress, class: klass, horizon: Math.min(12, values.length) });
      const season = forecast.season ? `season of ${forecast.season} periods` : "no season (Holt's linear trend)";
      note = `Forecast: Holt–Winters, ${season}; band = forecast ± one standard deviation of the history.`;
    } catch (error) {
      if (error instanceof AuthRefused) throw error;
      note = `No forecast: ${error.message}`;
    }
  }
  const unit = bps ? "bit/s" : "B";
  $("series-stats").textContent =
    `${values.length} periods; mean ${fmtSi(mean * scale, unit)}, p95 ${fmtSi(high * scale, unit)} (${source})`;
  $("series-note").textContent = note;
  fm.series = { ingress, egress, klass, periods: series.periods, mean, p95: high, std, forecast, scale };
  drawSeries(fm.series, unit);
}

function drawSeries(s, unit) {
  const canvas = $("series-canvas");
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  const pad = { l: 80, r: 16, t: 14, b: 34 };
  ctx.clearRect(0, 0, W, H);
  const points = s.periods.map((p) => [p.period_start_ms, p.bytes * s.scale]);
  const fc = s.forecast ? s.forecast.forecast.map((f) => [f.period_start_ms, (f.bytes || 0) * s.scale]) : [];
  const band = s.std * s.scale;
  const xs = [...points, ...fc].map((p) => p[0]);
  const ys = [...points.map((p) => p[1]), ...fc.map((p) => p[1] + band), s.p95 * s.scale, 0];
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...ys, 1) * 1.05;
  const X = (t) => pad.l + ((t - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const Y = (v) => H - pad.b - (v / y1) * (H - pad.t - pad.b);
  ctx.strokeStyle = "#c9d1d9";
  ctx.fillStyle = "#5d6b7a";
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const v = (y1 * k) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, Y(v));
    ctx.lineTo(W - pad.r, Y(v));
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText(fmtSi(v, unit), pad.l - 6, Y(v) + 4);
  }
  ctx.textAlign = "left";
  ctx.fillText(fmtTime(x0), pad.l, H - 10);
  ctx.textAlign = "right";
  ctx.fillText(fmtTime(x1), W - pad.r, H - 10);
  if (fc.length) {
    ctx.fillStyle = "rgba(253, 174, 97, 0.35)";
    ctx.beginPath();
    fc.forEach(([t, v], k) => (k ? ctx.lineTo(X(t), Y(v + band)) : ctx.moveTo(X(t), Y(v + band))));
    fc.slice().reverse().forEach(([t, v]) => ctx.lineTo(X(t), Y(Math.max(0, v - band))));
    ctx.closePath();
    ctx.fill();
    line(ctx, fc.map(([t, v]) => [X(t), Y(v)]), "#e66101", [6, 4]);
  }
  line(ctx, [[pad.l, Y(s.mean * s.scale)], [W - pad.r, Y(s.mean * s.scale)]], "#1a9850", [2, 3]);
  line(ctx, [[pad.l, Y(s.p95 * s.scale)], [W - pad.r, Y(s.p95 * s.scale)]], "#d73027", [2, 3]);
  line(ctx, points.map(([t, v]) => [X(t), Y(v)]), "#1f3b57", []);
  ctx.fillStyle = "#1f3b57";
  for (const [t, v] of points) ctx.fillRect(X(t) - 2, Y(v) - 2, 4, 4);
  ctx.textAlign = "left";
  const legend = [["#1f3b57", "measured"], ["#1a9850", "mean"], ["#d73027", "p95"], ["#e66101", "forecast ± σ"]];
  legend.forEach(([colour, label], k) => {
    ctx.fillStyle = colour;
    ctx.fillRect(pad.l + 8 + k * 110, pad.t, 12, 3);
    ctx.fillText(label, pad.l + 24 + k * 110, pad.t + 5);
  });
}

function line(ctx, points, colour, dash) {
  if (!points.length) return;
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2;
  ctx.setLineDash(dash);
  ctx.beginPath();
  points.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.stroke();
  ctx.restore();
}

// --- topology and capacity ------------------------------------------------------------------

// Link colour by utilization against the threshold; the browser tests use the same buckets.
const BUCKETS = [
  [0.25, "#1a9850"],
  [0.5, "#91cf60"],
  [0.75, "#fee08b"],
  [1.0, "#fc8d59"],
];
const OVER = "#d73027";
const DOWN = "#9e9e9e";

function linkColour(utilization, threshold, down = false) {
  if (down) return DOWN;
  for (const [share, colour] of BUCKETS) if (utilization <= share * threshold) return colour;
  return OVER;
}

async function loadTopology() {
  const interval = $("topo-interval").value;
  if (!fm.network.features.topology) {
    $("topo-caption").textContent =
      "This MG has no topology: start it with mg serve --topology FILE to see link utilization.";
    $("topo-svg").replaceChildren();
    return;
  }
  const [topo, periods] = await Promise.all([api("capacity/topology"), api("periods", { interval })]);
  const options = [["busy", "busiest period"]];
  for (const p of periods.slice().reverse()) {
    options.push([String(p.period_start_ms), `${fmtTime(p.period_start_ms)} ${p.status}`]);
  }
  fillSelect($("topo-period"), options);
  fillSelect($("topo-failure"), [
    ["", "none (normal state)"],
    ...topo.links.map((l) => [`link:${l.name}`, `link ${l.name}`]),
    ...topo.nodes.map((n) => [`node:${n.name}`, `router ${n.name}`]),
    ...topo.srlgs.map((s) => [`srlg:${s}`, `SRLG ${s}`]),
  ]);
  fm.topology = { topo, layout: layoutTopology(topo), colours: {} };
  drawTopology();
  if (!periods.length) {
    $("topo-caption").textContent = "No read-out period stored for this interval yet.";
    return;
  }
  await loadCapacity();
}

function layoutTopology(topo) {
  const W = 900;
  const H = 620;
  const at = {};
  const placed = topo.nodes.filter((n) => n.position);
  if (placed.length === topo.nodes.length && placed.length) {
    const xs = placed.map((n) => n.position[0]);
    const ys = placed.map((n) => n.position[1]);
    const [xa, xb, ya, yb] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    for (const n of placed) {
      at[n.name] = [
        60 + ((n.position[0] - xa) / (xb - xa || 1)) * (W - 120),
        H - 60 - ((n.position[1] - ya) / (yb - ya || 1)) * (H - 120),
      ];
    }
    return { at, sites: [] };
  }
  const sites = [...new Set(topo.nodes.map((n) => n.service_node))];
  const R = sites.length > 1 ? Math.min(W, H) / 2 - 110 : 0;
  const centres = {};
  sites.forEach((s, k) => {
    const a = (2 * Math.PI * k) / sites.length - Math.PI / 2;
    centres[s] = [W / 2 + R * Math.cos(a), H / 2 + R * Math.sin(a)];
  });
  for (const s of sites) {
    const members = topo.nodes.filter((n) => n.service_node === s);
    const r = members.length > 1 ? Math.min(70, 18 + 10 * members.length) : 0;
    members.forEach((n, k) => {
      const a = (2 * Math.PI * k) / members.length;
      at[n.name] = [centres[s][0] + r * Math.cos(a), centres[s][1] + r * Math.sin(a)];
    });
  }
  return { at, sites: sites.map((s) => ({ name: s, at: centres[s] })) };
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawTopology() {
  const { topo, layout } = fm.topology;
  const root = $("topo-svg");
  root.replaceChildren();
  for (const s of layout.sites) {
    root.append(svg("ellipse", { class: "sn", cx: s.at[0], cy: s.at[1], rx: 105, ry: 95 }));
    root.append(svg("text", { class: "sn", x: s.at[0] - 18, y: s.at[1] - 98 }, s.name));
  }
  for (const l of topo.links) {
    const [a, b] = [layout.at[l.a], layout.at[l.b]];
    const lineNode = svg("line", {
      class: "link", x1: a[0], y1: a[1], x2: b[0], y2: b[1],
      "data-link": l.name, stroke: "#c9d1d9",
    });
    lineNode.append(svg("title", {}, l.name));
    root.append(lineNode);
  }
  for (const n of topo.nodes) {
    const [x, y] = layout.at[n.name];
    root.append(svg("circle", { class: n.role === "pe" ? "pe" : "p", cx: x, cy: y, r: n.role === "pe" ? 6 : 8, "data-node": n.name }));
    root.append(svg("text", { x: x + 9, y: y - 7 }, n.name));
  }
  // fit the view to what was drawn
  const points = [
    ...Object.values(layout.at).map(([x, y]) => [x - 20, y - 20, x + 90, y + 20]),
    ...layout.sites.map((s) => [s.at[0] - 110, s.at[1] - 120, s.at[0] + 110, s.at[1] + 100]),
  ];
  if (points.length) {
    const x0 = Math.min(...points.map((p) => p[0]));
    const y0 = Math.min(...points.map((p) => p[1]));
    const x1 = Math.max(...points.map((p) => p[2]));
    const y1 = Math.max(...points.map((p) => p[3]));
    root.setAttribute("viewBox", `${x0} ${y0} ${x1 - x0} ${y1 - y0}`);
  }
  $("topo-legend").replaceChildren(
    ...[...BUCKETS.map(([share, colour]) => [colour, `≤ ${(share * 100).toFixed(0)} % of threshold`]),
      [OVER, "over threshold"], [DOWN, "failed"]].map(([colour, label]) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = colour;
      return el("div", {}, swatch, label);
    }),
  );
}

async function loadCapacity() {
  if (!fm.topology) return;
  const params = {
    interval: $("topo-interval").value,
    period: $("topo-period").value || "busy",
    class: $("topo-class").value === "all" ? null : $("topo-class").value,
    threshold: $("topo-threshold").value || "0.8",
  };
  const failure = $("topo-failure").value;
  const check = await api("capacity/check", params);
  const whatif = failure ? await api("capacity/whatif", { ...params, failure }) : null;
  const threshold = check.threshold;
  const shown = whatif ? whatif.links : check.links;
  const worst = {};
  const down = {};
  for (const x of shown) {
    worst[x.link] = Math.max(worst[x.link] || 0, x.utilization);
    down[x.link] = down[x.link] || Boolean(x.down);
  }
  const colours = {};
  for (const node of document.querySelectorAll("#topo-svg line.link")) {
    const name = node.dataset.link;
    const colour = linkColour(worst[name] || 0, threshold, down[name]);
    node.setAttribute("stroke", colour);
    node.classList.toggle("down", Boolean(down[name]));
    node.dataset.utilization = String(worst[name] || 0);
    node.querySelector("title").textContent = `${name}: ${down[name] ? "failed" : fmtPct(worst[name] || 0)}`;
    colours[name] = colour;
  }
  fm.topology.colours = colours;
  fm.topology.failure = failure;
  const p = check.period;
  const state = whatif
    ? `under failure ${whatif.failure.label}: max ${fmtPct(whatif.max_utilization)} (normal ${fmtPct(whatif.normal_max_utilization)})` +
      (whatif.disconnected_bps ? `, ${fmtSi(whatif.disconnected_bps, "bit/s")} disconnected` : "")
    : `max link utilization ${fmtPct(check.max_utilization)}${check.exceeded ? " — EXCEEDED" : ""}`;
  $("topo-caption").textContent =
    `${p.busy ? "Busiest period" : "Period"} ${p.start} (${p.seconds} s, ${p.status}), ` +
    `${check.matrix.demands} demands, ${fmtSi(check.matrix.total_bps, "bit/s")}; threshold ${fmtPct(threshold)}; ${state}.`;
  $("topo-table-title").textContent = whatif ? `What-if: ${whatif.failure.label}` : "Capacity check";
  const links = shown.slice().sort((a, b) => b.utilization - a.utilization);
  fillTable(
    $("topo-links"),
    whatif
      ? ["link", "from", "to", "load", "capacity", "utilization", "normal", "state"]
      : ["link", "from", "to", "load", "capacity", "utilization", "over"],
    links.map((x) => ({
      bad: x.over,
      cells: whatif
        ? [x.link, x.src, x.dst, fmtSi(x.load_bps, "bit/s"), fmtSi(x.capacity_bps, "bit/s"), fmtPct(x.utilization), fmtPct(x.normal_utilization), x.down ? "failed" : x.over ? "over" : "ok"]
        : [x.link, x.src, x.dst, fmtSi(x.load_bps, "bit/s"), fmtSi(x.capacity_bps, "bit/s"), fmtPct(x.utilization), x.over ? "over" : "ok"],
    })),
    { rowClass: (r) => (r.bad ? "bad" : "") },
  );
  fillTable(
    $("topo-nodes"),
    ["service node", "load", "capacity", "utilization", "over"],
    check.service_nodes.map((n) => ({
      bad: n.over,
      cells: [n.name, fmtSi(n.load_bps, "bit/s"), n.capacity_bps === null ? "–" : fmtSi(n.capacity_bps, "bit/s") + (n.capacity_derived ? " (derived)" : ""), fmtPct(n.utilization), n.over ? "over" : "ok"],
    })),
    { rowClass: (r) => (r.bad ? "bad" : "") },
  );
  const unrouted = check.unrouted.reduce((a, u) => a + u.bps, 0);
  $("topo-unrouted").textContent = check.unrouted.length
    ? `Unrouted: ${check.unrouted.length} demands, ${fmtSi(unrouted, "bit/s")} (${[...new Set(check.unrouted.map((u) => u.reason))].join(", ")}).` +
      (whatif ? " Service nodes: normal state." : "")
    : whatif ? "Service nodes: normal state." : "";
}

// --- routing lookup -------------------------------------------------------------------------

async function loadRouting() {
  const has = fm.network.features.routing;
  $("rt-missing").hidden = has;
  $("rt-form").hidden = !has;
  $("rt-result").replaceChildren();
  if (!has) {
    $("rt-missing").textContent =
      "This MG has no routing tables yet, so it cannot explain a lookup. FRPs started with " +
      "--routing or --bmp send theirs (mg serve --routing DIR also gives it every PE's " +
      "tables); meanwhile flowmatrix routing show on an FRP's tables answers the same question.";
    return;
  }
  fillSelect($("rt-pe"), fm.network.pes.map((p) => [p.name, `${p.name} (${p.service_node})`]));
}

async function explainRoute() {
  const answer = await api("routing/explain", {
    pe: $("rt-pe").value,
    address: $("rt-address").value.trim(),
    vrf: $("rt-vrf").value.trim() || null,
  });
  fillTable(
    $("rt-result"),
    ["VRF", "RD", "interfaces", "prefix", "next hops", "egress", "reason"],
    answer.lookups.map((e) => [e.vrf || "(global)", e.rd || "–", e.interfaces.join(", ") || "–", e.prefix || "–", e.next_hops.join(", ") || "–", e.egress.join(", ") || "–", e.reason]),
    { empty: "no VRF of this PE has a route to that address (or the address is not valid)" },
  );
}

const LOADERS = {
  overview: loadOverview,
  matrix: loadMatrixPage,
  topology: loadTopology,
  routing: loadRouting,
};

// --- wiring ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("Logged out.");
  });
  window.addEventListener("hashchange", () => route());
  start();
});
