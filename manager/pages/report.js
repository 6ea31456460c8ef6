// Reports for a period (table, CSV/XLSX export, printable page) and Erlang C staffing advice.
import { escapeHtml, getJson, minutes, pickHall, signedIn } from "/manage/auth.js";

const COLUMNS = [
  ["label", "名称"], ["issued", "取号"], ["served", "办结"], ["no_show", "过号"],
  ["cancelled", "取消"], ["transferred", "转办"], ["wait_p50_s", "等待中位"],
  ["wait_p90_s", "等待P90"], ["wait_max_s", "最长等待"], ["service_p50_s", "办理中位"],
  ["service_p90_s", "办理P90"], ["service_level", "服务水平"], ["rated", "评价"],
  ["bad", "差评"], ["satisfaction", "满意率"], ["alarms", "监察告警"], ["deducted", "考核扣分"],
  ["score", "考核得分"],
];
const rate = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);
let hall = null;

function cell(row, key) {
  const v = row[key];
  if (v === null || v === undefined) return "—";
  if (key.endsWith("_s")) return minutes(v);
  if (key === "service_level" || key === "satisfaction") return `${(v * 100).toFixed(1)}%`;
  return escapeHtml(v);
}

function table(rows, total) {
  const head = COLUMNS.map(([, label]) => `<th>${label}</th>`).join("");
  const line = (r) => `<tr>${COLUMNS.map(([key]) => `<td>${cell(r, key)}</td>`).join("")}</tr>`;
  const body = rows.length ? rows.map(line).join("")
    : `<tr><td colspan="${COLUMNS.length}">本期间没有数据</td></tr>`;
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody><tfoot>${line(total)}</tfoot></table>`;
}

async function run(e) {
  e?.preventDefault();
  const form = document.getElementById("report-form");
  const q = new URLSearchParams(new FormData(form));
  const base = `/api/v1/halls/${encodeURIComponent(hall)}`;
  const error = document.getElementById("report-error");
  error.textContent = "";
  try {
    const report = await getJson(`${base}/reports?${q}`);
    document.getElementById("report-table").innerHTML = table(report.rows, report.total);
    const cases = report.cases;
    document.getElementById("cases").textContent = cases
      ? report.case_labels.filter(([key]) => key in cases).map(([key, label]) =>
          `${label} ${key === "bad_ratings" ? (cases[key] ?? "—") : rate(cases[key])}`).join("，")
      : "按时办结率、现场办结率：—（待办件数据）";
    document.getElementById("exports").innerHTML = ["csv", "xlsx", "html"].map((f) =>
      `<a href="${base}/reports?${q}&format=${f}" ${f === "html" ? 'target="_blank"' : "download"}>${
        { csv: "导出 CSV", xlsx: "导出 Excel", html: "打印版" }[f]}</a>`).join("");
    const staffing = await getJson(`${base}/staffing?from=${q.get("from")}&to=${q.get("to")}`);
    document.getElementById("staffing").innerHTML = staffing.length ? `<table>
      <thead><tr><th>业务</th><th>时段</th><th>到达（人/时）</th><th>平均办理</th><th>目标等待</th>
        <th>建议窗口数</th><th>实际叫号窗口（均值）</th><th>预计服务水平</th></tr></thead><tbody>${
      staffing.map((s) => `<tr><td>${escapeHtml(s.service_name)}</td><td>${s.hour}:00–${s.hour + 1}:00</td>
        <td>${s.arrivals_per_hour.toFixed(1)}</td><td>${minutes(s.service_s)}</td><td>${minutes(s.target_wait_s)}</td>
        <td>${s.needed}</td><td class="${s.counters_working + 0.05 < s.needed ? "short" : ""}">${s.counters_working.toFixed(1)}</td>
        <td>${(s.predicted_level * 100).toFixed(0)}%</td></tr>`).join("")}</tbody></table>` : "<p>本期间没有数据</p>";
  } catch (err) {
    error.textContent = err.message;
  }
}

async function main() {
  const user = await signedIn();
  hall = await pickHall(user);
  document.getElementById("report-main").hidden = false;
  const form = document.getElementById("report-form");
  const q = new URLSearchParams(location.search);
  const today = new Date().toLocaleDateString("sv-SE");
  form.elements.from.value = q.get("from") || today;
  form.elements.to.value = q.get("to") || today;
  if (q.get("by")) form.elements.by.value = q.get("by");
  form.addEventListener("submit", run);
  await run();
}

main();
