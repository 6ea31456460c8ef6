// The citizen's ticket page (/t/{token}, opened from the ticket's QR): follows the ticket live
// through a long poll that answers when the ticket changes (or after ~25 s without change).
// A lost connection shows a banner at once and retries with a growing pause; phones in a hall
// often share one address (the hall's Wi-Fi), so a 429 is waited out as it says.
const HOLD_MS = 35_000;  // longer than the server's hold: no answer by then = connection lost
const RETRY_MS = [1000, 2000, 4000, 8000, 15000];
const token = location.pathname.split("/").pop();
const $ = (id) => document.getElementById(id);
let version = "";
let failures = 0;

function show(t) {
  $("service").textContent = t.service_name;
  $("number").textContent = t.number;
  $("state").textContent = t.state_label;
  const call = $("call");
  const text = t.call_text || "";
  if (call.textContent !== text || (text && t.version !== version)) {
    call.textContent = text;
    call.className = "";
    if (text) { void call.offsetWidth; call.className = "on"; }  // flash again on a recall
  }
  $("ahead").textContent = t.people_ahead !== null ? `您前面还有 ${t.people_ahead} 人` : "";
  $("wait").textContent = t.wait_text;
  $("note").textContent = t.note || "";
}

function lost(text) {
  $("banner").textContent = text;
  $("banner").hidden = false;
}

async function follow() {
  for (;;) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), HOLD_MS);
    let pause = 0;
    try {
      const q = new URLSearchParams({ since: version });
      const resp = await fetch(`/api/v1/tickets/${encodeURIComponent(token)}/follow?${q}`,
                               { headers: { "Accept": "application/json" }, signal: ctl.signal });
      const data = await resp.json().catch(() => ({}));
      if (resp.ok) {
        failures = 0;
        $("banner").hidden = true;
        show(data);
        version = data.version;
        if (data.final) { $("footer").textContent = "本号码已结束，无需再留意叫号。"; return; }
      } else if (resp.status === 404) {
        $("number").textContent = "—";
        lost(data.detail || "未找到该号码");
        return;
      } else if (resp.status === 429) {
        pause = 1000 * (Number(resp.headers.get("Retry-After")) || 10);
      } else {
        throw new Error(String(resp.status));
      }
    } catch (err) {
      lost("网络连接中断，正在重新连接…（页面显示的可能不是最新状态）");
      pause = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
      failures += 1;
    } finally {
      clearTimeout(timer);
    }
    if (pause) await new Promise((ok) => setTimeout(ok, pause));
  }
}

follow();
