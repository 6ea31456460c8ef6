// Managers: ratings of a hall filtered by counter, clerk, service, level and period; open 差评
// tasks, upstream outbox and alarms at a glance.
import { $, api, el, me, setCsrf, stars } from "/evaluator/static/common.js";

const params = new URLSearchParams(location.search);
let hall = params.get("hall") || "";

function loginForm(message) {
  const job = el("input", { id: "job", placeholder: "工号", autocomplete: "username" });
  const pw = el("input", { id: "pw", type: "password", placeholder: "密码", autocomplete: "current-password" });
  const err = el("div", { class: "error", role: "alert" }, message || "");
  const form = el("form", { class: "login", onsubmit: async (e) => {
    e.preventDefault();
    const r = await api("POST", "/api/v1/login", { job_no: job.value, password: pw.value });
    if (!r.ok) { err.textContent = r.data.detail || "登录失败"; return; }
    setCsrf(r.data.csrf_token);
    start();
  } }, el("h2", {}, "管理人员登录"), job, pw, el("button", { class: "primary" }, "登录"), err);
  $("main").replaceChildren(form);
}

const cell = (v) => el("td", {}, v === null || v === undefined || v === "" ? "—" : String(v));

function table(rows) {
  const head = ["时间", "等级", "原因", "窗口", "工作人员", "业务", "排队号", "办件编号", "渠道", "整改任务"];
  const channel = { pad: "评价器", web_pad: "平板", phone: "手机" };
  return el("table", { id: "list" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", { class: r.bad ? "bad" : "" },
      cell(r.rated_at_text),
      el("td", {}, r.level ? `${stars(r.level)} ${r.level_name}` : "未评价（超时）"),
      cell(r.reason_texts.join("、")), cell(r.counter), cell(r.clerk), cell(r.service_code),
      cell(r.ticket_number), cell(r.case_number), cell(channel[r.channel] || r.channel),
      cell(r.task_id ? `#${r.task_id}` : "")))));
}

async function load(form) {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
  const [list, tasks, box, alarms] = await Promise.all([
    api("GET", `/api/v1/halls/${hall}/ratings?${q}`),
    api("GET", `/api/v1/halls/${hall}/bad-rating-tasks?open=true`),
    api("GET", `/api/v1/halls/${hall}/upstream-outbox?state=dead`),
    api("GET", `/api/v1/halls/${hall}/evaluator/alarms`),
  ]);
  if (!list.ok) { $("result").replaceChildren(el("div", { class: "error" }, list.data.detail || "查询失败")); return; }
  const rated = list.data.filter((r) => r.level);
  const good = rated.filter((r) => r.level >= 3).length;
  const pct = (n) => (rated.length ? `${((100 * n) / rated.length).toFixed(1)}%` : "—");
  $("result").replaceChildren(
    el("div", { class: "cards" },
      el("div", {}, "评价数", el("b", {}, String(list.data.length))),
      el("div", {}, "好评率", el("b", { id: "good-rate" }, pct(good))),
      el("div", {}, "差评率", el("b", {}, pct(rated.length - good))),
      el("div", {}, "待整改差评", el("b", {}, tasks.ok ? String(tasks.data.length) : "—")),
      el("div", {}, "上报死信", el("b", {}, box.ok ? String(box.data.dead) : "—")),
      el("div", {}, "告警", el("b", {}, alarms.ok ? String(alarms.data.length) : "—"))),
    list.data.length ? table(list.data) : el("p", { class: "muted" }, "没有符合条件的评价"));
}

function caseSearch() {
  const kind = el("select", { name: "kind" }, el("option", { value: "number" }, "办件编号"),
    el("option", { value: "ticket" }, "排队号"), el("option", { value: "phone" }, "手机号"));
  const value = el("input", { name: "value", size: 20 });
  const result = el("div", { id: "cases" });
  const form = el("form", { id: "case-search", class: "filters", onsubmit: async (e) => {
    e.preventDefault();
    const r = await api("GET", `/api/v1/halls/${hall}/cases?${kind.value}=${encodeURIComponent(value.value.trim())}`);
    if (!r.ok) { result.replaceChildren(el("div", { class: "error" }, r.data.detail || "查询失败")); return; }
    if (!r.data.length) { result.replaceChildren(el("p", { class: "muted" }, "没有找到办件")); return; }
    const head = ["办件编号", "事项", "类型", "状态", "受理日期", "办结期限", "排队号", "窗口", "工作人员", "申请人", "手机号", "评价"];
    result.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...r.data.map((c) => el("tr", {}, cell(c.number), cell(c.matter_name),
        cell(c.case_type_name), cell(c.status_name), cell(c.accepted_on), cell(c.due_on),
        cell(c.ticket_number), cell(c.counter), cell(c.clerk), cell(c.applicant_name),
        cell(c.applicant_phone), cell(c.rating_id ? "已评价" : "未评价"))))));
  } }, el("label", {}, "查询办件", kind), el("label", {}, "\u00a0", value),
    el("button", { class: "primary" }, "查找"));
  return el("section", {}, el("h2", {}, "办件查询"), form, result);
}

function caseImport() {
  // Cases registered on the upstream platform (keypad-only windows): a JSON file, or a pull.
  const result = el("div", { id: "import-result", role: "status" });
  const show = (r) => {
    if (!r.ok) { result.replaceChildren(el("div", { class: "error" }, r.data.detail || "导入失败")); return; }
    result.replaceChildren(el("p", {}, r.data.message),
      ...(r.data.errors.length ? [el("ul", { class: "error" },
        ...r.data.errors.map((e) => el("li", {}, `${e.case_number}：${e.detail}`)))] : []));
  };
  const file = el("input", { type: "file", accept: ".json,application/json", "aria-label": "办件文件" });
  const upload = el("form", { id: "case-import", class: "filters", onsubmit: async (e) => {
    e.preventDefault();
    if (!file.files.length) { result.replaceChildren(el("div", { class: "error" }, "请选择 JSON 文件")); return; }
    let doc;
    try { doc = JSON.parse(await file.files[0].text()); } catch {
      result.replaceChildren(el("div", { class: "error" }, "文件不是有效的 JSON")); return;
    }
    const cases = Array.isArray(doc) ? doc : doc.cases;
    show(await api("POST", `/api/v1/halls/${hall}/cases/import`, { cases }));
  } }, el("label", {}, "上游办件文件", file), el("button", { class: "primary" }, "导入"),
    el("button", { type: "button", id: "case-pull", onclick: async () =>
      show(await api("POST", `/api/v1/halls/${hall}/cases/pull`, {})) }, "从上游平台拉取"));
  return el("section", {}, el("h2", {}, "导入上游办件"),
    el("p", { class: "muted" }, "按上游办件编号新建或更新，重复导入不会产生重复办件；记录中有排队号的自动关联。"),
    upload, result);
}

async function start() {
  const who = await me();
  if (!who || who.kind !== "staff") { loginForm(); return; }
  if (!hall) hall = (who.halls && who.halls[0]) || "";
  if (!hall) { $("main").replaceChildren(el("p", {}, "请在地址中指定大厅：/ratings?hall=大厅编号")); return; }
  $("who").textContent = `${who.name}（${who.actor}）`;
  $("title").textContent = `好差评管理 · ${hall}`;
  const field = (name, label, props = {}) => el("label", {}, label, el("input", { name, ...props }));
  const level = el("select", { name: "level" }, el("option", { value: "" }, "全部"),
    ...[5, 4, 3, 2, 1].map((n) => el("option", { value: String(n) }, `${n} 星`)));
  const form = el("form", { id: "filters", class: "filters", onsubmit: (e) => { e.preventDefault(); load(form); } },
    field("counter", "窗口", { inputmode: "numeric", size: 4 }), field("clerk", "工号", { size: 8 }),
    field("service", "业务", { size: 8 }), el("label", {}, "等级", level),
    field("from", "开始日期", { type: "date" }), field("to", "结束日期", { type: "date" }),
    el("button", { class: "primary" }, "查询"));
  $("main").replaceChildren(el("h2", {}, "评价列表"), form, el("div", { id: "result" }), caseSearch(),
    caseImport());
  await load(form);
}
start();
