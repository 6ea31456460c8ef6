// The citizen's ticket page (/t/{token}, opened from the ticket's QR): follows the ticket.
// Phones in a hall often share one address (the hall's Wi-Fi): poll gently, slower when the
// page is in the background, and wait as long as a 429 says.
const POLL_MS = 4000;
const HIDDEN_POLL_MS = 15000;
const token = location.pathname.split("/").pop();
const $ = (id) => document.getElementById(id);

// The estimate's own range (wait_low_s … wait_high_s) in whole minutes, as kiosk/layout.py
// words it; ±25 % around estimated_wait_s when a server gives no range.
function range(t) {
  const seconds = t.estimated_wait_s;
  if (seconds === null) return "当前暂无窗口办理此业务，请留意叫号";
  const lowS = t.wait_low_s ?? seconds * 0.75;
  const highS = t.wait_high_s ?? seconds * 1.25;
  if (seconds < 60 && highS < 120) return "即将叫到您，请留意叫号";
  const low = Math.max(1, Math.floor(lowS / 60));
  const high = Math.max(low + 1, Math.ceil(highS / 60));
  return `预计等候约 ${low} 至 ${high} 分钟`;
}

function show(t) {
  $("service").textContent = t.service_name;
  $("number").textContent = t.number;
  $("state").textContent = t.state_label;
  const call = $("call");
  const called = t.state === "called" && t.counter !== null;
  const text = called ? `请到${t.counter}号窗口` : "";
  if (call.textContent !== text) {
    call.textContent = text;
    call.className = called ? "on" : "";
  }
  const waiting = t.state === "waiting";
  $("ahead").textContent = waiting && t.people_ahead !== null
    ? `您前面还有 ${t.people_ahead} 人` : "";
  $("wait").textContent = waiting ? range(t) : "";
}

let timer = 0;
let inFlight = false;

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(poll, ms);
}

async function poll() {
  if (inFlight) return;
  inFlight = true;
  let wait = document.hidden ? HIDDEN_POLL_MS : POLL_MS;
  try {
    const resp = await fetch(`/api/v1/tickets/${encodeURIComponent(token)}`,
                             { headers: { "Accept": "application/json" } });
    const data = await resp.json().catch(() => ({}));
    if (resp.ok) { show(data); $("banner").textContent = ""; }
    else if (resp.status === 429) {
      wait = Math.max(wait, 1000 * (Number(resp.headers.get("Retry-After")) || 10));
    }
    else if (resp.status === 404) { $("number").textContent = "—";
      $("banner").textContent = data.detail || "未找到该号码"; inFlight = false; return; }
    else throw new Error(resp.status);
  } catch (err) {
    $("banner").textContent = "网络不稳定，正在重试…";
  }
  inFlight = false;
  schedule(wait);
}

document.addEventListener("visibilitychange", () => { if (!document.hidden) schedule(0); });
poll();
