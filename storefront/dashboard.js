// The drop dashboard: #/dashboard lists the drops the signed-in seller (their own) or operator (all)
// may watch; #/dashboard/<id> shows one drop live. The report (GET /dashboard/products/{id}/report)
// gives the per-second series so far and the exact counts from MySQL; the live figures then come over
// the SSE container's drop stream (one frame a second, whatever the number of watchers), with a
// ticket from POST /dashboard/products/{id}/stream-ticket. Charts: uPlot (vendor/uplot, MIT).
// Loaded before app.js; uses its helpers (api, view, esc, STREAM, liveStream) when called.
"use strict";

const ANSWER_COLOURS = {
  ACCEPTED: "#1a7f37", OUT_OF_STOCK: "#cf222e", NOT_ON_SALE: "#8250df", PURCHASE_LIMIT_EXCEEDED: "#bf8700",
  RATE_LIMITED: "#0969da", QUEUE_REQUIRED: "#1b7c83", OTHER: "#6e7781",
};
const ANSWER_NAMES = Object.keys(ANSWER_COLOURS);

async function dashboardList() {
  const page = await api("GET", "/dashboard/products?size=50");
  view.innerHTML = `<h1>Drops</h1>
    <table id="drops"><tr><th>Product</th><th>Seller</th><th>Sales start</th><th>Stock</th></tr>
    ${page.items.map((p) => `<tr><td><a href="#/dashboard/${esc(p.productId)}" data-drop="${esc(p.productId)}">${esc(p.name)}</a></td>
      <td>${esc(p.sellerId)}</td><td>${esc(p.salesStartAt ? new Date(p.salesStartAt).toLocaleString() : "-")}</td>
      <td>${esc(p.stock)}</td></tr>`).join("") || "<tr><td colspan=4>No drops to watch.</td></tr>"}</table>
    <div class="pager">${page.total} product(s)</div>`;
}

// One drop's series, keyed by second, kept in order; the charts are redrawn from it.
class DropSeries {
  constructor() { this.seconds = new Map(); }
  add(rows) { for (const row of rows) this.seconds.set(row.t, row); }
  columns() {
    const ts = [...this.seconds.keys()].sort((a, b) => a - b);
    const rows = ts.map((t) => this.seconds.get(t));
    let stock = null, accepted = 0, confirmed = 0, failed = 0;
    const cumulative = { accepted: [], confirmed: [], failed: [] };
    const stockLeft = rows.map((r) => (stock = r.stock ?? stock));
    for (const r of rows) {
      accepted += r.answers.ACCEPTED; confirmed += r.confirmed; failed += r.failed + r.expired;
      cumulative.accepted.push(accepted); cumulative.confirmed.push(confirmed); cumulative.failed.push(failed);
    }
    return { ts, rows, stockLeft, cumulative };
  }
}

function chart(element, title, series, data, height = 180) {
  const opts = {
    title, width: element.clientWidth || 520, height, legend: { live: false },
    scales: { x: { time: true } }, axes: [{}, { size: 50 }],
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 2, points: { show: false } }))],
  };
  element.innerHTML = "";
  return new uPlot(opts, data, element);
}

function figure(label, value, id) {
  return `<div class="figure"><span>${esc(label)}</span><strong id="${id}">${esc(value ?? "-")}</strong></div>`;
}

function renderReport(doc) {
  const refusals = Object.entries(doc.refusals).map(([code, n]) => `${code} ${n}`).join(", ") || "none";
  const latency = doc.reserveToConfirmedMs;
  document.getElementById("report").innerHTML = [
    figure("Stock left", doc.stock, "fig-stock"), figure("Attempts", doc.attempts, "fig-attempts"),
    figure("Accepted", doc.answers.ACCEPTED, "fig-accepted"), figure("Confirmed", doc.confirmed, "fig-confirmed"),
    figure("Failed / expired", doc.orders.FAILED + doc.orders.EXPIRED, "fig-failed"),
    figure("Peak attempts/s", doc.peakAttemptsPerSecond, "fig-peak"),
    figure("Time to sell out", doc.timeToSellOutSeconds == null ? "-" : `${doc.timeToSellOutSeconds} s`, "fig-sellout"),
    figure("Buyers served", doc.buyersServed, "fig-buyers"),
    figure("Payments declined", doc.paymentsDeclined, "fig-declined"),
    figure("Given back", `${doc.unitsGivenBack} unit(s), ${doc.refunds.count} refund(s)`, "fig-given-back"),
    figure("Reserve→CONFIRMED p50 / p99", latency.p50 == null ? "-" : `${latency.p50} / ${latency.p99} ms`, "fig-latency"),
    figure("Waiting room", doc.waitingRoom.open ? `${doc.waitingRoom.length} waiting, ${doc.waitingRoom.admitted} admitted` : "closed", "fig-room"),
  ].join("") + `<p class="refusals">Refusals by reason: <span id="fig-refusals">${esc(refusals)}</span></p>`;
}

async function dashboardDrop(id) {
  const path = `/dashboard/products/${encodeURIComponent(id)}`;
  let doc = await api("GET", `${path}/report`);
  view.innerHTML = `<h1>Drop: ${esc(doc.name)}</h1>
    <p>Stock now <strong id="live-stock">${esc(doc.stock)}</strong> · <span id="live-status" class="badge ${esc(doc.status)}">${esc(doc.status)}</span>
      · live: <span id="live-state">connecting…</span> · <span id="live-frames">0</span> frame(s)</p>
    <div id="report" class="figures"></div>
    <div class="charts"><div id="chart-stock"></div><div id="chart-attempts"></div>
      <div id="chart-outcomes"></div><div id="chart-latency"></div></div>`;
  renderReport(doc);
  const series = new DropSeries();
  series.add(doc.series);
  const charts = {};
  let room = [];
  const draw = () => {
    const { ts, rows, stockLeft, cumulative } = series.columns();
    const roomLength = ts.map((t) => (room.find((r) => r.t === t) || {}).length ?? null);
    const plots = [
      ["chart-stock", "Stock left", [{ label: "units", colour: "#0969da" }], [ts, stockLeft]],
      ["chart-attempts", "Attempts per second by answer", ANSWER_NAMES.map((a) => ({ label: a, colour: ANSWER_COLOURS[a] })),
        [ts, ...ANSWER_NAMES.map((a) => rows.map((r) => r.answers[a]))]],
      ["chart-outcomes", "Accepted vs confirmed vs failed (cumulative)",
        [{ label: "accepted", colour: "#1a7f37" }, { label: "confirmed", colour: "#0969da" }, { label: "failed", colour: "#cf222e" }],
        [ts, cumulative.accepted, cumulative.confirmed, cumulative.failed]],
      ["chart-latency", "Reserve→CONFIRMED (ms, mean per second) and waiting room",
        [{ label: "latency ms", colour: "#8250df" }, { label: "waiting", colour: "#1b7c83" }],
        [ts, rows.map((r) => r.latencyMs), roomLength]],
    ];
    for (const [elementId, title, lines, data] of plots) {
      if (charts[elementId]) charts[elementId].setData(data);
      else charts[elementId] = chart(document.getElementById(elementId), title, lines, data);
    }
  };
  draw();
  const ticket = await api("POST", `${path}/stream-ticket`);
  let frames = 0, active = false, quietSince = 0;
  liveStream = new EventSource(STREAM + ticket.stream);
  liveStream.onopen = () => { document.getElementById("live-state").textContent = "open"; };
  liveStream.onerror = () => { const el = document.getElementById("live-state"); if (el) el.textContent = "reconnecting…"; };
  liveStream.addEventListener("drop", async (event) => {
    const frame = JSON.parse(event.data);
    series.add(frame.series);
    const last = frame.series[frame.series.length - 1];
    if (last) room.push({ t: last.t, length: frame.waitingRoom.length });
    frames += 1;
    document.getElementById("live-frames").textContent = frames;
    document.getElementById("live-stock").textContent = frame.stock;
    const status = document.getElementById("live-status");
    status.textContent = frame.status; status.className = `badge ${frame.status}`;
    document.getElementById("fig-stock").textContent = frame.stock;
    document.getElementById("fig-attempts").textContent = Object.values(frame.totals).reduce((a, b) => a + b, 0);
    document.getElementById("fig-accepted").textContent = frame.totals.ACCEPTED;
    draw();
    // The exact counts (MySQL) are read again once the drop has gone quiet for three seconds.
    const busy = frame.series.some((s) => s.attempts || s.confirmed || s.failed || s.expired);
    if (busy) { active = true; quietSince = 0; }
    else if (active && !quietSince) quietSince = Date.now();
    if (active && quietSince && Date.now() - quietSince >= 3000) {
      doc = await api("GET", `${path}/report`);
      series.add(doc.series); renderReport(doc); draw();
      const final = doc.orders.CONFIRMED + doc.orders.FAILED + doc.orders.EXPIRED + doc.orders.CANCELLED;
      const settled = final >= doc.answers.ACCEPTED;
      document.getElementById("report").dataset.settled = String(settled);
      active = !settled; quietSince = active ? Date.now() : 0;  // not settled yet: look again in 3 s
    }
  });
}
