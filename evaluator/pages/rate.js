// Rating a case by phone link or QR (一事一评): one rating per case.
import { $, api, el, ratingWidget } from "/evaluator/static/common.js";

const token = location.pathname.split("/").pop();

async function start() {
  const r = await api("GET", `/api/v1/rate/${token}`);
  if (!r.ok) { $("case").textContent = r.data.detail || "评价链接无效"; return; }
  const c = r.data;
  $("case").replaceChildren(
    el("div", {}, c.hall_name), el("div", { class: "muted" }, `${c.matter_name}`),
    el("div", { class: "muted" }, `办件编号 ${c.case_number}　状态：${c.status_name}`));
  if (c.rated) { $("body").replaceChildren(el("div", { class: "pad-big" }, "此办件已评价，感谢您的参与")); return; }
  if (!c.rateable) { $("body").replaceChildren(el("div", { class: "pad-big" }, "办件尚未办结，办结后再评价")); return; }
  const box = el("div");
  $("body").replaceChildren(el("div", { class: "pad-big" }, "请您对本次办件进行评价"), box);
  ratingWidget(box, c.reasons, async (level, reasons, dims) => {
    const s = await api("POST", `/api/v1/rate/${token}`, { level, reasons, dims });
    if (!s.ok) return s.data.detail || "提交失败，请重试";
    $("body").replaceChildren(el("div", { class: "pad-big" }, "感谢您的评价！"));
    return "";
  }, c.dimensions || []);
}
start();
