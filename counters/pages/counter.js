// The clerk terminal (/counter?hall=H[&counter=N]): one counter, every action one key.
// What it shows is read from GET …/counters/N/desk; the counter's live channel says when to
// read again, so the screen follows keypads, other terminals and supervisors too.
import { LiveClient, liveUrl } from "/static/live.js";
import { api, logout, whoAmI } from "/counters/static/common.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const WATCHDOG_MS = 8000; // the server pings every 5 s: 8 s of silence shows the banner

// Which actions make sense in which counter state (the server decides; this only greys out).
const ENABLED = {
  closed: ["open"],
  idle: ["call_next", "call", "call_back", "pause", "close"],
  calling: ["recall", "start", "finish", "no_show", "transfer", "park"],
  serving: ["finish", "transfer", "park"],
  paused: ["resume", "close", "call_back"],
};
const KEYS = {
  F1: "call_next", F2: "recall", F3: "call", F4: "start", F6: "finish", F7: "no_show",
  F8: "transfer", F9: "park", F10: "call_back",
};
const ALT_KEYS = { o: "open", p: "pause", r: "resume", c: "close", q: "logout", l: "locks" };
// Who may see and release hardware sign-in lockouts (the server checks again).
const LOCK_ROLES = ["manager", "admin"];
const DONE_TEXT = {
  open: "窗口已开启", call_next: "已叫号", recall: "已重呼", call: "已特呼", start: "开始办理",
  finish: "已办结", no_show: "已标记过号", transfer: "已转办", park: "已挂起",
  call_back: "已回呼，号码回到队列", pause: "已暂停服务", resume: "已恢复服务", close: "窗口已关闭",
};

let me = null;
let hall = params.get("hall");
let counter = params.get("counter") ? Number(params.get("counter")) : null;
let desk = null;
let clockOffset = 0; // server time minus local time, ms
let live = null;
let busy = false;
let refreshing = null;
let refreshAgain = false;
let dialogDone = null;
let hookModules = null;

function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

function fmt(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "";
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mmss = `${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  return h ? `${h}:${mmss}` : mmss;
}

const since = (iso) => (iso ? (Date.now() + clockOffset - Date.parse(iso)) / 1000 : null);

// The marks a waiting number carries: why it comes when it does.
function marks(span, n) {
  if (n.called_back) span.append(tag("回", "called-back"));
  else if (n.transferred) span.append(tag("转", "transferred"));
  if (n.priority) span.append(tag("优", "priority"));
}

function tag(text, kind) {
  const span = document.createElement("span");
  span.className = `tag ${kind}`;
  span.textContent = text;
  return span;
}

// --- reading -------------------------------------------------------------------------------

async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      const data = await api("GET", `/api/v1/halls/${encodeURIComponent(hall)}/counters/${counter}/desk`);
      clockOffset = Date.parse(data.server_time) - Date.now();
      desk = data;
      render();
    } while (refreshAgain);
  })();
  try {
    await refreshing;
  } catch (e) {
    showError(e.message);
  } finally {
    refreshing = null;
  }
}

function render() {
  const d = desk;
  document.title = `${d.name} · 窗口终端`;
  $("hall-name").textContent = d.hall_name;
  $("counter-name").textContent = d.name;
  $("state").dataset.state = d.state;
  $("state-label").textContent = d.state_label;
  const t = d.ticket;
  $("ticket").dataset.state = t ? t.state : "";
  $("t-number").textContent = t ? t.number : "—";
  $("t-service").textContent = t ? `${t.service_name} · ${t.state_label}` : (
    d.state === "closed" ? "窗口关闭：按 Alt+O 开启窗口" :
    d.state === "paused" ? `暂停服务：${d.pause_reason || ""}` : "当前没有号码，按 F1 叫号");
  const tags = [];
  if (t && t.priority_class) tags.push(tag("优先", "priority"));
  if (t && t.notes.some((n) => n.kind === "转办")) tags.push(tag("转办", "transferred"));
  $("t-tags").replaceChildren(...tags);
  $("t-recalls").textContent = t && t.state === "called" ? `已重呼 ${t.recall_count} / ${d.max_recalls} 次` : "";
  $("t-notes").replaceChildren(...(t ? t.notes : []).map((n) => {
    const li = document.createElement("li");
    li.textContent = `${n.kind}备注（${n.counter ?? ""}号窗口 ${n.by}）：${n.text}`;
    return li;
  }));
  const enabled = new Set(ENABLED[d.state] || []);
  for (const b of document.querySelectorAll("#terminal button[data-action]")) {
    const a = b.dataset.action;
    b.disabled = busy || !(a === "switch" || enabled.has(a));
  }
  $("queues").replaceChildren(...d.queues.map((q) => {
    const div = document.createElement("div");
    div.className = "queue";
    div.dataset.service = q.code;
    const head = document.createElement("div");
    head.className = "q-head";
    head.innerHTML = "<span></span><span>等候 <b></b> 人</span>";
    head.firstChild.textContent = q.name;
    head.querySelector("b").textContent = q.waiting;
    const wait = document.createElement("div");
    wait.className = "q-wait";
    wait.dataset.oldest = q.longest_wait_s == null ? "" : String(Date.now() + clockOffset - q.longest_wait_s * 1000);
    const next = document.createElement("div");
    next.className = "q-next";
    next.replaceChildren(...q.next.map((n) => {
      const s = document.createElement("span");
      s.textContent = n.number;
      marks(s, n);
      return s;
    }));
    if (!q.next.length) next.textContent = "无人等候";
    div.append(head, wait, next);
    return div;
  }));
  $("upcoming").replaceChildren(...d.upcoming.map((n, i) => {
    const s = document.createElement("span");
    s.textContent = n.number;
    if (i === 0) s.className = "first";
    marks(s, n);
    return s;
  }));
  if (!d.upcoming.length) $("upcoming").textContent = "无人等候";
  $("sent-here").hidden = !d.sent_here;
  $("sent-here").textContent = `转入本窗口等候：${d.sent_here} 人`;
  $("parked").replaceChildren(...(d.parked.length ? d.parked : [{ number: "无", service: "" }]).map((p) => {
    const li = document.createElement("li");
    li.textContent = p.number;
    return li;
  }));
  tick();
}

function tick() {
  if (!desk) return;
  $("state-timer").textContent = fmt(since(desk.state_since));
  const t = desk.ticket;
  const parts = [];
  if (t) {
    const waited = t.called_at ? (Date.parse(t.called_at) - Date.parse(t.issued_at)) / 1000 : since(t.issued_at);
    parts.push(["等候", fmt(waited)]);
    if (t.state === "called") parts.push(["呼叫", fmt(since(t.called_at))]);
    if (t.serve_started_at) parts.push(["办理", fmt(since(t.serve_started_at))]);
  }
  $("t-timers").replaceChildren(...parts.map(([label, value]) => {
    const span = document.createElement("span");
    span.innerHTML = `${label} <b></b>`;
    span.querySelector("b").textContent = value;
    return span;
  }));
  for (const el of document.querySelectorAll(".q-wait")) {
    const oldest = el.dataset.oldest;
    el.textContent = oldest ? `最长已等 ${fmt((Date.now() + clockOffset - Number(oldest)) / 1000)}` : "";
  }
}

// --- acting --------------------------------------------------------------------------------

async function act(action, body = {}) {
  const path = `/api/v1/halls/${encodeURIComponent(hall)}/counters/${counter}/${action}`;
  return api("POST", path, body);
}

async function run(action) {
  if (busy || !desk) return;
  if (action === "logout") return doLogout();
  if (action === "switch") return pickCounter(true);
  if (action === "locks") return showLocks();
  const button = document.querySelector(`#terminal button[data-action="${action}"]`);
  if (button && button.disabled) return;
  showError("");
  try {
    // Actions that ask first act inside their dialog: a refusal is shown there, and the
    // clerk corrects the entry or cancels.
    const asks = { call: askNumber, call_back: askCallBack, pause: askPause, transfer: askTransfer };
    if (action === "finish") return await finish();
    if (asks[action]) {
      const done = await asks[action]((body) => act(action, body));
      if (done !== null) flash(DONE_TEXT[action]);
      return;
    }
    busy = true;
    render();
    await act(action, {});
    flash(DONE_TEXT[action]);
  } catch (e) {
    showError(e.message);
  } finally {
    busy = false;
    await refresh();
  }
}

function flash(text) {
  $("link").title = text || "";
}

async function doLogout() {
  if (desk && (desk.state === "calling" || desk.state === "serving")) {
    showError("请先办结、转办或挂起当前号码，再退出登录");
    return;
  }
  if (desk && (desk.state === "idle" || desk.state === "paused")) {
    try {
      await act("close");
    } catch (e) {
      showError(e.message);
      return;
    }
  }
  if (live) live.stop();
  await logout();
}

// --- finish: the counter.finish page hooks (evaluator's case form) ---------------------------

async function finishModules() {
  if (hookModules === null) {
    try {
      const data = await api("GET", "/api/v1/page-hooks/counter.finish");
      hookModules = Array.isArray(data.modules) ? data.modules : [];
    } catch (_) {
      hookModules = [];
    }
  }
  return hookModules;
}

async function finishNow() {
  busy = true;
  render();
  try {
    if (desk.state === "calling") await act("start");
    await act("finish");
  } finally {
    busy = false;
  }
}

async function finish() {
  const t = desk.ticket;
  const modules = await finishModules();
  if (!modules.length) {
    await finishNow();
    flash(DONE_TEXT.finish);
    return;
  }
  const container = document.createElement("div");
  container.className = "finish-hooks";
  const ctx = {
    hall, counter, clerk: me.actor,
    ticket: { id: t.id, number: t.number, service_code: t.service_code, service_name: t.service_name },
  };
  const handles = [];
  const opened = dialog(`办结 ${t.number}`, [container], async () => {
    for (const h of handles) if (h && h.beforeFinish) await h.beforeFinish();
    await finishNow();
    for (const h of handles) if (h && h.afterFinish) await h.afterFinish();
    return {};
  });
  for (const url of modules) {
    const slot = document.createElement("div");
    container.append(slot);
    try {
      const m = await import(url);
      handles.push(await m.mount(slot, ctx));
    } catch (e) {
      slot.textContent = `办结附加表单加载失败：${e.message}`;
    }
  }
  const result = await opened;
  if (result !== null) flash(DONE_TEXT.finish);
}

// --- dialogs -------------------------------------------------------------------------------

/** Show the dialog; resolves with what `onOk` returns, or null on cancel. `onOk` may throw
 * an Error whose message is shown in the dialog, which then stays open. */
function dialog(title, nodes, onOk) {
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(...nodes);
  $("dialog-error").hidden = true;
  $("dialog").hidden = false;
  const first = $("dialog-body").querySelector("input, select, textarea, button");
  (first || $("dialog-ok")).focus();
  return new Promise((resolve) => {
    dialogDone = async (ok) => {
      if (!ok) {
        closeDialog();
        resolve(null);
        return;
      }
      $("dialog-ok").disabled = true;
      try {
        const value = await onOk();
        closeDialog();
        resolve(value);
      } catch (e) {
        $("dialog-error").textContent = e.message;
        $("dialog-error").hidden = false;
      } finally {
        $("dialog-ok").disabled = false;
      }
    };
  });
}

function closeDialog() {
  $("dialog").hidden = true;
  dialogDone = null;
}

function field(labelText, input) {
  const label = document.createElement("label");
  label.textContent = labelText;
  label.append(input);
  return label;
}

function input(id, placeholder = "", maxLength = 20) {
  const el = document.createElement("input");
  el.id = id;
  el.placeholder = placeholder;
  el.maxLength = maxLength;
  el.autocomplete = "off";
  return el;
}

function askNumber(submit) {
  const number = input("d-number", "请输入号码，例如 A012", 10);
  return dialog("特呼", [field("号码", number)], async () => {
    const value = number.value.trim().toUpperCase();
    if (!value) throw new Error("请输入号码");
    return submit({ number: value });
  });
}

function askCallBack(submit) {
  const number = input("d-number", "挂起的号码", 10);
  if (desk.parked.length) number.value = desk.parked[0].number;
  const hint = document.createElement("p");
  hint.textContent = desk.parked.length ? `挂起的号码：${desk.parked.map((p) => p.number).join("、")}` : "本窗口没有挂起的号码";
  return dialog("回呼挂起的号码", [hint, field("号码", number)], async () => {
    const value = number.value.trim().toUpperCase();
    if (!value) throw new Error("请输入号码");
    return submit({ number: value });
  });
}

function askPause(submit) {
  let chosen = desk.pause_reasons[0];
  const box = document.createElement("div");
  box.className = "choices";
  const buttons = desk.pause_reasons.map((reason, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.reason = reason;
    b.innerHTML = `<span></span> <kbd>${i + 1}</kbd>`;
    b.firstChild.textContent = reason;
    b.addEventListener("click", () => choose(reason));
    return b;
  });
  const choose = (reason) => {
    chosen = reason;
    for (const b of buttons) b.classList.toggle("chosen", b.dataset.reason === reason);
  };
  box.replaceChildren(...buttons);
  choose(chosen);
  box.addEventListener("keydown", (e) => {
    const i = Number(e.key) - 1;
    if (i >= 0 && i < buttons.length) {
      e.preventDefault();
      choose(desk.pause_reasons[i]);
    }
  });
  box.tabIndex = -1;
  const p = dialog("暂停服务：请选择原因", [box], async () => submit({ reason: chosen }));
  box.focus();
  return p;
}

function askTransfer(submit) {
  const target = document.createElement("select");
  target.id = "d-target";
  const add = (value, text, disabled = false) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    o.disabled = disabled;
    target.append(o);
  };
  for (const c of desk.counters) {
    const closed = c.state === "closed" && !desk.transfer_to_closed;
    add(`c:${c.number}`, `${c.name}（${c.state_label}）`, closed);
  }
  for (const s of desk.services) add(`s:${s.code}`, `业务：${s.name}`);
  const firstOpen = [...target.options].find((o) => !o.disabled);
  if (firstOpen) target.value = firstOpen.value;
  const note = document.createElement("textarea");
  note.id = "d-note";
  note.rows = 2;
  note.maxLength = 200;
  const hint = document.createElement("p");
  hint.textContent = `群众保留原号码 ${desk.ticket ? desk.ticket.number : ""}，到目标窗口继续办理。`;
  return dialog("转办", [hint, field("转给", target), field("备注（可选）", note)], async () => {
    const [kind, value] = target.value.split(":");
    const body = kind === "c" ? { to_counter: Number(value) } : { to_service: value };
    if (note.value.trim()) body.reason = note.value.trim();
    return submit(body);
  });
}

// --- hardware sign-in lockouts (hall managers) ---------------------------------------------

async function showLocks() {
  if ($("btn-locks").hidden) return;
  const base = `/api/v1/halls/${encodeURIComponent(hall)}/sign-in-locks`;
  const list = document.createElement("ul");
  list.id = "locks";
  list.className = "locks";
  const hint = document.createElement("p");
  hint.textContent = "呼叫器上密码、卡或工牌连续输错后会锁定一段时间；核实身份后可以解除。";
  const draw = (locks) => {
    if (!locks.length) {
      const li = document.createElement("li");
      li.textContent = "当前没有锁定";
      list.replaceChildren(li);
      return;
    }
    list.replaceChildren(...locks.map((l) => {
      const li = document.createElement("li");
      li.dataset.lock = l.job_no ? `staff:${l.job_no}` : `counter:${l.counter}`;
      const until = new Date(l.until).toLocaleTimeString("zh-CN", { hour12: false });
      const what = document.createElement("span");
      what.textContent = l.job_no
        ? `工号 ${l.job_no}${l.name ? `（${l.name}）` : ""}：密码错误 ${l.failures} 次，最近在 ${l.counter} 号窗口`
        : `${l.counter} 号窗口：卡或工牌错误 ${l.failures} 次`;
      const b = document.createElement("button");
      b.type = "button";
      b.className = "small";
      b.textContent = `解除锁定（否则 ${until} 自动解除）`;
      b.addEventListener("click", async () => {
        const path = l.job_no ? `staff/${encodeURIComponent(l.job_no)}` : `counters/${l.counter}`;
        try {
          const answer = await api("POST", `${base}/${path}/unlock`, {});
          draw(answer.locks);
          flash("已解除锁定");
        } catch (e) {
          $("dialog-error").textContent = e.message;
          $("dialog-error").hidden = false;
        }
      });
      li.append(what, b);
      return li;
    }));
  };
  try {
    draw(await api("GET", base));
  } catch (e) {
    showError(e.message);
    return;
  }
  await dialog("呼叫器登录锁定", [hint, list], async () => true);
}

// --- picking a counter, live feed, keys ----------------------------------------------------

async function pickCounter(force = false) {
  const mine = (await api("GET", "/api/v1/me/counters")).filter((c) => !hall || c.hall === hall);
  if (!force && counter !== null && mine.some((c) => c.number === counter)) return start();
  if (!force && counter !== null) {
    showError(`您未被分配到 ${counter} 号窗口`);
  }
  if (!force && mine.length === 1) {
    ({ hall, number: counter } = mine[0]);
    return start();
  }
  if (live) live.stop();
  $("terminal").hidden = true;
  $("picker").hidden = false;
  $("picker-empty").hidden = mine.length > 0;
  $("picker-list").replaceChildren(...mine.map((c) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.counter = String(c.number);
    b.innerHTML = "<span></span><small></small>";
    b.firstChild.textContent = c.name;
    b.lastChild.textContent = `${c.hall_name} · ${c.state_label}`;
    b.addEventListener("click", () => {
      hall = c.hall;
      counter = c.number;
      showError("");
      start();
    });
    return b;
  }));
}

async function start() {
  const url = new URL(location.href);
  url.searchParams.set("hall", hall);
  url.searchParams.set("counter", String(counter));
  history.replaceState(null, "", url);
  $("picker").hidden = true;
  $("terminal").hidden = false;
  if (live) live.stop();
  live = new LiveClient(liveUrl(hall, `counter:${counter}`), {
    watchdogMs: WATCHDOG_MS,
    onState: () => refresh(),
    onStatus: (status) => {
      $("link").dataset.status = status;
      $("link").textContent = { connecting: "连接中…", connected: "实时连接正常", disconnected: "连接已断开" }[status];
      $("offline").hidden = status !== "disconnected";
    },
  });
  live.start();
  await refresh();
}

document.addEventListener("keydown", (e) => {
  if (!$("dialog").hidden) {
    if (e.key === "Escape") {
      e.preventDefault();
      dialogDone && dialogDone(false);
    }
    // Enter confirms from anywhere in the dialog (a note's textarea too; Shift+Enter: new line).
    if (e.key === "Enter" && !e.shiftKey && e.target.id !== "dialog-cancel") {
      e.preventDefault();
      dialogDone && dialogDone(true);
    }
    return;
  }
  if ($("terminal").hidden) return;
  let action = null;
  if (KEYS[e.key] && !e.altKey && !e.ctrlKey) action = KEYS[e.key];
  else if (e.altKey && !e.ctrlKey && ALT_KEYS[e.key.toLowerCase()]) action = ALT_KEYS[e.key.toLowerCase()];
  if (action) {
    e.preventDefault();
    run(action);
  }
});
$("dialog-form").addEventListener("submit", (e) => {
  e.preventDefault();
  dialogDone && dialogDone(true);
});
$("dialog-cancel").addEventListener("click", () => dialogDone && dialogDone(false));
for (const b of document.querySelectorAll("button[data-action]")) {
  b.addEventListener("click", () => run(b.dataset.action));
}
setInterval(tick, 1000);

me = await whoAmI();
$("clerk").textContent = `${me.name}（${me.actor}）`;
$("btn-locks").hidden = !me.roles.some((r) => LOCK_ROLES.includes(r));
await pickCounter();
