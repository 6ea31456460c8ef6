// One hall's calendar (holidays, 调休 make-up days) and thresholds (supervision, target
// waits): checked by the server with every problem's key path, compared, applied live.
import { escapeHtml, getJson, pickHall, send, signedIn } from "/manage/auth.js";

const WEEKDAYS = ["一", "二", "三", "四", "五", "六", "日"];
const SUPERVISION = [
  ["idle_with_queue_minutes", "有人排队时窗口空闲（分钟）", "idle_with_queue"],
  ["service_over_minutes", "单笔办理超时（分钟）", "long_service"],
  ["unattended_minutes", "工作时间窗口无人（分钟）", "unattended"],
  ["no_shows_in_row", "连续过号（次）", "no_shows"],
  ["sign_in_grace_minutes", "迟到签到宽限（分钟）", "late_sign_in"],
];
let hall = null;
let loaded = null;

const lines = (id) => document.getElementById(id).value.split(/\s+/).map((s) => s.trim()).filter(Boolean);
// Numbers go as numbers; anything else as typed, so the server names its key path.
const value = (text) => (/^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text.trim());

function fill(s) {
  loaded = s;
  document.getElementById("weekdays").innerHTML = "<legend>每周工作日</legend>" + WEEKDAYS.map((d, i) =>
    `<label><input type="checkbox" name="weekday" value="${i + 1}" ${
      s.calendar.working_weekdays.includes(i + 1) ? "checked" : ""}> 周${d}</label>`).join("");
  document.getElementById("holidays").value = s.calendar.holidays.join("\n");
  document.getElementById("workdays").value = s.calendar.workdays.join("\n");
  document.querySelector("#supervision tbody").innerHTML = SUPERVISION.map(([key, label, points]) =>
    `<tr><td>${label}</td><td><input name="${key}" value="${s.supervision[key]}"></td>
      <td><input name="deduct-${points}" value="${s.supervision.deductions[points]}"></td></tr>`).join("");
  document.querySelector("#targets tbody").innerHTML = s.services.map((svc) =>
    `<tr><td>${escapeHtml(svc.name)}</td><td><input name="target" data-code="${escapeHtml(svc.code)}"
      value="${svc.target_wait_minutes}"></td></tr>`).join("");
}

function body() {
  const supervision = { ...loaded.supervision, deductions: { ...loaded.supervision.deductions } };
  for (const [key, , points] of SUPERVISION) {
    supervision[key] = value(document.querySelector(`input[name=${key}]`).value);
    supervision.deductions[points] = value(document.querySelector(`input[name=deduct-${points}]`).value);
  }
  return {
    calendar: {
      working_weekdays: [...document.querySelectorAll("input[name=weekday]:checked")].map((i) => Number(i.value)),
      holidays: lines("holidays"),
      workdays: lines("workdays"),
    },
    supervision,
    services: [...document.querySelectorAll("input[name=target]")].map((i) =>
      ({ code: i.dataset.code, target_wait_minutes: value(i.value) })),
  };
}

const show = (v) => (v === null || v === undefined ? "（无）" : escapeHtml(JSON.stringify(v)));
const base = () => `/api/v1/halls/${encodeURIComponent(hall)}/settings`;

async function check() {
  const out = document.getElementById("check-result");
  const apply = document.getElementById("apply");
  apply.disabled = true;
  let result;
  try {
    result = await send("POST", `${base()}/check`, body());
  } catch (err) {
    out.innerHTML = `<p class="error">${escapeHtml(err.message)}</p>`;
    return;
  }
  if (!result.valid) {
    out.innerHTML = `<h3 class="error">有 ${result.issues.length} 处错误，不能应用</h3>
      <ul class="issues">${result.issues.map((i) =>
        `<li><code>${escapeHtml(i.path)}</code>：${escapeHtml(i.message)}</li>`).join("")}</ul>`;
    return;
  }
  out.innerHTML = result.changes.length
    ? `<h3>差异（${result.changes.length} 处）</h3><table class="changes"><thead><tr><th>位置</th><th>运行中</th><th>修改后</th></tr></thead>
      <tbody>${result.changes.map((c) => `<tr><td><code>${escapeHtml(c.path)}</code></td>
        <td>${show(c.before)}</td><td>${show(c.after)}</td></tr>`).join("")}</tbody></table>
      ${result.refusals.length ? `<ul class="refusals">${result.refusals.map((r) =>
        `<li>${escapeHtml(r)}</li>`).join("")}</ul>` : ""}`
    : "<p>与运行中的配置相同。</p>";
  apply.disabled = result.refusals.length > 0 || result.changes.length === 0;
}

async function applySettings() {
  const out = document.getElementById("check-result");
  try {
    const r = await send("POST", `${base()}/apply`, body());
    out.insertAdjacentHTML("afterbegin",
      `<p class="ok" id="applied">已应用（配置版本 ${r.snapshot_id}），所有运行中的服务将在数秒内生效。</p>`);
    document.getElementById("apply").disabled = true;
    fill(await getJson(base()));
  } catch (err) {
    const issues = err.problem?.issues || [];
    out.insertAdjacentHTML("afterbegin", `<p class="error">${escapeHtml(err.message)}</p>${
      issues.length ? `<ul class="issues">${issues.map((i) =>
        `<li><code>${escapeHtml(i.path)}</code>：${escapeHtml(i.message)}</li>`).join("")}</ul>` : ""}`);
  }
}

async function main() {
  const user = await signedIn();
  hall = await pickHall(user);
  fill(await getJson(base()));
  document.getElementById("settings-main").hidden = false;
  document.getElementById("check").addEventListener("click", check);
  document.getElementById("apply").addEventListener("click", applySettings);
}

main();
