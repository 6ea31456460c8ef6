// The web rating pad for halls with tablets: clerk card, the visit in service, then the five
// levels until the timeout (sent as "not rated"), then thanks. Paired at /pair as a "pad" of one
// counter (the device id is the counter number); ?counter=N overrides it for a tablet paired
// the old way, as a display of the hall.
import { $, api, el, me, ratingWidget } from "/evaluator/static/common.js";

const POLL_MS = 1000;
const THANKS_MS = 4000;
let hall = new URLSearchParams(location.search).get("hall")
  || (location.pathname.startsWith("/pad/") ? decodeURIComponent(location.pathname.slice(5)) : "");
let counter = new URLSearchParams(location.search).get("counter") || "";
let shown = "";       // what is on screen: "idle", "serving:<session>", "rating:<session>", "thanks"
let deadline = 0;
let timer = 0;

function base() { return `/api/v1/halls/${hall}/evaluator/counters/${counter}/pad`; }

function idle(state) {
  shown = "idle";
  $("body").replaceChildren(el("div", { class: "pad-big muted" },
    state.clerk ? "欢迎您，请在窗口办理业务" : "暂停服务"));
}

function thanks(text) {
  shown = "thanks";
  clearInterval(timer);
  $("body").replaceChildren(el("div", { class: "pad-big" }, text));
  setTimeout(() => { shown = ""; poll(); }, THANKS_MS);
}

async function send(session, level, reasons, dims) {
  const r = await api("POST", `${base()}/ratings`, { session, level, reasons, dims });
  if (r.ok) { thanks(level === null ? "本次未评价" : "感谢您的评价！"); return ""; }
  if (r.status === 409) { thanks(r.data.detail || "本次服务已评价"); return ""; }
  return r.data.detail || "提交失败，请重试";
}

function rating(state) {
  shown = `rating:${state.session}`;
  deadline = Date.now() + state.timeout_s * 1000;
  const box = el("div");
  const left = el("div", { class: "countdown" });
  $("body").replaceChildren(
    el("div", { class: "pad-big" }, `请您对本次服务（${state.ticket_number}）进行评价`), box, left);
  ratingWidget(box, state.reasons,
    (level, reasons, dims) => send(state.session, level, reasons, dims), state.dimensions || []);
  clearInterval(timer);
  const tick = () => {
    const s = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    left.textContent = `${s} 秒后自动结束评价`;
    if (s === 0 && shown.startsWith("rating:")) { clearInterval(timer); send(state.session, null, []); }
  };
  tick();
  timer = setInterval(tick, 250);
}

async function poll() {
  if (shown === "thanks" || shown === "revoked") return;
  const r = await api("GET", base());
  if (r.status === 401) {
    // The device token was revoked (or expired): this tablet is no longer a pad of the hall.
    clearInterval(timer);
    shown = "revoked";
    $("window").textContent = "评价器已停用";
    $("clerk").textContent = "";
    $("body").replaceChildren(el("div", { class: "pad-big muted" },
      "本评价器的配对已被吊销，请联系大厅管理员重新配对"),
      el("p", {}, el("a", { href: "/pair" }, "重新配对")));
    return;
  }
  if (!r.ok) {
    $("clerk").textContent = r.data.detail || "网络故障，请稍候";
    return;
  }
  const s = r.data;
  $("window").textContent = `${s.counter}号窗口 服务评价`;
  $("clerk").textContent = s.clerk ? `工号 ${s.clerk}　${s.clerk_name || ""}` : "暂停服务";
  if (s.state === "rating") {
    if (shown !== `rating:${s.session}`) rating(s);
  } else if (s.state === "serving") {
    if (shown !== `serving:${s.session}`) {
      shown = `serving:${s.session}`;
      clearInterval(timer);
      $("body").replaceChildren(el("div", { class: "pad-big" }, `正在为 ${s.ticket_number} 办理`));
    }
  } else if (shown !== "idle") {
    clearInterval(timer);
    idle(s);
  }
}

async function start() {
  const who = await me();
  if (!hall && who && who.halls && who.halls.length) hall = who.halls[0];
  if (!counter && who && who.device_kind === "pad") counter = who.device_id;
  if (!counter) counter = "1";
  if (!hall) {
    $("clerk").textContent = "此页面只供已配对的评价平板使用，请先在 /pair 配对";
    return;
  }
  await poll();
  setInterval(poll, POLL_MS);
  setInterval(() => { $("clock").textContent = new Date().toLocaleTimeString("zh-CN", { hour12: false }); }, 1000);
}
start();
