// Multi-hall overview: today's figures of every hall the manager looks after, rolled up the
// hall tree (township → county → city); refreshed every few seconds.
import { escapeHtml, getJson, minutes, signedIn } from "/manage/auth.js";

const LEVELS = { province: "省级", city: "市级", county: "县级", township: "乡镇", village: "村（社区）" };
const REFRESH_MS = 5000;
const LATE_S = 30 * 60;

const rate = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);

function row(node) {
  const t = node.total;
  const pad = "　".repeat(node.depth * 2);
  const link = `/manage?hall=${encodeURIComponent(node.hall)}`;
  const own = node.halls > 1
    ? `<br><span class="note">含下级 ${node.halls - 1} 个大厅；本级 取号 ${node.own.issued}、办结 ${node.own.served}、等候 ${node.own.waiting}</span>`
    : "";
  return `<tr class="depth-${node.depth}" data-hall="${escapeHtml(node.hall)}">
    <td>${pad}<a href="${link}">${escapeHtml(node.name)}</a>${own}</td>
    <td>${LEVELS[node.level] || escapeHtml(node.level)}</td>
    <td class="issued">${t.issued}</td><td class="served">${t.served}</td><td>${t.no_show}</td>
    <td class="waiting">${t.waiting}</td>
    <td class="${t.longest_wait_s !== null && t.longest_wait_s > LATE_S ? "late" : ""}">${minutes(t.longest_wait_s)}</td>
    <td>${t.rated}</td><td>${rate(t.satisfaction)}</td><td>${t.bad}</td></tr>`;
}

async function refresh() {
  const error = document.getElementById("overview-error");
  try {
    const data = await getJson("/api/v1/overview");
    error.textContent = "";
    document.getElementById("overview-table").innerHTML = `<table>
      <thead><tr><th>大厅</th><th>级别</th><th>取号</th><th>办结</th><th>过号</th><th>等候中</th>
        <th>最长等待</th><th>评价数</th><th>满意率</th><th>差评</th></tr></thead>
      <tbody>${data.halls.length ? data.halls.map(row).join("")
        : '<tr><td colspan="10">没有可查看的大厅</td></tr>'}</tbody></table>`;
    document.getElementById("updated").textContent =
      `更新于 ${new Date(data.now).toLocaleTimeString("zh-CN", { hour12: false })}`;
  } catch (err) {
    error.textContent = err.message;
  }
}

async function main() {
  await signedIn();
  document.getElementById("overview-main").hidden = false;
  await refresh();
  setInterval(refresh, REFRESH_MS);
}

main();
