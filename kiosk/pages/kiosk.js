// The touch kiosk: services → one ticket per tap → the ticket on screen → back after 30 s idle.
const IDLE_MS = 30_000;
const REFRESH_MS = 10_000;
const RETRY_MS = 3_000;

const $ = (id) => document.getElementById(id);
let csrf = "";
let busy = false;
let idleTimer = 0;

function banner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
}

async function api(method, path, body, headers = {}) {
  const resp = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Accept": "application/json", "X-CSRF-Token": csrf,
               ...(body ? { "Content-Type": "application/json" } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, data };
}

function tick() {
  const now = new Date();
  $("clock").textContent = now.toLocaleString("zh-CN", { hour12: false,
    month: "long", day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit" });
}

let info = null;
let category = "";  // the chosen service group ("" = all, when the kiosk has no groups)

function serviceButton(s) {
  const b = document.createElement("button");
  b.className = "svc";
  b.type = "button";
  b.dataset.service = s.code;
  b.disabled = !s.available || busy;
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = s.name;
  const meta = document.createElement("span");
  meta.className = s.available ? "meta" : "reason";
  meta.textContent = s.available
    ? `等候 ${s.waiting} 人\n${s.wait_text}`
    : s.reason;
  b.append(name, meta);
  if (s.available && s.priority_classes.length) {
    const p = document.createElement("span");
    p.className = "prio";
    p.textContent = "老年人、残疾人等可选优先";
    b.append(p);
  }
  b.addEventListener("click", () => choose(s));
  return b;
}

function render(data) {
  info = data;
  $("hall").textContent = data.hall_name;
  $("kiosk-name").textContent = data.kiosk_name;
  const groups = [...new Set(data.services.map((s) => s.category))];
  const grouped = groups.length > 1;
  if (grouped && !groups.includes(category)) category = groups[0];
  if (!grouped) category = "";
  $("cats").hidden = !grouped;
  $("cats").replaceChildren(...(grouped ? groups : []).map((g) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = g;
    b.dataset.category = g;
    b.className = g === category ? "on" : "";
    b.addEventListener("click", () => { category = g; render(info); armIdle(); });
    return b;
  }));
  $("services").replaceChildren(...data.services
    .filter((s) => !grouped || s.category === category).map(serviceButton));
}

// A tap on a service: the priority choice first where the kiosk offers it, then the ID number
// where the service limits tickets per person, then the ticket.
function choose(s, priority = undefined) {
  if (priority === undefined && s.priority_classes.length) { askPriority(s); return; }
  if (s.needs_id) askId(s, priority || null);
  else take(s.code, null, priority || null);
}

function askPriority(s) {
  const box = $("prio-options");
  const normal = document.createElement("button");
  normal.type = "button";
  normal.textContent = "普通取号";
  normal.className = "secondary";
  normal.dataset.priority = "";
  normal.addEventListener("click", () => { closePriority(); choose(s, null); });
  box.replaceChildren(normal, ...s.priority_classes.map((p) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = p.name;
    b.dataset.priority = p.code;
    b.addEventListener("click", () => { closePriority(); choose(s, p.code); });
    return b;
  }));
  $("prio-title").textContent = `「${s.name}」：请选择`;
  $("prio").hidden = false;
  armIdle();
}

function closePriority() { $("prio").hidden = true; }
$("prio-cancel").addEventListener("click", closePriority);

async function refresh() {
  try {
    const r = await api("GET", "/api/v1/kiosk");
    if (r.status === 401 || r.status === 403) { location.replace("/pair"); return; }
    if (!r.ok) throw new Error(r.data.detail || r.status);
    render(r.data);
    banner(r.data.printer_notice || "");
  } catch (err) {
    banner("网络故障，正在重新连接服务器…");
  }
}

function showTicket(t) {
  $("t-note").textContent = t.note || "";
  $("t-service").textContent = t.ticket.service_name;
  $("t-number").textContent = t.ticket.number;
  $("t-ahead").textContent = t.ticket.people_ahead === null ? ""
    : `您前面还有 ${t.ticket.people_ahead} 人在等候`;
  $("t-wait").textContent = t.wait_text;
  $("t-qr").innerHTML = t.print.printed ? "" : t.qr_svg;  // server-made SVG, no script
  $("t-print").textContent = t.print.message;
  $("t-print").className = "print" + (t.print.printed ? "" : " virtual");
  $("t-time").textContent = "取号时间 " + new Date(t.ticket.issued_at)
    .toLocaleString("zh-CN", { hour12: false });
  $("start").hidden = true;
  $("guide").hidden = true;
  $("matter").hidden = true;
  $("tabs").hidden = true;
  $("ticket").hidden = false;
  ticketService = t.ticket.service;
  armIdle();
}

function home() {
  closeId();
  closePriority();
  closeAppt();
  for (const id of ["ticket", "guide", "matter"]) $(id).hidden = true;
  $("start").hidden = false;
  $("tabs").hidden = false;
  tab("take");
  refresh();
}

function tab(which) {
  $("tab-take").className = which === "take" ? "on" : "";
  $("tab-guide").className = which === "guide" ? "on" : "";
  $("start").hidden = which !== "take";
  $("guide").hidden = which !== "guide";
  $("matter").hidden = true;
}

function armIdle() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(home, IDLE_MS);
}

// --- ID number pad (services with a per-person daily limit); card readers that type work too
let idService = null;
let idDigits = "";

function showId() {
  // Only the count and the last two characters are shown, for the people standing behind.
  const shown = idDigits.length > 2 ? "•".repeat(idDigits.length - 2) + idDigits.slice(-2)
    : idDigits;
  $("id-value").textContent = shown;
  $("id-ok").disabled = idDigits.length !== 18;
}

let idPriority = null;

function askId(s, priority = null) {
  idService = s.code;
  idPriority = priority;
  idDigits = "";
  $("id-title").textContent = `「${s.name}」每人每日限量，请输入身份证号码`;
  showId();
  $("idpad").hidden = false;
  armIdle();
}

function closeId() {
  $("idpad").hidden = true;
  idService = null;
  idDigits = "";
}

function idKey(k) {
  if (k === "del") idDigits = idDigits.slice(0, -1);
  else if (idDigits.length < 18 && (/^[0-9]$/.test(k) || (k === "X" && idDigits.length === 17)))
    idDigits += k;
  showId();
}

document.querySelectorAll(".keys button").forEach((b) =>
  b.addEventListener("click", () => idKey(b.dataset.k)));
$("id-cancel").addEventListener("click", closeId);
$("id-ok").addEventListener("click", () => {
  const service = idService, id = idDigits, priority = idPriority;
  closeId();
  if (service && id.length === 18) take(service, id, priority);
});
document.addEventListener("keydown", (e) => {
  if ($("idpad").hidden) return;
  if (e.key === "Enter") $("id-ok").click();
  else if (e.key === "Backspace") idKey("del");
  else if (/^[0-9xX]$/.test(e.key)) idKey(e.key.toUpperCase());
});

async function take(service, idNumber = null, priority = null) {
  if (busy) return;  // one ticket per tap: a second tap while the first is out does nothing
  busy = true;
  document.querySelectorAll(".svc").forEach((b) => { b.disabled = true; });
  const key = crypto.randomUUID();  // this tap's key: retries of it never issue twice
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const body = { service };
        if (idNumber) body.id_number = idNumber;
        if (priority) body.priority_class = priority;
        const r = await api("POST", "/api/v1/kiosk/tickets", body, { "Idempotency-Key": key });
        if (r.ok) { banner(""); showTicket(r.data); return; }
        if (r.status >= 500) throw new Error(r.data.detail || r.status);
        banner(r.data.detail || "暂时无法取号");
        setTimeout(() => banner(""), 6000);
        return;
      } catch (err) {
        banner("网络故障，正在重试取号…");
        await new Promise((ok) => setTimeout(ok, RETRY_MS));
      }
    }
    banner("暂时无法连接服务器，请稍后再试或到咨询台取号");
  } finally {
    busy = false;
    if (!$("start").hidden) refresh();
  }
}

// --- the service guide (办事指南): categories, pinyin search, a matter, its notice slip ---
let ticketService = null;
let gCategory = "";
let gQuery = "";
let gService = "";
let gTimer = 0;
let matterCode = null;
const LETTERS = "QWERTYUIOPASDFGHJKLZXCVBNM";

function letterKeys() {
  const keys = [...LETTERS].map((c) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = c;
    b.dataset.k = c.toLowerCase();
    return b;
  });
  for (const [label, k] of [["删除", "del"], ["清空", "clear"]]) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.k = k;
    b.className = "wide";
    keys.push(b);
  }
  for (const b of keys) b.addEventListener("click", () => guideKey(b.dataset.k));
  $("g-keys").replaceChildren(...keys);
}

function guideKey(k) {
  if (k === "del") gQuery = gQuery.slice(0, -1);
  else if (k === "clear") gQuery = "";
  else if (gQuery.length < 20) gQuery += k;
  $("g-query").textContent = gQuery;
  clearTimeout(gTimer);
  gTimer = setTimeout(loadGuide, 150);
  armIdle();
}

async function loadGuide() {
  const q = new URLSearchParams({ q: gQuery, category: gCategory, service: gService });
  try {
    const r = await api("GET", `/api/v1/kiosk/guide?${q}`);
    if (r.status === 401 || r.status === 403) { location.replace("/pair"); return; }
    if (!r.ok) throw new Error(r.data.detail || r.status);
    const all = document.createElement("button");
    all.type = "button";
    all.textContent = "全部";
    all.dataset.category = "";
    $("g-cats").replaceChildren(all, ...r.data.categories.map((c) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `${c.label}（${c.count}）`;
      b.dataset.category = c.code;
      return b;
    }));
    for (const b of $("g-cats").children) {
      b.className = b.dataset.category === gCategory ? "on" : "";
      b.addEventListener("click", () => { gCategory = b.dataset.category; loadGuide(); armIdle(); });
    }
    $("g-list").replaceChildren(...r.data.matters.map((m) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "item";
      b.dataset.matter = m.code;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = m.name;
      const sub = document.createElement("span");
      sub.className = "sub";
      sub.textContent = `${m.department} · ${m.kind_text} · 在「${m.services.map((x) => x.name).join("、")}」办理`;
      b.append(name, sub);
      b.addEventListener("click", () => openMatter(m.code));
      return b;
    }));
    $("g-empty").hidden = r.data.matters.length > 0;
    banner("");
  } catch (err) {
    banner("网络故障，正在重新连接服务器…");
  }
}

function openGuide(service = "") {
  gService = service;
  gCategory = "";
  gQuery = "";
  $("g-query").textContent = "";
  $("ticket").hidden = true;
  $("tabs").hidden = false;
  tab("guide");
  loadGuide();
  armIdle();
}

function li(text) {
  const item = document.createElement("li");
  item.textContent = text;
  return item;
}

async function openMatter(code) {
  const r = await api("GET", `/api/v1/kiosk/guide/${encodeURIComponent(code)}`);
  if (!r.ok) { banner(r.data.detail || "暂时无法显示该事项"); return; }
  const m = r.data;
  matterCode = m.code;
  $("m-name").textContent = m.name;
  $("m-dept").textContent = m.department;
  const facts = [
    ["办件类型", m.kind_text], ["办理时限", m.time_limit_text], ["收费", m.fees.join("；")],
    ["跑动次数", `${m.visits_text}；${m.online_text}`],
    ["办理地点", m.services.map((x) => x.name).join("、") + (m.zone ? `（${m.zone}）` : "")],
  ];
  if (m.phone) facts.push(["咨询电话", m.phone]);
  if (m.legal_basis) facts.push(["设定依据", m.legal_basis]);
  $("m-facts").replaceChildren(...facts.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    return [dt, dd];
  }));
  $("m-materials").replaceChildren(...(m.materials.length
    ? m.materials.map((x) => li(x.text)) : [li("请到窗口咨询")]));
  $("m-conditions").replaceChildren(...m.conditions.map(li));
  $("m-cond-box").hidden = !m.conditions.length;
  $("m-process").replaceChildren(...m.process.map(li));
  $("m-proc-box").hidden = !m.process.length;
  $("m-guide").textContent = m.guide;
  $("m-print").textContent = "";
  $("m-print").className = "print-msg";
  const services = info ? info.services : [];
  $("m-take").replaceChildren(...m.services.map((x) => {
    const s = services.find((y) => y.code === x.code);
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.take = x.code;
    b.textContent = `取号办理：${x.name}`;
    b.disabled = !s || !s.available;
    b.addEventListener("click", () => { if (s) choose(s); });
    return b;
  }));
  $("guide").hidden = true;
  $("ticket").hidden = true;
  $("tabs").hidden = true;
  $("matter").hidden = false;
  armIdle();
}

let printing = false;

$("m-notice").addEventListener("click", async () => {
  if (printing || !matterCode) return;
  printing = true;
  $("m-print").textContent = "正在打印，请稍候…";
  try {
    const r = await api("POST", "/api/v1/kiosk/notices", { matter: matterCode });
    const msg = r.ok ? r.data.print.message : (r.data.detail || "暂时无法打印，请拍照保存本页");
    $("m-print").textContent = msg;
    $("m-print").className = "print-msg" + (r.ok && r.data.print.printed ? "" : " virtual");
  } catch (err) {
    $("m-print").textContent = "网络故障，请拍照保存本页";
    $("m-print").className = "print-msg virtual";
  } finally {
    printing = false;
    armIdle();
  }
});
$("m-back").addEventListener("click", () => {
  $("matter").hidden = true;
  $("tabs").hidden = false;
  tab("guide");
  armIdle();
});
$("tab-take").addEventListener("click", () => { tab("take"); refresh(); });
$("tab-guide").addEventListener("click", () => openGuide());
$("t-guide").addEventListener("click", () => openGuide(ticketService || ""));
letterKeys();

// --- appointment check-in (预约签到): booking code or phone, keypad or a scanner that types ---
let apptMode = "code";
let apptValue = "";

function showAppt() {
  $("appt-value").textContent = apptMode === "phone" && apptValue.length > 7
    ? apptValue.slice(0, 3) + "****" + apptValue.slice(7) : apptValue;
  $("appt-ok").disabled = apptMode === "phone" ? apptValue.length !== 11 : apptValue.length < 4;
  $("appt-by-code").className = apptMode === "code" ? "on" : "";
  $("appt-by-phone").className = apptMode === "phone" ? "on" : "";
}

function apptKey(k) {
  if (k === "del") apptValue = apptValue.slice(0, -1);
  else if (k === "clear") apptValue = "";
  else if (apptValue.length < (apptMode === "phone" ? 11 : 16)) apptValue += k;
  showAppt();
  armIdle();
}

function openAppt() {
  apptMode = "code";
  apptValue = "";
  showAppt();
  $("appt").hidden = false;
  armIdle();
}

function closeAppt() { $("appt").hidden = true; apptValue = ""; }

async function checkIn() {
  if (busy) return;
  const body = apptMode === "phone" ? { phone: apptValue } : { code: apptValue };
  closeAppt();
  busy = true;
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const r = await api("POST", "/api/v1/kiosk/appointments", body);
        if (r.ok) { banner(""); showTicket(r.data); return; }
        if (r.status >= 500) throw new Error(r.data.detail || r.status);
        banner(r.data.detail || "暂时无法签到");
        setTimeout(() => banner(""), 8000);
        return;
      } catch (err) {
        banner("网络故障，正在重试签到…");
        await new Promise((ok) => setTimeout(ok, RETRY_MS));
      }
    }
    banner("暂时无法连接服务器，请稍后再试或到咨询台签到");
  } finally {
    busy = false;
  }
}

document.querySelectorAll("#appt-keys button").forEach((b) =>
  b.addEventListener("click", () => apptKey(b.dataset.k)));
$("appt-open").addEventListener("click", openAppt);
$("appt-cancel").addEventListener("click", closeAppt);
$("appt-ok").addEventListener("click", checkIn);
$("appt-by-code").addEventListener("click", () => { apptMode = "code"; apptValue = ""; showAppt(); });
$("appt-by-phone").addEventListener("click", () => { apptMode = "phone"; apptValue = ""; showAppt(); });
document.addEventListener("keydown", (e) => {
  if ($("appt").hidden) return;
  if (e.key === "Enter") { if (!$("appt-ok").disabled) checkIn(); }
  else if (e.key === "Backspace") apptKey("del");
  else if (/^[0-9A-Za-z]$/.test(e.key) && (apptMode === "code" || /[0-9]/.test(e.key)))
    apptKey(e.key.toUpperCase());
});

async function main() {
  tick();
  setInterval(tick, 1000);
  $("done").addEventListener("click", home);
  document.addEventListener("pointerdown", () => {
    if ($("start").hidden || !$("idpad").hidden || !$("prio").hidden || !$("appt").hidden)
      armIdle();
  });
  for (;;) {
    try {
      const me = await api("GET", "/api/v1/me");
      if (me.status === 401 || (me.ok && me.data.kind !== "kiosk")) {
        location.replace("/pair");
        return;
      }
      if (me.ok) { csrf = me.data.csrf_token || ""; break; }
      throw new Error(me.status);
    } catch (err) {
      banner("网络故障，正在连接服务器…");
      await new Promise((ok) => setTimeout(ok, RETRY_MS));
    }
  }
  await refresh();
  setInterval(() => { if (!$("start").hidden) refresh(); }, REFRESH_MS);
}

main();
