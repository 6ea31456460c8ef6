// Shared by the clerk's pages: JSON requests with the session's CSRF token, problem+json
// details as the message a clerk reads.
let csrf = "";

export function setCsrf(token) {
  csrf = token || "";
}

export class ApiError extends Error {
  constructor(status, data) {
    super((data && (data.detail || data.title)) || `请求失败（${status}）`);
    this.status = status;
    this.data = data;
  }
}

export async function api(method, path, body) {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        ...(method !== "GET" ? { "X-CSRF-Token": csrf } : {}),
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (_) {
    throw new ApiError(0, { detail: "无法连接服务器，请检查网络" });
  }
  const data = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
  if (resp.status === 401 && !path.startsWith("/api/v1/login") && !path.startsWith("/api/v1/me")) {
    // The session ended (idle timeout, logout elsewhere): log in again and come back.
    const next = location.pathname + location.search;
    location.replace(`/login?next=${encodeURIComponent(next)}`);
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

/** The signed-in staff member, or a redirect to /login that comes back here. */
export async function whoAmI() {
  try {
    const me = await api("GET", "/api/v1/me");
    if (me.kind === "staff") {
      setCsrf(me.csrf_token);
      return me;
    }
  } catch (e) {
    if (e.status !== 401) throw e;
  }
  const next = location.pathname + location.search;
  location.replace(`/login?next=${encodeURIComponent(next)}`);
  return new Promise(() => {});
}

export async function logout() {
  try {
    await api("POST", "/api/v1/logout");
  } finally {
    location.replace("/login");
  }
}
