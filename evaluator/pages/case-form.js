// Page hook "counter.finish" (contract.md): the counter terminal mounts this form in its finish
// panel; beforeFinish() creates the case (办件) of the ticket being served before the ticket is
// finished, and throws a Chinese message to block finishing when the case cannot be saved.
const CSS = "/evaluator/static/evaluator.css";

function field(label, input) {
  const l = document.createElement("label");
  l.textContent = label;
  return [l, input];
}

async function csrfToken() {
  const r = await fetch("/api/v1/me", { credentials: "same-origin" });
  const me = r.ok ? await r.json() : {};
  return me.csrf_token || "";
}

export async function mount(container, ctx) {
  if (!document.querySelector(`link[href="${CSS}"]`)) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = CSS;
    document.head.append(link);
  }
  const hall = encodeURIComponent(ctx.hall);
  const service = encodeURIComponent(ctx.ticket.service_code || "");
  const r = await fetch(`/api/v1/halls/${hall}/evaluator/matters?service=${service}`,
    { credentials: "same-origin" });
  const matters = r.ok ? await r.json() : [];

  const box = document.createElement("div");
  box.className = "ev-case";
  const matter = document.createElement("select");
  matter.name = "matter";
  const none = new Option("不建办件（咨询等）", "");
  matter.append(none, ...matters.map((m) => new Option(`${m.name}（${m.kind_name}${m.promised_days ? `，${m.promised_days}个工作日` : ""}）`, m.impl_code)));
  if (matters.length === 1) matter.value = matters[0].impl_code;
  const number = Object.assign(document.createElement("input"),
    { name: "number", placeholder: "留空自动生成", maxLength: 64 });
  const name = Object.assign(document.createElement("input"), { name: "applicant_name", maxLength: 40 });
  const phone = Object.assign(document.createElement("input"),
    { name: "applicant_phone", inputMode: "tel", maxLength: 20 });
  box.append(...field("办件事项", matter), ...field("办件编号", number),
    ...field("申请人", name), ...field("手机号", phone));
  container.replaceChildren(box);
  matter.focus();

  return {
    async beforeFinish() {
      if (!matter.value) return;
      const body = { ticket_id: ctx.ticket.id, matter: matter.value };
      if (number.value.trim()) { body.number = number.value.trim(); body.source = "upstream"; }
      if (name.value.trim()) body.applicant_name = name.value.trim();
      if (phone.value.trim()) body.applicant_phone = phone.value.trim();
      const resp = await fetch(
        `/api/v1/halls/${hall}/evaluator/counters/${encodeURIComponent(ctx.counter)}/cases`, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": await csrfToken() },
          body: JSON.stringify(body),
        });
      if (!resp.ok) {
        const problem = await resp.json().catch(() => ({}));
        throw new Error(problem.detail || "办件保存失败，请重试");
      }
    },
    async afterFinish() {},
  };
}
