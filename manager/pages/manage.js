// The hall dashboard (/manage): figures per service and counter, alarms, charts; kept live by
// the hall's websocket feed (dashboard channel): every event schedules a refresh of the
// figures, and timers tick locally between events.
import * as echarts from "/manage/vendor/echarts-5.6.0/echarts.esm.min.js";
import { LiveClient, liveUrl } from "/static/live.js";
import { escapeHtml, getJson, minutes, pickHall, send, signedIn } from "/manage/auth.js";

const STATUS = { connected: "实时连接正常", connecting: "正在连接…", disconnected: "连接中断，正在重连…" };
let hall = null;
let data = null;
let loadedAt = 0;
let pending = null;
const charts = {};

function fmtTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString("zh-CN", { hour12: false, hour: "2-digit", minute: "2-digit" });
}

function since(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = seconds + (Date.now() - loadedAt) / 1000;
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

function renderServices() {
  const body = document.querySelector("#services tbody");
  body.innerHTML = data.services.map((s) => `
    <tr data-service="${escapeHtml(s.code)}">
      <td>${escapeHtml(s.name)}</td>
      <td class="waiting">${s.waiting}</td>
      <td class="${s.longest_wait_s > s.target_wait_s ? "late" : ""}">${s.waiting ? minutes(s.longest_wait_s) : "—"}</td>
      <td>${s.waiting ? minutes(s.estimated_wait_s) : "—"}</td>
      <td>${s.issued_today}</td>
      <td class="served">${s.served_today}</td>
    </tr>`).join("");
}

function renderCounters() {
  const open = data.counters.filter((c) => c.state !== "closed").length;
  document.getElementById("counter-summary").textContent = `开放 ${open} / ${data.counters.length}`;
  document.getElementById("counters").innerHTML = data.counters.map((c) => {
    const rating = c.rated_today ? `满意 ${Math.round((100 * c.satisfied_today) / c.rated_today)}%` : "";
    return `
    <div class="counter ${escapeHtml(c.state)}" data-counter="${c.number}">
      <div><span class="num">${c.number}</span> <span class="state">${escapeHtml(c.state_label)}</span></div>
      <div>${escapeHtml(c.clerk_name || c.clerk || "")}</div>
      <div><span class="ticket">${escapeHtml(c.ticket || "")}</span>
        <span class="timer" data-for="${c.ticket_for_s ?? ""}">${since(c.ticket_for_s)}</span></div>
      <div>办结 <span class="served">${c.served_today}</span>${c.mean_service_s ? ` 均${minutes(c.mean_service_s)}` : ""}</div>
      <div>${rating}${c.bad_today ? ` · 差评 ${c.bad_today}` : ""}</div>
    </div>`;
  }).join("");
}

function renderAlarms() {
  const active = data.alarms.filter((a) => !a.acked).length;
  document.getElementById("alarm-count").textContent = active ? `（未确认 ${active}）` : "";
  const list = document.getElementById("alarms");
  if (!data.alarms.length) {
    list.innerHTML = "<li>当前没有告警</li>";
    return;
  }
  list.innerHTML = data.alarms.map((a) => `
    <li class="${escapeHtml(a.severity)}${a.acked ? " acked" : ""}" data-key="${escapeHtml(a.key)}">
      <div class="msg">${escapeHtml(a.message)}<div class="when">${a.since ? `自 ${fmtTime(a.since)}` : ""}</div></div>
      ${a.acked ? "<span>已确认</span>" : `<button type="button" data-ack="${escapeHtml(a.key)}">确认</button>`}
    </li>`).join("");
}

function chart(id) {
  if (!charts[id]) charts[id] = echarts.init(document.getElementById(id), "dark", { renderer: "canvas" });
  return charts[id];
}

function renderCharts() {
  const c = data.charts;
  const hours = c.hours.map((h) => `${h}时`);
  const base = { backgroundColor: "transparent", grid: { left: 40, right: 16, top: 36, bottom: 28 },
                 tooltip: { trigger: "axis" }, animation: false };
  chart("chart-arrivals").setOption({
    ...base,
    legend: { data: ["取号", "服务能力"], top: 0 },
    xAxis: { type: "category", data: hours },
    yAxis: { type: "value", name: "人/时" },
    series: [
      { name: "取号", type: "bar", data: c.arrivals },
      { name: "服务能力", type: "line", data: c.capacity, smooth: true },
    ],
  });
  chart("chart-waits").setOption({
    ...base,
    xAxis: { type: "category", data: c.wait_labels },
    yAxis: { type: "value", name: "人" },
    series: [{ name: "人数", type: "bar", data: c.wait_counts }],
  });
  chart("chart-open").setOption({
    ...base,
    xAxis: { type: "category", data: hours },
    yAxis: { type: "value", name: "窗口", minInterval: 1 },
    series: [{ name: "开放窗口", type: "line", step: "middle", data: c.counters_open }],
  });
}

async function refresh() {
  pending = null;
  try {
    data = await getJson(`/api/v1/halls/${encodeURIComponent(hall)}/dashboard`);
  } catch (e) {
    setStatus("disconnected", e.message);
    return;
  }
  loadedAt = Date.now();
  document.getElementById("title").textContent = `${data.hall_name} 管理看板`;
  document.getElementById("board").hidden = false;
  renderServices();
  renderCounters();
  renderAlarms();
  renderCharts();
  document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
}

function schedule(delayMs = 300) {
  if (pending === null) pending = setTimeout(refresh, delayMs);
}

function setStatus(status, text) {
  const el = document.getElementById("status");
  el.className = `status ${status}`;
  el.textContent = text || STATUS[status] || status;
}

function tick() {
  document.getElementById("clock").textContent = new Date().toLocaleTimeString("zh-CN", { hour12: false });
  for (const el of document.querySelectorAll(".timer")) {
    const value = el.dataset.for;
    el.textContent = value === "" ? "" : since(Number(value));
  }
}

async function main() {
  const user = await signedIn();
  hall = await pickHall(user);
  document.getElementById("report-link").href = `/manage/report.html?hall=${encodeURIComponent(hall)}`;
  document.getElementById("alarms").addEventListener("click", async (e) => {
    const key = e.target.dataset?.ack;
    if (!key) return;
    e.target.disabled = true;
    try {
      await send("POST", `/api/v1/halls/${encodeURIComponent(hall)}/alarms/ack`, { key });
    } catch (err) {
      alert(err.message);
    }
    schedule(0);
  });
  await refresh();
  const live = new LiveClient(liveUrl(hall, "dashboard"), {
    onState: () => schedule(),
    onStatus: (status) => setStatus(status),
  });
  live.start();
  setInterval(tick, 1000);
  setInterval(() => schedule(0), 30000); // waits grow even when nothing happens
  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
}

main();
