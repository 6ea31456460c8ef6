// Ticket lookup by number (/lookup/{hall}): the citizen types the number printed on the
// ticket; the page shows where it stands today and asks again every 10 s while it waits.
const REFRESH_MS = 10_000;
const hall = location.pathname.split("/").pop();
const $ = (id) => document.getElementById(id);
let timer = null;

function show(t) {
  $("result").hidden = false;
  $("service").textContent = t.service_name;
  $("number").textContent = t.number;
  $("state").textContent = t.state_label;
  $("call").textContent = t.call_text || "";
  $("call").hidden = !t.call_text;
  $("ahead").textContent = t.people_ahead !== null ? `您前面还有 ${t.people_ahead} 人` : "";
  $("wait").textContent = t.wait_text;
  $("note").textContent = t.note || "";
}

async function ask(number) {
  clearTimeout(timer);
  const q = new URLSearchParams({ number });
  let resp;
  try {
    resp = await fetch(`/api/v1/halls/${encodeURIComponent(hall)}/lookup?${q}`);
  } catch {
    $("error").textContent = "网络连接中断，稍后自动重试";
    timer = setTimeout(() => ask(number), REFRESH_MS);
    return;
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    $("result").hidden = true;
    $("error").textContent = body.detail || "查询失败，请稍后再试";
    return;
  }
  $("error").textContent = "";
  show(body);
  if (!body.final) timer = setTimeout(() => ask(number), REFRESH_MS);
}

$("ask").addEventListener("submit", (e) => {
  e.preventDefault();
  const number = $("q").value.trim().toUpperCase();
  if (number) ask(number);
});
$("q").focus();
