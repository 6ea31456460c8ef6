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

function render(info) {
  $("hall").textContent = info.hall_name;
  $("kiosk-name").textContent = info.kiosk_name;
  const grid = $("services");
  grid.replaceChildren(...info.services.map((s) => {
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
    b.addEventListener("click", () => (s.needs_id ? askId(s) : take(s.code)));
    return b;
  }));
}

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
  $("ticket").hidden = false;
  armIdle();
}

function home() {
  closeId();
  $("ticket").hidden = true;
  $("start").hidden = false;
  refresh();
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

function askId(s) {
  idService = s.code;
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
  const service = idService, id = idDigits;
  closeId();
  if (service && id.length === 18) take(service, id);
});
document.addEventListener("keydown", (e) => {
  if ($("idpad").hidden) return;
  if (e.key === "Enter") $("id-ok").click();
  else if (e.key === "Backspace") idKey("del");
  else if (/^[0-9xX]$/.test(e.key)) idKey(e.key.toUpperCase());
});

async function take(service, idNumber = null) {
  if (busy) return;  // one ticket per tap: a second tap while the first is out does nothing
  busy = true;
  document.querySelectorAll(".svc").forEach((b) => { b.disabled = true; });
  const key = crypto.randomUUID();  // this tap's key: retries of it never issue twice
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const body = idNumber ? { service, id_number: idNumber } : { service };
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

async function main() {
  tick();
  setInterval(tick, 1000);
  $("done").addEventListener("click", home);
  document.addEventListener("pointerdown", () => {
    if (!$("ticket").hidden || !$("idpad").hidden) armIdle();
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
