// Hall TV call page: live state from /static/live.js, laid out to fit one screen.
import { LiveClient, liveUrl } from "/static/live.js";
import { startVoice } from "/display/voice.js";

const page = JSON.parse(document.getElementById("page-data").textContent);
const shownCounters = new Set(page.counters.map((c) => c.number));
const counterName = new Map(page.counters.map((c) => [c.number, c.name || `${c.number}号窗口`]));
// Bilingual mode (display.bilingual): English under the Chinese, names from the config.
const bilingual = Boolean(page.bilingual);
const counterNameEn = new Map(page.counters.map((c) => [c.number, c.name_en || `Window ${c.number}`]));
const STATE_TEXT_EN = { idle: "Open", paused: "Paused", closed: "Closed", calling: "Calling", serving: "Serving" };
const $ = (id) => document.getElementById(id);
// The orientation, read once and on resize: reading the window's size while a call is shown
// could make the browser lay the page out there and then.
let portraitNow = innerHeight > innerWidth;
const portrait = () => portraitNow;
window.tvLog = []; // calls seen by this page, for operators' consoles and tests

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** An English line (only in bilingual mode). */
function en(text, cls = "en") {
  return bilingual && text ? [el("span", cls, text)] : [];
}

function callText(number, counter) {
  return page.call_text.replaceAll("{number}", number).replaceAll("{counter}", String(counter));
}

/** Columns for n boxes in a w×h area so that boxes are as large as possible, ≥ ratio wide. */
function bestColumns(n, w, h, ratio) {
  let best = 1;
  let bestSize = 0;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const size = Math.min(w / cols / ratio, h / rows); // box height possible
    if (size > bestSize) {
      bestSize = size;
      best = cols;
    }
  }
  return best;
}

function layoutGrid(box, n, ratio) {
  if (!n) return;
  const gap = 6;
  const cols = bestColumns(n, box.clientWidth, box.clientHeight, ratio);
  const rows = Math.ceil(n / cols);
  const tileH = Math.max(8, (box.clientHeight - gap * (rows - 1)) / rows);
  box.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
  box.style.gridAutoRows = `${tileH}px`;
  box.style.setProperty("--tile-h", `${tileH}px`);
}

/** Shrink an element's font until its text fits its box (never cut the text). */
function fit(e) {
  e.style.fontSize = "";
  let size = parseFloat(getComputedStyle(e).fontSize);
  while (size > 8 && (e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)) {
    size *= 0.9;
    e.style.fontSize = `${size}px`;
  }
}

// --- static parts: windows and services --------------------------------------------------
const tiles = new Map();
for (const c of page.counters) {
  const t = el("div", "tile closed");
  t.dataset.counter = String(c.number);
  const head = el("div", "head");
  head.append(el("span", "no", `${c.number}`));
  if (c.name) head.append(el("span", "nm", c.name)); // a configured name, not "N号窗口"
  t.append(head, el("div", "st", "—"), ...en(c.name_en));
  $("windows").append(t);
  tiles.set(c.number, t);
}
const waits = new Map();
for (const s of page.services) {
  const w = el("div", "wait");
  w.dataset.service = s.code;
  const nm = el("span", "nm", s.name);
  nm.append(...en(s.name_en));
  w.append(nm, el("span", "n", "0"));
  $("waiting").append(w);
  waits.set(s.code, w);
}

/** Fit the changed boxes in three passes, so the page lays out once per pass, not per box. */
function fitAll(elements) {
  for (const e of elements) e.style.fontSize = ""; // writes
  let todo = elements.filter(overflows); // one layout, then reads
  const sizes = new Map(todo.map((e) => [e, parseFloat(getComputedStyle(e).fontSize)]));
  while (todo.length) {
    for (const e of todo) {
      sizes.set(e, sizes.get(e) * 0.9);
      e.style.fontSize = `${sizes.get(e)}px`;
    }
    todo = todo.filter((e) => sizes.get(e) > 8 && overflows(e));
  }
}

function overflows(e) {
  return e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1;
}

/** Recent calls: as many of the screen's rows as fit; a row is shown whole or not at all. */
function clipRecent() {
  const rows = [...$("recent").children];
  for (const li of rows) li.hidden = false;
  const bottom = $("recent").getBoundingClientRect().bottom + 1;
  const over = rows.filter((li) => li.getBoundingClientRect().bottom > bottom);
  for (const li of over) li.hidden = true;
}

function layout() {
  const n = page.services.length;
  const cols = portrait() ? Math.min(n, 4) : Math.min(n, Math.max(5, Math.ceil(n / 2)));
  $("waiting").style.gridTemplateColumns = `repeat(${Math.max(cols, 1)}, minmax(0, 1fr))`;
  layoutGrid($("windows"), page.counters.length, portrait() ? 2.0 : 2.2);
  fitAll([...tiles.values(), ...waits.values()]);
  clipRecent();
}

// --- live state ----------------------------------------------------------------------------
const STATE_TEXT = { idle: "空闲", paused: "暂停服务", closed: "窗口关闭" };
let lastState = null;
const shown = new Map(); // element → what it shows now, so an event touches only what changed

/** Set an element's content from `key`; returns whether it changed. */
function update(e, key, fill) {
  if (shown.get(e) === key) return false;
  shown.set(e, key);
  fill();
  return true;
}

function latestCallSeq(state, counter) {
  const c = state.recent_calls.find((r) => r.counter === counter);
  return c ? c.seq : 0;
}

/**
 * Make `list`'s children the rows of `items`, in order, keeping the rows it already has
 * (by `keyOf`): a call adds one row and moves or drops a few, instead of rebuilding the list
 * (and a row that stays keeps its flash running).
 */
function syncRows(list, items, keyOf, make) {
  const old = new Map([...list.children].map((li) => [li.dataset.key, li]));
  let at = list.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    let li = old.get(key);
    if (li) old.delete(key);
    else {
      li = make(item);
      li.dataset.key = key;
    }
    if (li === at) at = at.nextElementSibling;
    else list.insertBefore(li, at);
  }
  for (const li of old.values()) li.remove();
}

const EMPTY = { empty: true };

function renderCurrent(state) {
  // Current calls: windows calling now, newest first.
  const calling = state.counters
    .filter((c) => shownCounters.has(c.number) && c.state === "calling" && c.ticket)
    .sort((a, b) => latestCallSeq(state, b.number) - latestCallSeq(state, a.number))
    .slice(0, portrait() ? 2 : 3);
  const keyOf = (c) => (c.empty ? "empty" : `${c.number}:${c.ticket.number}`);
  const rows = calling.length ? calling : [EMPTY];
  update($("current"), rows.map(keyOf).join(","), () =>
    syncRows($("current"), rows, keyOf, (c) => {
      if (c.empty) {
        return el("li", "empty", bilingual ? "请留意叫号 · Please watch for your number" : "请留意叫号");
      }
      const li = el("li");
      li.dataset.counter = String(c.number);
      li.append(
        el("span", "num", c.ticket.number),
        el("span", "to", `请到 ${c.number}号窗口`),
        el("span", "name", counterName.get(c.number) || ""),
        ...en(`Please go to ${counterNameEn.get(c.number)}`),
      );
      li.title = callText(c.ticket.number, c.number);
      return li;
    }),
  );
}

function renderRecent(state) {
  // Recent calls of this screen's windows; a recalled number is listed once (newest).
  const seen = new Set();
  const recent = state.recent_calls
    .filter((r) => shownCounters.has(r.counter) && !seen.has(r.number) && seen.add(r.number))
    .slice(0, page.rows);
  const keyOf = (r) => String(r.seq);
  return update($("recent"), recent.map(keyOf).join(","), () =>
    syncRows($("recent"), recent, keyOf, (r) => {
      const li = el("li");
      li.dataset.seq = String(r.seq);
      li.append(el("span", "num", r.number), el("span", "to", `${r.counter}号窗口`));
      li.append(...en(`Window ${r.counter}`));
      if (r.recall) li.append(el("span", "recall", bilingual ? "重呼 Again" : "重呼"));
      return li;
    }),
  );
}

/** The tiles and waiting counts whose text changed. */
function renderCounts(state) {
  const changed = [];
  const byNumber = new Map(state.counters.map((c) => [c.number, c]));
  for (const [number, tile] of tiles) {
    const c = byNumber.get(number);
    const st = c ? c.state : "closed";
    let text = STATE_TEXT[st] || "";
    if (bilingual && STATE_TEXT[st]) text += ` ${STATE_TEXT_EN[st]}`;
    if (c && c.ticket && st === "calling") text = `请 ${c.ticket.number}`;
    else if (c && c.ticket && st === "serving") text = `办理 ${c.ticket.number}`;
    const fill = () => {
      tile.classList.remove(...["calling", "serving", "idle", "paused", "closed"]);
      tile.classList.add(st);
      tile.querySelector(".st").textContent = text;
    };
    if (update(tile, `${st}|${text}`, fill)) changed.push(tile);
  }
  for (const [code, w] of waits) {
    const text = `${state.waiting[code] ?? 0}人`;
    if (update(w, text, () => (w.querySelector(".n").textContent = text))) changed.push(w);
  }
  return changed;
}

/**
 * Show `state`. A snapshot (the first, or after a reconnect) is laid out and fitted at once.
 * After an event only what it changed is written, and nothing is measured: the boxes it
 * changed are fitted just before the next frame, so the call's own update never makes the
 * browser lay the page out (20 TVs on one small box each did so two or three times a call).
 */
function render(state, event) {
  lastState = state;
  renderCurrent(state);
  const recentChanged = renderRecent(state);
  const changed = renderCounts(state);
  document.body.dataset.seq = String(state.seq);
  if (event && (event.type === "ticket.called" || event.type === "ticket.recalled")) {
    if (shownCounters.has(event.counter)) {
      window.tvLog.push({ ...event, seq: state.seq, t: performance.now() });
      document.body.dataset.lastCall = `${event.number}@${event.counter}#${state.seq}`;
      flash($("current").querySelector(`li[data-counter="${event.counter}"]`));
      flash(tiles.get(event.counter));
    }
  }
  if (!event) {
    toFit.clear();
    refitRecent = false;
    layout(); // everything again
    return;
  }
  for (const e of changed) toFit.add(e);
  refitRecent ||= recentChanged;
  if ((toFit.size || refitRecent) && !fitAsked) {
    fitAsked = true;
    requestAnimationFrame(fitChanged);
  }
}

const toFit = new Set(); // boxes whose text changed since the last frame
let refitRecent = false;
let fitAsked = false;

function fitChanged() {
  fitAsked = false;
  const changed = [...toFit];
  toFit.clear();
  if (changed.length) fitAll(changed);
  if (refitRecent) clipRecent();
  refitRecent = false;
}

// A call flashes its entry and its window tile: their colours inverted (light ground, dark
// text) for half a second, three times. The animation is of `filter`, which Chromium runs on
// the compositor: the page's main thread is idle while it runs. (It animated background and
// colour before: each flash then cost a GPU-less box about a second of CPU, restyling,
// painting and compositing 60 times a second, against a tenth of that now, measured under
// load.) Each change is still one frame to draw, several ms in software, so the flash
// changes at 1 Hz and starts half a second after the call is shown (which is itself a
// visible change: the new entry, the tile turning red): six frames, none while the other TVs
// of a box are still showing the same call.
const INVERTED = "invert(1) hue-rotate(180deg)";
const PLAIN = "invert(0) hue-rotate(0deg)";
const FLASH_FRAMES = [
  { filter: INVERTED, easing: "steps(1)" },
  { filter: PLAIN, offset: 0.5, easing: "steps(1)" },
  { filter: PLAIN },
];
const FLASH_TIMING = { duration: 1000, iterations: 3, delay: 500 };
const flashing = new WeakMap(); // element → its flash, restarted by a recall

function flash(e) {
  if (!e) return;
  flashing.get(e)?.cancel();
  flashing.set(e, e.animate(FLASH_FRAMES, FLASH_TIMING));
}

// --- connection banner -----------------------------------------------------------------------
const REASONS = {
  unreachable: "无法连接服务器，正在重试……画面可能不是最新，请以窗口叫号为准",
  retrying: "实时连接中断，正在重新连接……画面可能不是最新",
  unpaired: "本屏幕未配对或配对已被撤销，即将转到配对页面",
};
let diagnosing = 0;

async function diagnose() {
  const mine = ++diagnosing;
  let reason = "unreachable";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 1200); // a dead path answers nothing at all
  try {
    const r = await fetch(`/tv/${encodeURIComponent(page.hall)}/status`, {
      cache: "no-store",
      signal: abort.signal,
    });
    reason = r.status === 401 || r.status === 403 ? "unpaired" : "retrying";
  } catch (_) {
    reason = "unreachable";
  } finally {
    clearTimeout(timer);
  }
  if (mine !== diagnosing || client.status === "connected") return;
  showBanner(reason);
  if (reason === "unpaired") setTimeout(() => location.assign("/pair"), 5000);
}

function showBanner(reason) {
  const b = $("banner");
  b.textContent = REASONS[reason];
  b.hidden = false;
  document.body.dataset.reason = reason;
}

let rediagnose = null;

function onStatus(status) {
  document.body.dataset.status = status;
  if (status === "connected") {
    diagnosing++;
    clearInterval(rediagnose);
    rediagnose = null;
    $("banner").hidden = true;
    document.body.classList.remove("stale");
    delete document.body.dataset.reason;
  } else if (status === "disconnected") {
    document.body.classList.add("stale");
    showBanner("retrying");
    diagnose();
    if (!rediagnose) rediagnose = setInterval(diagnose, 5000); // the reason may change
  }
}

// --- clock and notices -----------------------------------------------------------------------
const clockFormat = new Intl.DateTimeFormat("zh-CN", {
  timeZone: page.timezone,
  year: "numeric",
  month: "long",
  day: "numeric",
  weekday: "long",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});
// Hours and minutes, redrawn once a minute on the minute: a clock with seconds made every TV
// draw a new frame every second (20 pages on one box: a seventh of a core, doing nothing).
function tick() {
  const text = clockFormat.format(new Date());
  if ($("clock").textContent !== text) $("clock").textContent = text;
  setTimeout(tick, 60_000 - (Date.now() % 60_000) + 20);
}
tick();

const notices = page.notices.length ? page.notices : [`欢迎来到${page.hall_name}，请留意叫号，过号请重新取号`];
$("notices").textContent = notices.join("　　◆　　");
$("notices").style.setProperty("--ticker-s", `${Math.max(20, notices.join("").length * 0.4)}s`);

/** Notices that fit stand still; wider ones scroll (like a strip's text). */
function fitNotices() {
  const n = $("notices");
  n.classList.remove("scroll");
  if (n.scrollWidth > $("ticker").clientWidth + 1) n.classList.add("scroll");
}
if (page.screen) $("screen-name").textContent = page.screen.name;
if (bilingual) {
  document.documentElement.classList.add("bilingual");
  for (const h of document.querySelectorAll("h2[data-en]")) h.append(...en(h.dataset.en));
  $("title").append(...en(page.hall_name_en));
}

addEventListener("resize", () => {
  portraitNow = innerHeight > innerWidth;
  if (lastState) renderCurrent(lastState); // how many current calls depends on the orientation
  layout();
  fitNotices();
});
layout();
fitNotices();
document.fonts.ready.then(() => {
  layout(); // glyph metrics change the boxes once the CJK font loads
  fitNotices();
});
new ResizeObserver(() => layout()).observe($("now"));

const client = new LiveClient(liveUrl(page.hall, "display"), {
  onState: render,
  onStatus,
  watchdogMs: 7000, // pings come every 5 s: the banner and its reason show within 10 s
});
window.hallLive = client;
client.start();
if (page.voice.enabled) window.tvVoice = startVoice(page);
