// Staff session for the manager pages: the session cookie plus its CSRF token, or a login form.

let csrf = null;

/** The signed-in staff member (GET /api/v1/me), or null. */
export async function me() {
  const r = await fetch("/api/v1/me", { credentials: "same-origin" });
  if (!r.ok) return null;
  const body = await r.json();
  if (body.kind !== "staff") return null;
  csrf = body.csrf_token;
  return body;
}

/** Show the login overlay until a login succeeds; resolves with the staff member. */
export function login() {
  const overlay = document.getElementById("login");
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  overlay.hidden = false;
  return new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      error.textContent = "";
      const data = Object.fromEntries(new FormData(form));
      const r = await fetch("/api/v1/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(data),
      });
      if (!r.ok) {
        error.textContent = await problemText(r);
        return;
      }
      overlay.hidden = true;
      resolve(await me());
    };
  });
}

export async function signedIn() {
  return (await me()) || (await login());
}

/** The Chinese detail of a problem+json answer. */
export async function problemText(r) {
  try {
    const body = await r.json();
    return body.detail || body.title || `请求失败（${r.status}）`;
  } catch {
    return `请求失败（${r.status}）`;
  }
}

export async function getJson(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error(await problemText(r));
  return r.json();
}

export async function send(method, url, body, contentType = "application/json") {
  const headers = { "Content-Type": contentType };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch(url, {
    method,
    credentials: "same-origin",
    headers,
    body: contentType === "application/json" ? JSON.stringify(body) : body,
  });
  if (!r.ok) {
    const copy = r.clone(); // read before problemText consumes the body
    const err = new Error(await problemText(r));
    err.status = r.status;
    try { err.problem = await copy.json(); } catch { /* not JSON */ }
    throw err;
  }
  return r.status === 204 ? null : r.json();
}

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

export function minutes(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Math.round(seconds)}秒`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}分`;
  return `${Math.floor(m / 60)}时${m % 60}分`;
}

/** Fill the hall picker with the halls the user may manage; returns the chosen hall id. */
export async function pickHall(user) {
  const select = document.getElementById("hall");
  const halls = await getJson("/api/v1/halls");
  const mine = halls.filter((h) => !user.halls.length || user.halls.includes(h.id));
  const wanted = new URLSearchParams(location.search).get("hall");
  select.innerHTML = mine.map((h) =>
    `<option value="${escapeHtml(h.id)}">${escapeHtml(h.name)}</option>`).join("");
  if (wanted && mine.some((h) => h.id === wanted)) select.value = wanted;
  select.onchange = () => {
    const q = new URLSearchParams(location.search);
    q.set("hall", select.value);
    location.search = q.toString();
  };
  return select.value;
}
