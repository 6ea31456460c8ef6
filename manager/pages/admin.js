// Admin screens: staff logins and the hall configuration (check with key paths, diff, apply).
import { escapeHtml, getJson, send, signedIn } from "/manage/auth.js";

const ROLE_NAMES = { clerk: "窗口人员", duty_manager: "值班长", manager: "管理人员", admin: "系统管理员" };

async function loadStaff() {
  const rows = await getJson("/api/v1/staff");
  document.querySelector("#staff tbody").innerHTML = rows.map((s) => `
    <tr class="${s.disabled ? "disabled" : ""}" data-job="${escapeHtml(s.job_no)}">
      <td>${escapeHtml(s.job_no)}</td><td>${escapeHtml(s.name)}</td>
      <td>${s.roles.map((r) => escapeHtml(ROLE_NAMES[r] || r)).join("、")}</td>
      <td>${s.halls.length ? escapeHtml(s.halls.join("、")) : "全部"}</td>
      <td>${escapeHtml(s.counters.join("、"))}</td>
      <td>${!s.has_login ? "无登录" : s.disabled ? "已停用" : s.active ? "正常" : "不在配置中"}</td>
      <td>${s.has_login ? `
        <button type="button" data-act="${s.disabled ? "enable" : "disable"}">${s.disabled ? "启用" : "停用"}</button>
        <button type="button" data-act="password">重置密码</button>` : ""}</td>
    </tr>`).join("");
}

function list(text) {
  return text.split(/[,，、\s]+/).map((x) => x.trim()).filter(Boolean);
}

async function saveStaff(e) {
  e.preventDefault();
  const form = e.target;
  const message = document.getElementById("staff-message");
  const data = new FormData(form);
  const body = {
    job_no: data.get("job_no"), name: data.get("name"), roles: data.getAll("roles"),
    halls: list(data.get("halls")), counters: list(data.get("counters")).map(Number),
    password: data.get("password"),
  };
  try {
    const r = await send("POST", "/api/v1/staff", body);
    message.textContent = r.created ? `已创建 ${body.job_no}` : `已更新 ${body.job_no}`;
    message.className = "message ok";
    form.password.value = "";
    await loadStaff();
  } catch (err) {
    message.textContent = err.message;
    message.className = "message error";
  }
}

async function staffAction(e) {
  const act = e.target.dataset?.act;
  if (!act) return;
  const job = e.target.closest("tr").dataset.job;
  try {
    if (act === "password") {
      const password = prompt(`为 ${job} 设置新密码（至少 8 位，含两类字符）：`);
      if (!password) return;
      await send("POST", `/api/v1/staff/${encodeURIComponent(job)}/password`, { password });
      alert("密码已重置");
    } else {
      await send("POST", `/api/v1/staff/${encodeURIComponent(job)}/${act}`, {});
    }
  } catch (err) {
    alert(err.message);
  }
  await loadStaff();
}

function show(value) {
  if (value === null || value === undefined) return "（无）";
  return escapeHtml(typeof value === "string" ? value : JSON.stringify(value));
}

async function check() {
  const out = document.getElementById("check-result");
  const apply = document.getElementById("apply");
  apply.disabled = true;
  const text = document.getElementById("config-text").value;
  let result;
  try {
    result = await send("POST", "/api/v1/config/check", text, "text/plain; charset=utf-8");
  } catch (err) {
    out.innerHTML = `<p class="error">${escapeHtml(err.message)}</p>`;
    return;
  }
  if (!result.valid) {
    out.innerHTML = `<h3 class="error">配置有 ${result.issues.length} 处错误，不能应用</h3>
      <ul class="issues">${result.issues.map((i) =>
        `<li><code>${escapeHtml(i.path || "（文件）")}</code>：${escapeHtml(i.message)}</li>`).join("")}</ul>`;
    return;
  }
  const changes = result.changes.length ? `<table class="changes"><thead><tr><th>位置</th><th>运行中</th><th>上传的</th></tr></thead>
      <tbody>${result.changes.map((c) => `<tr><td><code>${escapeHtml(c.path)}</code></td>
        <td>${show(c.before)}</td><td>${show(c.after)}</td></tr>`).join("")}</tbody></table>`
    : "<p>与运行中的配置相同。</p>";
  out.innerHTML = `<p class="ok">配置有效：${escapeHtml(result.summary || "")}</p>
    <h3>差异（${result.changes.length} 处）</h3>${changes}
    ${result.refusals.length ? `<h3 class="error">不能在运行中生效</h3><ul class="refusals">${
      result.refusals.map((r) => `<li>${escapeHtml(r)}</li>`).join("")}</ul>` : ""}
    ${result.restart_needed.length ? `<ul class="restart">${
      result.restart_needed.map((r) => `<li>${escapeHtml(r)}</li>`).join("")}</ul>` : ""}`;
  apply.disabled = result.refusals.length > 0 || result.changes.length === 0;
}

async function applyConfig() {
  const out = document.getElementById("check-result");
  const text = document.getElementById("config-text").value;
  try {
    const r = await send("POST", "/api/v1/config/apply", text, "text/plain; charset=utf-8");
    out.insertAdjacentHTML("afterbegin", `<p class="ok" id="applied">已应用（配置版本 ${r.snapshot_id}），所有运行中的服务将在数秒内生效。</p>`);
    document.getElementById("apply").disabled = true;
    await loadRunning();
  } catch (err) {
    const reasons = err.problem?.reasons || [];
    out.insertAdjacentHTML("afterbegin", `<p class="error">${escapeHtml(err.message)}</p>${
      reasons.length ? `<ul class="refusals">${reasons.map((r) => `<li>${escapeHtml(r)}</li>`).join("")}</ul>` : ""}`);
  }
}

async function loadRunning() {
  const r = await getJson("/api/v1/config");
  document.getElementById("running").textContent =
    `版本 ${r.snapshot_id}，加载于 ${new Date(r.loaded_at).toLocaleString("zh-CN", { hour12: false })}`;
}

async function main() {
  await signedIn();
  document.getElementById("admin").hidden = false;
  document.getElementById("staff-form").addEventListener("submit", saveStaff);
  document.getElementById("staff").addEventListener("click", staffAction);
  document.getElementById("check").addEventListener("click", check);
  document.getElementById("apply").addEventListener("click", applyConfig);
  document.getElementById("config-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (file) document.getElementById("config-text").value = await file.text();
  });
  await Promise.all([loadStaff(), loadRunning()]);
}

main();
