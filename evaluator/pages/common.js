// Shared helpers of the evaluator pages.
export const $ = (id) => document.getElementById(id);
let csrf = "";

export async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Accept": "application/json", "X-CSRF-Token": csrf,
               ...(body !== undefined ? { "Content-Type": "application/json" } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const data = await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, data };
}

export async function me() {
  const r = await api("GET", "/api/v1/me");
  if (r.ok) csrf = r.data.csrf_token || "";
  return r.ok ? r.data : null;
}

export function setCsrf(token) { csrf = token || ""; }

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export const LEVELS = [
  [5, "非常满意"], [4, "满意"], [3, "基本满意"], [2, "不满意"], [1, "非常不满意"],
];
export const stars = (n) => "★".repeat(n) + "☆".repeat(5 - n);

// Five levels; 1-2 (差评) ask for at least one reason before they are sent. The hall's extra
// dimensions (服务效率, 服务态度, …) are optional pickers above the levels, sent with them.
export function ratingWidget(container, reasons, submit, dimensions = []) {
  let chosen = 0;
  const dimBox = el("div", { class: "dims", hidden: dimensions.length === 0 });
  dimBox.append(...dimensions.map((d) => el("label", {}, d.text, " ",
    el("select", { name: d.code, "aria-label": d.text }, el("option", { value: "0" }, "未评"),
      ...LEVELS.map(([n, name]) => el("option", { value: String(n) }, `${n} ${name}`))))));
  const dims = () => {
    const out = {};
    for (const s of dimBox.querySelectorAll("select")) if (s.value !== "0") out[s.name] = Number(s.value);
    return Object.keys(out).length ? out : undefined;
  };
  const error = el("div", { class: "error", role: "alert" });
  const reasonBox = el("div", { class: "reasons", hidden: true });
  reasonBox.append(...reasons.map((r) => el("label", {},
    el("input", { type: "checkbox", value: r.code }), " ", r.text)));
  const send = el("button", { class: "primary", type: "button", hidden: true }, "提交评价");
  const levels = el("div", { class: "levels" });
  async function go() {
    const codes = [...reasonBox.querySelectorAll("input:checked")].map((i) => i.value);
    if (chosen <= 2 && codes.length === 0) {
      error.textContent = "请至少选择一项不满意的原因";
      return;
    }
    error.textContent = "";
    const problem = await submit(chosen, chosen <= 2 ? codes : [], dims());
    if (problem) error.textContent = problem;
  }
  for (const [level, name] of LEVELS) {
    levels.append(el("button", { type: "button", "data-level": level, onclick: () => {
      chosen = level;
      for (const b of levels.children) b.classList.toggle("chosen", b === levels.children[5 - level]);
      if (level <= 2) {
        reasonBox.hidden = false;
        send.hidden = false;
      } else {
        go();
      }
    } }, el("span", { class: "stars" }, stars(level)), el("span", {}, name)));
  }
  send.addEventListener("click", go);
  container.replaceChildren(dimBox, levels, reasonBox, send, error);
}
