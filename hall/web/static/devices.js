// Device pairing admin page (/admin/devices): a hall manager approves the codes browsers show
// at /pair for a configured device (the kinds come from the server: kiosk, TV, web pad, …), and
// lists and revokes the hall's paired devices.
const REFRESH_MS = 3000;
const KIND_LABELS = { bridge: "串口桥接" };  // plus each target's label from the server
const $ = (id) => document.getElementById(id);
let csrf = "";
let hall = "";
let timer = 0;

function message(text, ok = false) {
  $("msg").textContent = text || "";
  $("msg").className = text ? (ok ? "ok" : "err") : "";
}

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Accept": "application/json", "X-CSRF-Token": csrf,
               ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, data };
}

const time = (iso) => iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—";

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function targetOptions(select, targets) {
  const keep = select.value;
  select.replaceChildren(...targets.map((t) => {
    KIND_LABELS[t.kind] = t.label;
    const o = document.createElement("option");
    o.value = `${t.kind}:${t.device_id}`;
    o.textContent = `${t.label} ${t.device_id} · ${t.name}` +
      (t.paired ? `（已配对 ${t.paired} 台）` : "");
    return o;
  }));
  if (keep && [...select.options].some((o) => o.value === keep)) select.value = keep;
}

async function approve(code, target) {
  const [kind, device_id] = target.split(":");
  const r = await api("POST", `/api/v1/halls/${encodeURIComponent(hall)}/pairings/` +
    `${encodeURIComponent(code)}/approve`, { kind, device_id });
  if (r.ok) message(`已批准配对码 ${code}：${KIND_LABELS[kind] || kind} ${device_id}，设备将自动完成配对`, true);
  else message(r.data.detail || "批准失败");
  await refresh();
}

async function revoke(device) {
  if (!confirm(`吊销「${device.name}」(${device.device_id}) 的配对？该设备页面将立即失效，需要重新配对。`)) return;
  const r = await api("POST",
    `/api/v1/halls/${encodeURIComponent(hall)}/device-tokens/${device.id}/revoke`);
  if (r.ok) message(`已吊销「${device.name}」的配对`, true);
  else message(r.data.detail || "吊销失败");
  await refresh();
}

function render(data) {
  targetOptions($("approve-target"), data.targets);
  const pending = data.pending.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.code = p.code;
    const pick = document.createElement("select");
    pick.setAttribute("aria-label", `配对码 ${p.code} 批准为`);
    targetOptions(pick, data.targets);
    const go = document.createElement("button");
    go.className = "primary";
    go.type = "button";
    go.textContent = "批准";
    go.addEventListener("click", () => approve(p.code, pick.value));
    const tdPick = document.createElement("td");
    tdPick.append(pick);
    const tdGo = document.createElement("td");
    tdGo.append(go);
    tr.append(cell(p.code, "code"), cell(time(p.created_at)), cell(time(p.expires_at)),
      cell(`${p.ip || ""} ${(p.user_agent || "").slice(0, 40)}`, "muted"), tdPick, tdGo);
    return tr;
  });
  // Keep a half-made choice in the table: only redraw when the codes changed.
  const codes = data.pending.map((p) => p.code).join(",");
  if ($("pending").dataset.codes !== codes) {
    $("pending").replaceChildren(...pending);
    $("pending").dataset.codes = codes;
  }
  $("pending-empty").hidden = data.pending.length > 0;
  $("paired").replaceChildren(...data.paired.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.device = `${d.kind}:${d.device_id}`;
    const b = document.createElement("button");
    b.className = "danger";
    b.type = "button";
    b.textContent = "吊销";
    b.addEventListener("click", () => revoke(d));
    const td = document.createElement("td");
    td.append(b);
    tr.append(cell(d.name), cell(KIND_LABELS[d.kind] || d.kind), cell(d.device_id),
      cell(time(d.created_at)), cell(time(d.last_used_at)), td);
    return tr;
  }));
  $("paired-empty").hidden = data.paired.length > 0;
}

async function refresh() {
  clearTimeout(timer);
  try {
    const r = await api("GET", `/api/v1/halls/${encodeURIComponent(hall)}/pairings`);
    if (r.status === 401) { showLogin(); return; }
    if (!r.ok) { message(r.data.detail || "无法读取设备列表"); }
    else render(r.data);
  } catch (err) {
    message("无法连接服务器，正在重试…");
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function showLogin() {
  clearTimeout(timer);
  $("app").hidden = true;
  $("login").hidden = false;
  $("job-no").focus();
}

async function start(me) {
  csrf = me.csrf_token || "";
  $("who").textContent = me.name || me.actor;
  let halls = me.halls;
  if (!halls.length) {
    const r = await api("GET", "/api/v1/halls");
    halls = r.ok ? r.data.map((h) => h.id) : [];
  }
  const select = $("hall");
  select.replaceChildren(...halls.map((h) => {
    const o = document.createElement("option");
    o.value = o.textContent = h;
    return o;
  }));
  hall = halls[0] || "";
  $("hall-pick").hidden = halls.length < 2;
  $("login").hidden = true;
  $("app").hidden = false;
  await refresh();
}

$("hall").addEventListener("change", () => { hall = $("hall").value; message(""); refresh(); });

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("POST", "/api/v1/login",
    { job_no: $("job-no").value.trim(), password: $("password").value });
  $("password").value = "";
  if (!r.ok) { alert(r.data.detail || "登录失败"); return; }
  const me = await api("GET", "/api/v1/me");
  if (me.ok) await start(me.data);
});

$("approve-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = $("approve-code").value.trim();
  if (!/^\d{6}$/.test(code)) { message("配对码是 6 位数字"); return; }
  await approve(code, $("approve-target").value);
  $("approve-code").value = "";
});

async function main() {
  for (;;) {
    try {
      const me = await api("GET", "/api/v1/me");
      if (me.status === 401 || (me.ok && me.data.kind !== "staff")) { showLogin(); return; }
      if (me.ok) { await start(me.data); return; }
      throw new Error(me.status);
    } catch (err) {
      message("无法连接服务器，正在重试…");
      $("app").hidden = false;
      await new Promise((ok) => setTimeout(ok, REFRESH_MS));
    }
  }
}

main();
