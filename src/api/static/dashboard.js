// SPDX-License-Identifier: Apache-2.0
// The live dashboard: one uPlot chart per sensor type (mean, min and max
// of the readings received each second over /ws/sensors), an alerts list
// (GET /api/v1/alerts, then /ws/alerts), and throughput and dead-letter
// counters read from /metrics every two seconds.
"use strict";

const WINDOW_POINTS = 300; // seconds of history per chart
const ALERT_ROWS = 30;

const charts = {}; // sensor type -> {plot, data: [xs, avg, min, max], bucket}
window.sluiceCharts = charts; // read by the dashboard test

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

function chartFor(type) {
  if (charts[type]) return charts[type];
  const panel = document.createElement("div");
  panel.className = "panel";
  panel.innerHTML = `<h2></h2>`;
  panel.querySelector("h2").textContent = type;
  document.getElementById("charts").append(panel);
  const data = [[], [], [], []];
  const opts = {
    width: 420,
    height: 220,
    series: [
      {},
      { label: "mean", stroke: "#1565c0", width: 2 },
      { label: "min", stroke: "#90a4ae" },
      { label: "max", stroke: "#ef6c00" },
    ],
    axes: [{}, { size: 60 }],
  };
  const chart = { plot: new uPlot(opts, data, panel), data, bucket: null };
  charts[type] = chart;
  return chart;
}

// Adds a reading to the current one-second bucket of its type's chart.
function addReading(reading) {
  if (typeof reading.value !== "number") return; // null: not finite
  const chart = chartFor(reading.sensor_type || "other");
  const second = Math.floor(Date.now() / 1000);
  const b = chart.bucket;
  if (b && b.second === second) {
    b.sum += reading.value;
    b.n += 1;
    b.min = Math.min(b.min, reading.value);
    b.max = Math.max(b.max, reading.value);
  } else {
    flush(chart);
    chart.bucket = { second, sum: reading.value, n: 1, min: reading.value, max: reading.value };
  }
}

// Moves a finished bucket into the chart's data and redraws it.
function flush(chart) {
  const b = chart.bucket;
  if (!b) return;
  const [xs, avg, min, max] = chart.data;
  xs.push(b.second);
  avg.push(b.sum / b.n);
  min.push(b.min);
  max.push(b.max);
  for (const column of chart.data) {
    if (column.length > WINDOW_POINTS) column.splice(0, column.length - WINDOW_POINTS);
  }
  chart.bucket = null;
  chart.plot.setData(chart.data);
}

let received = 0;
setInterval(() => {
  document.getElementById("received-rate").textContent = received;
  received = 0;
  const second = Math.floor(Date.now() / 1000);
  for (const chart of Object.values(charts)) {
    if (chart.bucket && chart.bucket.second < second) flush(chart);
  }
}, 1000);

function setStatus(text, up) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = up ? "" : "down";
}

// Opens a WebSocket and reopens it two seconds after it closes.
function connect(path, onMessage) {
  const ws = new WebSocket(wsUrl(path));
  ws.onopen = () => setStatus("live", true);
  ws.onmessage = (event) => {
    let msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    onMessage(msg);
  };
  ws.onclose = () => {
    setStatus(`${path} disconnected, retrying…`, false);
    setTimeout(() => connect(path, onMessage), 2000);
  };
}

function addAlert(alert, prepend) {
  const body = document.getElementById("alerts");
  const row = document.createElement("tr");
  for (const text of [alert.timestamp, alert.severity, alert.sensor_id,
                      alert.alert_type, alert.message]) {
    const cell = document.createElement("td");
    cell.textContent = text === undefined || text === null ? "" : String(text);
    row.append(cell);
  }
  row.className = alert.severity || "";
  if (prepend) body.prepend(row); else body.append(row);
  while (body.rows.length > ALERT_ROWS) body.deleteRow(body.rows.length - 1);
}

async function loadAlerts() {
  try {
    const resp = await fetch(`/api/v1/alerts?limit=${ALERT_ROWS}`);
    const list = await resp.json();
    for (const alert of list.alerts || []) addAlert(alert, false);
  } catch (e) { /* the live feed still fills the list */ }
}

// Sums every sample of a metric family in Prometheus text.
function metricSum(text, name) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name + " ") || line.startsWith(name + "{")) {
      const value = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (Number.isFinite(value)) sum += value;
    }
  }
  return sum;
}

let lastStored = null;
async function pollMetrics() {
  try {
    const text = await (await fetch("/metrics")).text();
    const stored = metricSum(text, "sluice_records_stored_total");
    const dlq = metricSum(text, "sluice_dlq_records_total");
    if (lastStored !== null) {
      document.getElementById("stored-rate").textContent = Math.round((stored - lastStored) / 2);
    }
    lastStored = stored;
    document.getElementById("stored-total").textContent = stored;
    document.getElementById("dlq-total").textContent = dlq;
  } catch (e) { /* try again at the next tick */ }
}

connect("/ws/sensors", (msg) => {
  if (msg.type === "sensor_reading" && msg.data) {
    received += 1;
    addReading(msg.data);
  }
});
connect("/ws/alerts", (msg) => {
  if (msg.type === "alert" && msg.data) addAlert(msg.data, true);
});
loadAlerts();
pollMetrics();
setInterval(pollMetrics, 2000);
